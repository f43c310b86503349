// swift-tools-version:5.4
import PackageDescription

// libFuzzer targets, one executable per parser that takes bytes from outside
// (issue 16, part 1). Like Benchmarks/, a package of its own that depends on
// swift-mesh by path, so that nothing here touches the main build or CI.
//
// Build and run with scripts/fuzz, which passes the flags that matter to every
// Swift module of the graph (so the code under test is instrumented, not only
// the harnesses):
//
//   swift build --package-path Fuzz --scratch-path Fuzz/.build -c debug \
//     -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
//
// Why tools version 5.4: from 5.5 on, SwiftPM renames an executable's entry
// point to `<module>_main` and links `main` to it (so tests can import
// executables); with `-sanitize=fuzzer` there is no such symbol, because main
// is libFuzzer's, and the link fails. A 5.4 manifest keeps the plain entry point.
// Each harness defines only `LLVMFuzzerTestOneInput`.
//
// Debug builds compile swift-mesh's modules with testability, so harnesses may
// `@testable import` a module to reach a parser that is internal or package
// (HBONE's data path, the ADS response decoder, the DNS codec, the ZDS socket).

let package = Package(
    name: "swift-mesh-fuzz",
    dependencies: [
        .package(name: "swift-mesh", path: ".."),
        .package(name: "swift-nio", url: "https://github.com/apple/swift-nio", from: "2.81.0"),
        .package(name: "swift-nio-http2", url: "https://github.com/apple/swift-nio-http2", from: "1.36.0"),
        .package(name: "swift-certificates", url: "https://github.com/apple/swift-certificates", from: "1.10.0"),
        .package(name: "swift-protobuf", url: "https://github.com/apple/swift-protobuf", from: "1.28.0"),
        .package(name: "swift-log", url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        .target(
            name: "FuzzSupport",
            dependencies: [.product(name: "Logging", package: "swift-log")]
        ),
        .executableTarget(
            name: "fuzz-spiffe-id",
            dependencies: ["FuzzSupport", .product(name: "MeshIdentity", package: "swift-mesh")]
        ),
        .executableTarget(
            name: "fuzz-svid-chain",
            dependencies: [
                "FuzzSupport",
                .product(name: "MeshIdentity", package: "swift-mesh"),
                .product(name: "X509", package: "swift-certificates"),
            ]
        ),
        .executableTarget(
            name: "fuzz-bundle-json",
            dependencies: [
                "FuzzSupport",
                .product(name: "MeshIdentity", package: "swift-mesh"),
                .product(name: "X509", package: "swift-certificates"),
            ]
        ),
        .executableTarget(
            name: "fuzz-hbone-authority",
            dependencies: [
                "FuzzSupport",
                .product(name: "HBONE", package: "swift-mesh"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
            ]
        ),
        .executableTarget(
            name: "fuzz-hbone-frames",
            dependencies: [
                "FuzzSupport",
                .product(name: "HBONE", package: "swift-mesh"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
            ]
        ),
        .executableTarget(
            name: "fuzz-xds-response",
            dependencies: [
                "FuzzSupport",
                .product(name: "MeshIdentity", package: "swift-mesh"),
                .product(name: "XDSClient", package: "swift-mesh"),
                .product(name: "MeshProto", package: "swift-mesh"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]
        ),
        .executableTarget(
            name: "fuzz-policy-yaml",
            dependencies: ["FuzzSupport", .product(name: "PolicyEngine", package: "swift-mesh")]
        ),
        .executableTarget(
            name: "fuzz-manifests",
            dependencies: [
                "FuzzSupport",
                .product(name: "MeshControlPlane", package: "swift-mesh"),
                .product(name: "PolicyEngine", package: "swift-mesh"),
            ]
        ),
        .executableTarget(
            name: "fuzz-local-config",
            dependencies: ["FuzzSupport", .product(name: "XDSClient", package: "swift-mesh")]
        ),
        .executableTarget(
            name: "fuzz-zds",
            dependencies: [
                "FuzzSupport",
                .product(name: "NodeProxy", package: "swift-mesh"),
                .product(name: "MeshProto", package: "swift-mesh"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]
        ),
        .executableTarget(
            name: "fuzz-socks5",
            dependencies: [
                "FuzzSupport",
                .product(name: "NodeProxy", package: "swift-mesh"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "fuzz-dns",
            dependencies: [
                "FuzzSupport",
                .product(name: "NodeProxy", package: "swift-mesh"),
                .product(name: "XDSClient", package: "swift-mesh"),
            ]
        ),
    ]
)
