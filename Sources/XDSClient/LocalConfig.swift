import Foundation
import Yams

/// Loads mesh state from a YAML file in the shape of Istio ztunnel's local config
/// (LOCAL_XDS_PATH): "xDS from a file", yielding the same ``WorkloadSnapshot`` an
/// ADS stream would.
///
/// ```yaml
/// workloads:
/// - uid: cluster1//v1/Pod/default/echo
///   name: echo
///   namespace: default
///   serviceAccount: echo
///   workloadIps: [10.0.0.7]
///   node: node-b
///   protocol: HBONE
///   services:
///     default/echo.default.svc.cluster.local: {80: 8080}
/// services:
/// - {name: echo, namespace: default, hostname: echo.default.svc.cluster.local, vips: [/10.96.0.10], ports: {80: 8080}}
/// policies:
/// - name: allow-frontend
///   namespace: default
///   scope: Namespace
///   action: Allow
///   rules: [[[{principals: [cluster.local/ns/default/sa/frontend], destinationPorts: [8080]}]]]
/// ```
public enum LocalConfig {
    /// Parses YAML text.
    public static func parse(_ yaml: String) throws -> WorkloadSnapshot {
        let file: File
        do {
            file = try YAMLDecoder().decode(File.self, from: yaml.isEmpty ? "{}" : yaml)
        } catch let error as DecodingError {
            throw LocalConfigError.malformed(Self.describe(error))
        } catch {
            throw LocalConfigError.malformed("\(error)")
        }
        return try file.snapshot()
    }

    /// Reads and parses a file.
    public static func load(path: String) throws -> WorkloadSnapshot {
        guard let data = FileManager.default.contents(atPath: path) else { throw LocalConfigError.unreadable(path) }
        return try parse(String(decoding: data, as: UTF8.self))
    }

    private static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        }
        switch error {
        case .keyNotFound(let key, let context): return "missing \(path(context)).\(key.stringValue)"
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            return "\(path(context)): \(context.debugDescription)"
        @unknown default: return "\(error)"
        }
    }

    struct File: Decodable {
        var workloads: [WorkloadEntry]?
        var services: [ServiceEntry]?
        var policies: [PolicyEntry]?

        func snapshot() throws -> WorkloadSnapshot {
            WorkloadSnapshot(
                workloads: try (workloads ?? []).map { try $0.model() },
                services: try (services ?? []).map { try $0.model() },
                policies: (policies ?? []).map { $0.model() }
            )
        }
    }

    struct WorkloadEntry: Decodable {
        var uid: String
        var name: String
        var namespace: String
        var serviceAccount: String?
        var trustDomain: String?
        var workloadIps: [String]?
        var network: String?
        var node: String?
        var `protocol`: TunnelProtocol?
        var services: [String: [String: UInt16]]?
        var authorizationPolicies: [String]?

        func model() throws -> Workload {
            var mapped: [String: [UInt16: UInt16]] = [:]
            for (service, ports) in services ?? [:] {
                mapped[service] = try ports.reduce(into: [:]) { result, pair in
                    guard let port = UInt16(pair.key) else { throw LocalConfigError.invalid(WorkloadStoreError.invalidValue(field: "workloads[\(uid)].services.\(service)", value: pair.key)) }
                    result[port] = pair.value
                }
            }
            return Workload(
                uid: uid, name: name, namespace: namespace, serviceAccount: serviceAccount ?? "default",
                trustDomain: trustDomain ?? "cluster.local", workloadIPs: workloadIps ?? [], network: network ?? "",
                node: node ?? "", tunnelProtocol: `protocol` ?? .tcp, services: mapped,
                authorizationPolicies: authorizationPolicies ?? []
            )
        }
    }

    struct ServiceEntry: Decodable {
        var name: String
        var namespace: String
        var hostname: String
        var vips: [String]?
        var ports: [String: UInt16]?

        func model() throws -> Service {
            let vips = try (self.vips ?? []).map { value in
                do throws(WorkloadStoreError) { return try NetworkAddress(parsing: value) } catch { throw LocalConfigError.invalid(error) }
            }
            let ports: [UInt16: UInt16] = try (self.ports ?? [:]).reduce(into: [:]) { result, pair in
                guard let port = UInt16(pair.key) else { throw LocalConfigError.invalid(.invalidValue(field: "services[\(hostname)].ports", value: pair.key)) }
                result[port] = pair.value
            }
            return Service(name: name, namespace: namespace, hostname: hostname, vips: vips, ports: ports)
        }
    }

    struct MatchEntry: Decodable {
        var namespaces: [String]?
        var notNamespaces: [String]?
        var principals: [String]?
        var notPrincipals: [String]?
        var destinationPorts: [UInt16]?
        var notDestinationPorts: [UInt16]?
    }

    struct PolicyEntry: Decodable {
        var name: String
        var namespace: String
        var scope: Authorization.Scope?
        var action: Authorization.Action?
        var rules: [[[MatchEntry]]]?

        func model() -> Authorization {
            Authorization(
                name: name, namespace: namespace, scope: scope ?? .namespace, action: action ?? .allow,
                rules: (rules ?? []).map { rule in
                    rule.map { clause in
                        clause.map {
                            AuthorizationMatch(
                                namespaces: $0.namespaces ?? [], notNamespaces: $0.notNamespaces ?? [],
                                principals: $0.principals ?? [], notPrincipals: $0.notPrincipals ?? [],
                                destinationPorts: $0.destinationPorts ?? [], notDestinationPorts: $0.notDestinationPorts ?? []
                            )
                        }
                    }
                }
            )
        }
    }
}

/// Why a local config file could not be loaded.
public enum LocalConfigError: Error, Sendable, Hashable, CustomStringConvertible {
    case unreadable(String)
    case malformed(String)
    case invalid(WorkloadStoreError)

    public var description: String {
        switch self {
        case .unreadable(let path): return "cannot read local config \(path)"
        case .malformed(let detail): return "local config is not valid: \(detail)"
        case .invalid(let error): return "local config is not valid: \(error)"
        }
    }
}
