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

/// A product of swift-mesh or of one of its dependencies.
func mesh(_ name: String) -> Target.Dependency { .product(name: name, package: "swift-mesh") }
func nio(_ name: String) -> Target.Dependency { .product(name: name, package: "swift-nio") }
func http2(_ name: String) -> Target.Dependency { .product(name: name, package: "swift-nio-http2") }
let x509: Target.Dependency = .product(name: "X509", package: "swift-certificates")
let protobuf: Target.Dependency = .product(name: "SwiftProtobuf", package: "swift-protobuf")

/// The executable `fuzz-NAME` (Sources/fuzz-NAME), with FuzzSupport and `dependencies`.
func fuzzTarget(_ name: String, _ dependencies: [Target.Dependency]) -> Target {
    .executableTarget(name: "fuzz-" + name, dependencies: ["FuzzSupport"] + dependencies)
}

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
        .target(name: "FuzzSupport", dependencies: [.product(name: "Logging", package: "swift-log")]),
        fuzzTarget("spiffe-id", [mesh("MeshIdentity")]),
        fuzzTarget("svid-chain", [mesh("MeshIdentity"), x509]),
        fuzzTarget("bundle-json", [mesh("MeshIdentity"), x509]),
        fuzzTarget("hbone-authority", [mesh("HBONE"), nio("NIOCore"), http2("NIOHPACK")]),
        fuzzTarget("hbone-frames", [mesh("HBONE"), nio("NIOCore"), nio("NIOEmbedded"), http2("NIOHTTP2"), http2("NIOHPACK")]),
        fuzzTarget("xds-response", [mesh("MeshIdentity"), mesh("XDSClient"), mesh("MeshProto"), protobuf]),
        fuzzTarget("policy-yaml", [mesh("PolicyEngine")]),
        fuzzTarget("manifests", [mesh("MeshControlPlane"), mesh("PolicyEngine")]),
        fuzzTarget("local-config", [mesh("XDSClient")]),
        fuzzTarget("zds", [mesh("NodeProxy"), mesh("MeshProto"), protobuf]),
        fuzzTarget("socks5", [mesh("NodeProxy"), nio("NIOCore")]),
        fuzzTarget("dns", [mesh("NodeProxy"), mesh("XDSClient")]),
    ]
)
