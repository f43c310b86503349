import ArgumentParser
import ExampleSupport
import Foundation
import Logging
import MeshLab

/// `mesh-lab`: the whole mesh on one Linux host, from Kubernetes manifests
/// (`scripts/lab` runs it). Nodes and pods are network namespaces; the
/// control plane, ztunnels and node agents are the real binaries.
@main
struct MeshLabCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mesh-lab",
        abstract: "A multi-node mesh on one host: nodes and pods as network namespaces, from Kubernetes manifests.",
        subcommands: [Up.self, Apply.self, Down.self, Status.self, Exec.self, Logs.self, Restart.self, NodeAgent.self]
    )
}

/// Options every subcommand shares.
struct LabOptions: ParsableArguments {
    @Option(help: "State directory (default $MESH_LAB_STATE or /run/swift-mesh-lab).")
    var state: String?

    @Option(help: "Directory with ztunnel, mesh-controlplane and mesh-lab (default: this program's own).")
    var binaries: String?

    @Option(help: "Prefix of the lab's network namespace names.")
    var prefix: String = "swm"

    /// Flags for every ztunnel the command starts, from `MESH_LAB_ZTUNNEL_ARGS` (split on spaces;
    /// `scripts/soak` sets `--pool-idle-timeout 20`).
    var ztunnelArguments: [String] {
        (ProcessInfo.processInfo.environment["MESH_LAB_ZTUNNEL_ARGS"] ?? "").split(separator: " ").map(String.init)
    }

    /// How `up` runs the control plane, from `MESH_LAB_CONTROLPLANE_REPLICAS` (default 1) and
    /// `MESH_LAB_CONTROLPLANE_ARGS` (split on spaces, e.g. `--workload-cert-ttl 1h`).
    var controlPlane: LabControlPlane {
        let environment = ProcessInfo.processInfo.environment
        return LabControlPlane(replicas: environment["MESH_LAB_CONTROLPLANE_REPLICAS"].flatMap { Int($0) } ?? 1,
                               arguments: (environment["MESH_LAB_CONTROLPLANE_ARGS"] ?? "").split(separator: " ").map(String.init))
    }

    func lab() -> Lab {
        let layout = state.map { LabLayout(root: $0) } ?? LabLayout()
        let own = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().path
        return Lab(layout: layout, binaries: binaries ?? own, prefix: prefix, ztunnelArguments: ztunnelArguments, controlPlane: controlPlane) { line in print("==> \(line)") }
    }
}

struct Up: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Build the lab from a manifests directory and start everything.")
    @OptionGroup var options: LabOptions
    @Argument(help: "Directory of Kubernetes YAML manifests.") var manifests: String

    func run() throws {
        try options.lab().upOrApply(manifests: manifests, apply: false)
    }
}

struct Apply: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Re-read the manifests into the running lab (pods, labels, policies; live).")
    @OptionGroup var options: LabOptions
    @Argument(help: "Directory of Kubernetes YAML manifests.") var manifests: String

    func run() throws {
        try options.lab().upOrApply(manifests: manifests, apply: true)
    }
}

extension Lab {
    /// `up` or `apply`, then the table.
    func upOrApply(manifests: String, apply: Bool) throws {
        if apply { try self.apply(manifests: manifests) } else { try up(manifests: manifests) }
        print(try table())
    }
}

struct Down: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Stop every process and remove every namespace, link and rule of the lab.")
    @OptionGroup var options: LabOptions

    func run() async throws {
        try Lab.checkHost()
        try options.lab().down()
        print("==> lab removed")
    }
}

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Nodes, pods, addresses, identities and capture state.")
    @OptionGroup var options: LabOptions

    func run() async throws {
        print(try options.lab().table())
    }
}

struct Exec: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run a command in a pod's network namespace (its exit status is passed through).")
    @OptionGroup var options: LabOptions
    @Argument(help: "NAMESPACE/POD") var pod: String
    @Argument(parsing: .captureForPassthrough, help: "-- CMD...") var command: [String] = []

    func run() async throws {
        let argv = command.first == "--" ? Array(command.dropFirst()) : command
        let status = try options.lab().exec(pod: pod, argv)
        throw ExitCode(status)
    }
}

struct Logs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the output of a pod (NAMESPACE/POD) or a component (controlplane, controlplane-N with replicas, ztunnel-NODE, agent-NODE).")
    @OptionGroup var options: LabOptions
    @Argument(help: "NAMESPACE/POD or a component name.") var name: String

    func run() async throws {
        print(try options.lab().logs(name), terminator: "")
    }
}

struct Restart: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Start controlplane (or replica controlplane-N) or ztunnel-NODE again (stopped first if running), as `up` did; waits for a ztunnel to be ready.")
    @OptionGroup var options: LabOptions
    @Argument(help: "controlplane, controlplane-N or ztunnel-NODE") var component: String

    func run() async throws {
        try Lab.checkHost()
        try options.lab().restart(component)
        print("==> \(component) restarted")
    }
}

struct NodeAgent: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "node-agent",
                                                    abstract: "(Started by `up` in a node's namespace.) Serve ZDS and install pods' capture rules.")
    @OptionGroup var options: LabOptions
    @Option(help: "This node's name.") var node: String
    @Option(help: "Log level.") var logLevel: String = "info"

    func run() async throws {
        unblockShutdownSignals()
        bootstrapLogging(logLevel)
        let layout = options.state.map { LabLayout(root: $0) } ?? LabLayout()
        let agent = LabNodeAgent(layout: layout, node: node, logger: Logger(label: "mesh-lab.agent"))
        let running = Task { try await agent.run() }
        await waitForTermination()
        running.cancel()
        _ = await running.result
    }
}
