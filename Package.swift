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
        .library(name: "IdentityServices", targets: ["IdentityServices"]),
        .library(name: "BPFMaps", targets: ["BPFMaps"]),
        .library(name: "PolicyEngine", targets: ["PolicyEngine"]),
        .executable(name: "meshctl", targets: ["meshctl"]),
        .executable(name: "ztunnel", targets: ["ztunnel"]),
        .library(name: "MeshControlPlane", targets: ["MeshControlPlane"]),
        .library(name: "NodeProxy", targets: ["NodeProxy"]),
        .library(name: "MeshMonitoring", targets: ["MeshMonitoring"]),
        .library(name: "MeshLab", targets: ["MeshLab"]),
        .executable(name: "mesh-lab", targets: ["mesh-lab"]),
        .executable(name: "mesh-controlplane", targets: ["mesh-controlplane"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.81.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.30.0"),
        .package(url: "https://github.com/apple/swift-nio-http2", from: "1.36.0"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.10.0"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.3.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.0"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", "5.0.0"..<"7.0.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.28.0"),
        .package(url: "https://github.com/grpc/grpc-swift-2", from: "2.0.0"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport", from: "2.0.0"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.24.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    ],
    targets: [
        // MARK: Identity
        .target(
            name: "MeshIdentity",
            dependencies: [
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: HBONE
        .target(
            name: "HBONE",
            dependencies: [
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                "MeshIdentity",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: xDS and identity services
        .target(
            name: "MeshProto",
            dependencies: [
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "XDSClient",
            dependencies: [
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                "MeshIdentity",
                "MeshProto",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "XDSServer",
            dependencies: [
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                "MeshProto",
                "MeshIdentity",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "IdentityServices",
            dependencies: [
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                "MeshProto",
                "MeshIdentity",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCertificateReloading", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: BPF
        .systemLibrary(
            name: "CLibBPF",
            pkgConfig: "libbpf",
            providers: [.apt(["libbpf-dev"])]
        ),
        // Layouts of map keys/values shared by bpf/*.c and Swift (bpf/include/mesh_maps.h).
        .target(
            name: "CMeshBPF",
            path: "bpf",
            sources: ["swift/layouts.c"],
            publicHeadersPath: "include"
        ),
        .target(
            name: "BPFMaps",
            dependencies: [
                "CMeshBPF",
                .target(name: "CLibBPF", condition: .when(platforms: [.linux])),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: Policy
        .target(
            name: "PolicyEngine",
            dependencies: [
                "MeshProto",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: Monitoring
        // The small HTTP/1.1 server behind every operational endpoint (metrics, readiness, admin),
        // and the log handler of the executables (one line per event, an access log's volume).
        .target(
            name: "MeshMonitoring",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: Control plane
        // Manifests → cluster state → Istio/Envoy resources, address allocation,
        // the CA's node impersonation rule, metrics and the monitoring endpoint.
        .target(
            name: "MeshControlPlane",
            dependencies: [
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                "MeshIdentity",
                "MeshProto",
                "PolicyEngine",
                "XDSServer",
                "IdentityServices",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "X509", package: "swift-certificates"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: Node proxy
        // setns(2), SCM_RIGHTS descriptor passing and poll: the C-only parts of in-pod capture.
        .target(
            name: "CNodeSockets",
            path: "Sources/CNodeSockets"
        ),
        // ztunnel's data plane as a library: outbound routing, inbound decisions,
        // in-pod capture (listeners and connections inside pod namespaces), the
        // capture rules, and both ends of the ZDS enrollment protocol.
        .target(
            name: "NodeProxy",
            dependencies: [
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                "CNodeSockets",
                "HBONE",
                "MeshMonitoring",
                "MeshIdentity",
                "MeshProto",
                "XDSClient",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: Lab
        // The multi-node lab (scripts/lab and the lab tests): topology from manifests,
        // namespaces and links, processes, the per-node agent that enrolls pods over ZDS.
        .target(
            name: "MeshLab",
            dependencies: [
                "MeshControlPlane",
                "NodeProxy",
                "PolicyEngine",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: Examples
        // Flag parsing, logging set-up and signal handling shared by the example executables.
        .target(
            name: "ExampleSupport",
            dependencies: [
                "MeshMonitoring",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Examples/ExampleSupport",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "mesh-controlplane",
            dependencies: [
                "ExampleSupport",
                "MeshMonitoring",
                "MeshControlPlane",
                "MeshIdentity",
                "IdentityServices",
                "XDSServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Examples/mesh-controlplane",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "mesh-lab",
            dependencies: [
                "ExampleSupport",
                "MeshLab",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Examples/mesh-lab",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "meshctl",
            dependencies: [
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                "MeshIdentity",
                "PolicyEngine",
                "XDSClient",
                "XDSServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Examples/meshctl",
            swiftSettings: swiftSettings
        ),

        .executableTarget(
            name: "ztunnel",
            dependencies: [
                "ExampleSupport",
                "NodeProxy",
                "MeshMonitoring",
                "MeshIdentity",
                "IdentityServices",
                "HBONE",
                "XDSClient",
                "PolicyEngine",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Examples/ztunnel",
            swiftSettings: swiftSettings
        ),

        // MARK: Tests
        // Helpers shared by the test targets: locating and running the independent peers.
        .target(
            name: "MeshTestSupport",
            dependencies: [
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                "MeshIdentity",
                "MeshProto",
                "XDSServer",
                "XDSClient",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Tests/MeshTestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MeshIdentityTests",
            dependencies: [
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                "MeshTestSupport",
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
            name: "HBONETests",
            dependencies: [
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                "MeshTestSupport",
                "HBONE",
                "MeshIdentity",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "XDSClientTests",
            dependencies: [
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                "MeshTestSupport",
                "XDSClient",
                "XDSServer",
                "MeshProto",
                "MeshIdentity",
                "IdentityServices",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "XDSServerTests",
            dependencies: [
                "MeshTestSupport",
                "XDSServer",
                "IdentityServices",
                "MeshProto",
                "MeshIdentity",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "IdentityServicesTests",
            dependencies: [
                "MeshTestSupport",
                "IdentityServices",
                "MeshProto",
                "MeshIdentity",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PolicyEngineTests",
            dependencies: [
                "MeshTestSupport",
                "PolicyEngine",
                "MeshProto",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            exclude: ["Fixtures"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MeshControlPlaneTests",
            dependencies: [
                "MeshTestSupport",
                "MeshControlPlane",
                "PolicyEngine",
                "XDSClient",
                "XDSServer",
                "IdentityServices",
                "MeshProto",
                "MeshIdentity",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "NodeProxyTests",
            dependencies: [
                "MeshTestSupport",
                "NodeProxy",
                "CNodeSockets",
                "HBONE",
                "XDSClient",
                "MeshProto",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MeshLabTests",
            dependencies: [
                "MeshTestSupport",
                "MeshLab",
                "MeshControlPlane",
                .product(name: "Logging", package: "swift-log"),
            ],
            exclude: ["Fixtures"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MeshMonitoringTests",
            dependencies: [
                "MeshMonitoring",
                "MeshTestSupport",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BPFMapsTests",
            dependencies: ["MeshTestSupport", "BPFMaps", "CMeshBPF"],
            swiftSettings: swiftSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)
