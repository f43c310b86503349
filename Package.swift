// swift-tools-version:6.0
import PackageDescription

// swift-mesh: a library-first, sidecarless service-mesh SDK.
// Every module is its own library product so a service can depend on just
// the part it needs (see docs/ARCHITECTURE.md for the map).

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "swift-mesh",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "MeshIdentity", targets: ["MeshIdentity"]),
        .library(name: "HBONE", targets: ["HBONE"]),
        .library(name: "MeshProto", targets: ["MeshProto"]),
        .library(name: "XDSClient", targets: ["XDSClient"]),
        .library(name: "XDSServer", targets: ["XDSServer"]),
        .library(name: "BPFMaps", targets: ["BPFMaps"]),
        .library(name: "PolicyEngine", targets: ["PolicyEngine"]),
        .executable(name: "meshctl", targets: ["meshctl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.81.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.30.0"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.10.0"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.3.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.0"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", "5.0.0"..<"7.0.0"),
    ],
    targets: [
        // MARK: Identity
        .target(
            name: "MeshIdentity",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: HBONE (filled by the HBONE issue)
        .target(name: "HBONE", dependencies: ["MeshIdentity"], swiftSettings: swiftSettings),

        // MARK: xDS (filled by the xDS issue)
        .target(name: "MeshProto", swiftSettings: swiftSettings),
        .target(name: "XDSClient", dependencies: ["MeshProto", "MeshIdentity"], swiftSettings: swiftSettings),
        .target(name: "XDSServer", dependencies: ["MeshProto"], swiftSettings: swiftSettings),

        // MARK: BPF
        .systemLibrary(
            name: "CLibBPF",
            pkgConfig: "libbpf",
            providers: [.apt(["libbpf-dev"])]
        ),
        .target(
            name: "BPFMaps",
            dependencies: [
                .target(name: "CLibBPF", condition: .when(platforms: [.linux])),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: Policy
        .target(
            name: "PolicyEngine",
            dependencies: [
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: Examples
        .executableTarget(
            name: "meshctl",
            dependencies: [
                "MeshIdentity",
                "PolicyEngine",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Examples/meshctl",
            swiftSettings: swiftSettings
        ),

        // MARK: Tests
        .testTarget(
            name: "MeshIdentityTests",
            dependencies: [
                "MeshIdentity",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PolicyEngineTests",
            dependencies: ["PolicyEngine"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BPFMapsTests",
            dependencies: ["BPFMaps"],
            swiftSettings: swiftSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)

