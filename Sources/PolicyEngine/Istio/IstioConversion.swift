/// Where Istio policies are enforced, which decides how L7 attributes are treated.
public enum EnforcementLayer: String, Hashable, Sendable {
    /// ztunnel: only L4 attributes exist. Following istiod's conversion for
    /// ambient, an ALLOW rule that uses any L7 attribute is dropped (matches
    /// nothing) and a DENY rule keeps only its L4 parts (matches without the
    /// L7 attributes). CUSTOM and AUDIT policies and policies with `targetRefs`
    /// are not sent to ztunnel.
    case l4
    /// Waypoint or sidecar: every attribute is evaluated.
    case l7
}

extension AuthorizationPolicy {
    /// The L4-only fields found in a rule's `from`, `to` and `when` clauses that
    /// need HTTP to evaluate (`hosts`, `methods`, `requestPrincipals`, `request.headers[...]`, ...).
    public static func l7Attributes(of rule: Rule) -> [String] {
        var found: [String] = []
        for op in rule.to {
            if !op.hosts.isEmpty { found.append("hosts") }
            if !op.notHosts.isEmpty { found.append("notHosts") }
            if !op.methods.isEmpty { found.append("methods") }
            if !op.notMethods.isEmpty { found.append("notMethods") }
            if !op.paths.isEmpty { found.append("paths") }
            if !op.notPaths.isEmpty { found.append("notPaths") }
        }
        for s in rule.from {
            if !s.remoteIpBlocks.isEmpty { found.append("remoteIpBlocks") }
            if !s.notRemoteIpBlocks.isEmpty { found.append("notRemoteIpBlocks") }
            if !s.requestPrincipals.isEmpty { found.append("requestPrincipals") }
            if !s.notRequestPrincipals.isEmpty { found.append("notRequestPrincipals") }
        }
        for c in rule.when where !IstioConditionKey.l4Keys.contains(c.key) { found.append(c.key) }
        return found
    }

    /// Converts this policy into the engine's form for one enforcement layer.
    /// Returns nil when the layer never enforces the policy (L4: CUSTOM, AUDIT
    /// and `targetRefs` policies, exactly as istiod does for ztunnel).
    public func authorization(for layer: EnforcementLayer, rootNamespace: String = "istio-system") -> IstioAuthorization? {
        let scope: IstioAuthorization.Scope
        if !targetRefs.isEmpty {
            if layer == .l4 { return nil }
            scope = .targetRefs(targetRefs)
        } else if let selector {
            scope = .workloadSelector(selector)
        } else {
            scope = namespace == rootNamespace ? .global : .namespace
        }
        let mapped: IstioAuthorization.Action
        switch action {
        case .allow: mapped = .allow
        case .deny: mapped = .deny
        case .audit:
            if layer == .l4 { return nil }
            mapped = .audit
        case .custom:
            if layer == .l4 { return nil }
            mapped = .custom(provider: provider ?? "")
        }
        var groups: [IstioAuthorization.Group] = []
        for (index, rule) in (rules ?? []).enumerated() {
            let hasL7 = !AuthorizationPolicy.l7Attributes(of: rule).isEmpty
            if layer == .l4 && hasL7 && action == .allow { continue }
            groups.append(IstioAuthorization.Group(ruleIndex: index, rules: convert(rule, layer: layer)))
        }
        return IstioAuthorization(namespace: namespace, name: name, scope: scope, action: mapped, groups: groups, dryRun: dryRun)
    }

    private func convert(_ rule: Rule, layer: EnforcementLayer) -> [[IstioAuthorization.Match]] {
        let full = layer == .l7
        var out: [[IstioAuthorization.Match]] = []
        if !rule.to.isEmpty {
            out.append(rule.to.map { op in
                var m = IstioAuthorization.Match()
                m.destinationPorts = op.ports
                m.notDestinationPorts = op.notPorts
                if full {
                    m.hosts = op.hosts.map(IstioAuthorization.StringMatch.init(istio:))
                    m.notHosts = op.notHosts.map(IstioAuthorization.StringMatch.init(istio:))
                    m.methods = op.methods.map(IstioAuthorization.StringMatch.init(istio:))
                    m.notMethods = op.notMethods.map(IstioAuthorization.StringMatch.init(istio:))
                    m.paths = op.paths.map(IstioAuthorization.StringMatch.init(istioPath:))
                    m.notPaths = op.notPaths.map(IstioAuthorization.StringMatch.init(istioPath:))
                }
                return m
            })
        }
        if !rule.from.isEmpty {
            out.append(rule.from.map { s in
                var m = IstioAuthorization.Match()
                m.sourceIPs = s.ipBlocks
                m.notSourceIPs = s.notIpBlocks
                m.namespaces = s.namespaces.map(IstioAuthorization.StringMatch.init(istio:))
                m.notNamespaces = s.notNamespaces.map(IstioAuthorization.StringMatch.init(istio:))
                m.principals = s.principals.map(IstioAuthorization.StringMatch.init(istio:))
                m.notPrincipals = s.notPrincipals.map(IstioAuthorization.StringMatch.init(istio:))
                m.serviceAccounts = s.serviceAccounts.map(serviceAccount)
                m.notServiceAccounts = s.notServiceAccounts.map(serviceAccount)
                if full {
                    m.remoteIPs = s.remoteIpBlocks
                    m.notRemoteIPs = s.notRemoteIpBlocks
                    m.requestPrincipals = s.requestPrincipals.map(IstioAuthorization.StringMatch.init(istio:))
                    m.notRequestPrincipals = s.notRequestPrincipals.map(IstioAuthorization.StringMatch.init(istio:))
                }
                return m
            })
        }
        for c in rule.when {
            var m = IstioAuthorization.Match()
            // Keys were validated at load time; unparsable values were rejected there.
            switch IstioConditionKey(c.key) {
            case .sourceIP:
                m.sourceIPs = c.values.compactMap { CIDR($0) }
                m.notSourceIPs = c.notValues.compactMap { CIDR($0) }
            case .remoteIP:
                if full {
                    m.remoteIPs = c.values.compactMap { CIDR($0) }
                    m.notRemoteIPs = c.notValues.compactMap { CIDR($0) }
                }
            case .destinationIP:
                m.destinationIPs = c.values.compactMap { CIDR($0) }
                m.notDestinationIPs = c.notValues.compactMap { CIDR($0) }
            case .destinationPort:
                m.destinationPorts = c.values.compactMap { UInt16($0) }
                m.notDestinationPorts = c.notValues.compactMap { UInt16($0) }
            case .sourceNamespace:
                m.namespaces = c.values.map(IstioAuthorization.StringMatch.init(istio:))
                m.notNamespaces = c.notValues.map(IstioAuthorization.StringMatch.init(istio:))
            case .sourcePrincipal:
                m.principals = c.values.map(IstioAuthorization.StringMatch.init(istio:))
                m.notPrincipals = c.notValues.map(IstioAuthorization.StringMatch.init(istio:))
            case .requestPrincipal:
                if full {
                    m.requestPrincipals = c.values.map(IstioAuthorization.StringMatch.init(istio:))
                    m.notRequestPrincipals = c.notValues.map(IstioAuthorization.StringMatch.init(istio:))
                }
            case .attribute(let a):
                if full {
                    m.conditions = [IstioAuthorization.AttributeCondition(
                        attribute: a,
                        values: c.values.map(IstioAuthorization.StringMatch.init(istio:)),
                        notValues: c.notValues.map(IstioAuthorization.StringMatch.init(istio:)))]
                }
            case .none:
                break
            }
            out.append([m])
        }
        return out
    }

    private func serviceAccount(_ text: String) -> IstioAuthorization.ServiceAccount {
        if let slash = text.firstIndex(of: "/") {
            return .init(namespace: String(text[..<slash]), name: String(text[text.index(after: slash)...]))
        }
        return .init(namespace: namespace, name: text)
    }
}

/// The `when` keys of Istio's authorization policy condition reference.
enum IstioConditionKey: Equatable {
    case sourceIP, remoteIP, destinationIP, destinationPort, sourceNamespace, sourcePrincipal, requestPrincipal
    case attribute(IstioAuthorization.Attribute)

    /// Keys ztunnel evaluates (istiod's `l4WhenAttributes`).
    static let l4Keys: Set<String> = ["source.ip", "source.namespace", "source.principal", "destination.ip", "destination.port"]

    init?(_ key: String) {
        switch key {
        case "source.ip": self = .sourceIP
        case "remote.ip": self = .remoteIP
        case "destination.ip": self = .destinationIP
        case "destination.port": self = .destinationPort
        case "source.namespace": self = .sourceNamespace
        case "source.principal": self = .sourcePrincipal
        case "request.auth.principal": self = .requestPrincipal
        case "request.auth.audiences": self = .attribute(.requestAuthAudiences)
        case "request.auth.presenter": self = .attribute(.requestAuthPresenter)
        case "connection.sni": self = .attribute(.connectionSNI)
        default:
            if key.hasPrefix("request.headers[") && key.hasSuffix("]") {
                let name = key.dropFirst("request.headers[".count).dropLast()
                guard !name.isEmpty else { return nil }
                self = .attribute(.requestHeader(name.lowercased()))
            } else if key.hasPrefix("request.auth.claims[") && key.hasSuffix("]") {
                let inner = key.dropFirst("request.auth.claims[".count).dropLast()
                let path = inner.components(separatedBy: "][")
                guard !path.contains(where: \.isEmpty) else { return nil }
                self = .attribute(.requestAuthClaim(path))
            } else {
                return nil
            }
        }
    }
}
