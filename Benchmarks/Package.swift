// swift-tools-version:6.0
import PackageDescription

// Benchmarks live in their own package so that CI's build of swift-mesh stays
// light. Each executable measures one module against a baseline taken in the
// same run; scripts/bench runs them and appends the results to BENCHMARKS.md.

let package = Package(
    name: "swift-mesh-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "swift-mesh", path: ".."),
        .package(url: "https://github.com/apple/swift-nio", from: "2.81.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.30.0"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.10.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.0"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.28.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/jpsim/Yams", "5.0.0"..<"7.0.0"),
        .package(url: "https://github.com/grpc/grpc-swift-2", from: "2.0.0"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport", from: "2.0.0"),
    ],
    targets: [
        .executableTarget(
            name: "bench-identity",
            dependencies: [
                .product(name: "MeshIdentity", package: "swift-mesh"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .executableTarget(
            name: "bench-policy",
            dependencies: [.product(name: "PolicyEngine", package: "swift-mesh")]
        ),
        .executableTarget(
            name: "bench-xds",
            dependencies: [
                .product(name: "XDSClient", package: "swift-mesh"),
                .product(name: "XDSServer", package: "swift-mesh"),
                .product(name: "MeshProto", package: "swift-mesh"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]
        ),
        .executableTarget(
            name: "bench-tls-relay",
            dependencies: [
                .product(name: "MeshIdentity", package: "swift-mesh"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "bench-controlplane",
            dependencies: [
                .product(name: "MeshControlPlane", package: "swift-mesh"),
                .product(name: "XDSClient", package: "swift-mesh"),
                .product(name: "XDSServer", package: "swift-mesh"),
                .product(name: "IdentityServices", package: "swift-mesh"),
                .product(name: "MeshIdentity", package: "swift-mesh"),
                .product(name: "MeshProto", package: "swift-mesh"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
            ]
        ),
        .executableTarget(
            name: "bench-bpf",
            dependencies: [.product(name: "BPFMaps", package: "swift-mesh")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
