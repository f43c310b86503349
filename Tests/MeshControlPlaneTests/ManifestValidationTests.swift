import Foundation
import MeshTestSupport
import Testing

@Suite("Manifests are valid Kubernetes, per kubernetes-validate (a peer)")
struct ManifestValidationTests {
    /// Every manifest file of the repository, except fixtures that are invalid on purpose.
    static func repositoryManifests() throws -> [String] {
        var files: [String] = []
        for root in ["examples", "Tests"] {
            let url = URL(fileURLWithPath: Interop.packageRoot).appendingPathComponent(root)
            guard let walker = FileManager.default.enumerator(at: url, includingPropertiesForKeys: nil) else { continue }
            for case let file as URL in walker where ["yaml", "yml"].contains(file.pathExtension) && !file.path.contains("/invalid/") {
                files.append(file.path)
            }
        }
        return files.sorted()
    }

    private func validate(_ files: [String]) throws -> Interop.Output {
        let python = try #require(Interop.python, "the interop venv is missing: scripts/test creates .venv")
        let tool = URL(fileURLWithPath: python).deletingLastPathComponent().appendingPathComponent("kubernetes-validate").path
        return try Interop.runBlocking(tool, ["--strict", "--quiet"] + files)
    }

    @Test("examples/, Tests/ fixtures and the control-plane test manifests pass strict validation",
          .enabled(if: PythonPeers.available(["kubernetes_validate"]), "kubernetes-validate missing from the interop venv (run scripts/test)"))
    func valid() throws {
        let dir = try Manifests.directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let generated = try FileManager.default.contentsOfDirectory(atPath: dir.path).map { dir.appendingPathComponent($0).path }
        let files = try Self.repositoryManifests() + generated
        #expect(files.contains { $0.hasSuffix("examples/mesh/workloads.yaml") })
        let result = try validate(files)
        #expect(result.status == 0 && !result.combined.contains("ERROR"), "\(result.combined)")
    }

    @Test("the validator can fail: a Pod with an unknown field is refused",
          .enabled(if: PythonPeers.available(["kubernetes_validate"]), "kubernetes-validate missing from the interop venv (run scripts/test)"))
    func invalid() throws {
        let dir = try Manifests.directory([("bad.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: x}], nodeNme: typo}\n")])
        defer { try? FileManager.default.removeItem(at: dir) }
        let result = try validate([dir.appendingPathComponent("bad.yaml").path])
        #expect(result.status != 0 && result.combined.contains("ERROR"), "\(result.combined)")
    }
}
