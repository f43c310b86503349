import Logging

/// A policy that could not be compiled (for example an HTTP regex that does
/// not parse when the policy was built in code rather than loaded).
public struct PolicyCompileError: Error, Sendable, Hashable, CustomStringConvertible {
    public var policy: PolicyReference
    public var message: String

    public init(policy: PolicyReference, message: String) {
        self.policy = policy
        self.message = message
    }

    public var description: String { "\(policy): \(message)" }
}

/// The compiled, immutable set of every policy the engine enforces, with the
/// inventory it was compiled against.
///
/// `decide(_:)` answers for a new connection (L4: Kubernetes and Cilium
/// network policy at both ends, Istio authorization as ztunnel enforces it)
/// or for an HTTP request (L7: the same plus Cilium HTTP rules and Istio
/// authorization with every attribute, as a waypoint enforces it). Every
/// decision names the policy and rule that made it.
///
/// Istio policies are indexed per workload and per destination port, with
/// the strings they compare interned, so an L4 decision costs a few hash
/// lookups and integer comparisons.
public struct PolicySet: Sendable {
    /// Compilation options.
    public struct Options: Sendable {
        /// The trust domain of workload principals (`<td>/ns/<ns>/sa/<sa>`).
        public var trustDomain: String
        /// Istio's root namespace: selector-less policies there apply mesh-wide.
        public var rootNamespace: String
        /// Providers for Istio CUSTOM policies, by provider name.
        public var customProviders: [String: any CustomAuthorizationProvider]

        public init(trustDomain: String = "cluster.local", rootNamespace: String = "istio-system",
                    customProviders: [String: any CustomAuthorizationProvider] = [:]) {
            self.trustDomain = trustDomain
            self.rootNamespace = rootNamespace
            self.customProviders = customProviders
        }
    }

    /// The workloads, namespaces and services the set was compiled against.
    public let inventory: Inventory
    /// The Kubernetes NetworkPolicies in the set.
    public let networkPolicies: [NetworkPolicy]
    /// The Cilium policies in the set.
    public let ciliumPolicies: [CiliumNetworkPolicy]
    /// The Istio AuthorizationPolicies in the set.
    public let authorizationPolicies: [AuthorizationPolicy]
    /// Istio policies supplied directly in the engine's form.
    public let istioAuthorizations: [IstioAuthorization]

    /// The Istio policies in the engine's form as enforced at `layer`
    /// (converted on demand; the compiled set keeps only its own tables).
    public func authorizations(for layer: EnforcementLayer) -> [IstioAuthorization] {
        PolicySet.authorizations(authorizationPolicies, istioAuthorizations, for: layer, rootNamespace: options.rootNamespace)
    }

    /// The CRDs converted for `layer`, followed by the policies supplied in the engine's form.
    private static func authorizations(_ policies: [AuthorizationPolicy], _ direct: [IstioAuthorization],
                                       for layer: EnforcementLayer, rootNamespace: String) -> [IstioAuthorization] {
        policies.compactMap { $0.authorization(for: layer, rootNamespace: rootNamespace) } + direct
    }

    let options: Options
    let istioL4: IstioLayerEngine
    let istioL7: IstioLayerEngine
    let network: NetworkEngine
    private let interner: StringInterner
    private let principals: PrincipalTable
    private let peersByAddress: [IPAddress: Peer]

    /// Compiles policies against an inventory.
    ///
    /// - Parameters:
    ///   - authorizationPolicies: Istio CRDs; converted for both layers.
    ///   - istioAuthorizations: policies already in the engine's form (e.g. from
    ///     the `istio.security.Authorization` xDS resource); enforced at both layers.
    public init(inventory: Inventory, authorizationPolicies: [AuthorizationPolicy] = [],
                networkPolicies: [NetworkPolicy] = [], ciliumPolicies: [CiliumNetworkPolicy] = [],
                istioAuthorizations: [IstioAuthorization] = [], options: Options = Options(),
                logger: Logger = Logger(label: "swift-mesh.policy")) throws(PolicyCompileError) {
        self.inventory = inventory
        self.options = options
        self.networkPolicies = networkPolicies
        self.ciliumPolicies = ciliumPolicies
        self.authorizationPolicies = authorizationPolicies
        self.istioAuthorizations = istioAuthorizations
        var interner = StringInterner()
        func converted(for layer: EnforcementLayer) -> [IstioAuthorization] {
            PolicySet.authorizations(authorizationPolicies, istioAuthorizations, for: layer, rootNamespace: options.rootNamespace)
        }
        istioL4 = IstioLayerEngine(layer: .l4, authorizations: converted(for: .l4), inventory: inventory, interner: &interner)
        // When no policy has anything only a waypoint enforces (L7 attributes,
        // AUDIT, CUSTOM, targetRefs), both layers see the same policies and share one engine.
        let sameAtBothLayers = authorizationPolicies.allSatisfy { p in
            (p.action == .allow || p.action == .deny) && p.targetRefs.isEmpty
                && (p.rules ?? []).allSatisfy { AuthorizationPolicy.l7Attributes(of: $0).isEmpty }
        }
        istioL7 = sameAtBothLayers ? istioL4
            : IstioLayerEngine(layer: .l7, authorizations: converted(for: .l7), inventory: inventory, interner: &interner)
        var compiled: [CompiledNetworkPolicy] = networkPolicies.map { $0.compiled() }
        for c in ciliumPolicies {
            do { compiled.append(try c.compiled()) } catch {
                throw PolicyCompileError(policy: c.reference, message: "invalid HTTP regular expression: \(error)")
            }
        }
        network = NetworkEngine(policies: compiled, inventory: inventory)
        var principals: [(String, PrincipalInfo)] = []
        var peers: [IPAddress: Peer] = [:]
        for w in inventory.workloads {
            let p = w.principal(trustDomain: options.trustDomain)
            principals.append((p, PrincipalInfo(principalID: interner.lookup(p), namespace: w.namespace,
                                                namespaceID: interner.lookup(w.namespace), serviceAccount: w.serviceAccount,
                                                serviceAccountID: interner.lookup(w.serviceAccount))))
            for a in w.addresses { peers[a] = .workload(w) }
        }
        for (entity, addresses) in inventory.reservedAddresses {
            for a in addresses where peers[a] == nil { peers[a] = .reserved(entity, a) }
        }
        self.interner = interner
        self.principals = PrincipalTable(principals)
        self.peersByAddress = peers
        logger.debug("compiled policy set", metadata: [
            "workloads": "\(inventory.workloads.count)", "istioL4": "\(istioL4.policyCount)",
            "istioL7": "\(istioL7.policyCount)", "network": "\(network.policies.count)",
        ])
    }

    /// Compiles everything a ``ManifestLoader`` loaded.
    public init(bundle: PolicyBundle, options: Options = Options(),
                logger: Logger = Logger(label: "swift-mesh.policy")) throws(PolicyCompileError) {
        try self.init(inventory: bundle.inventory, authorizationPolicies: bundle.authorizationPolicies,
                      networkPolicies: bundle.networkPolicies, ciliumPolicies: bundle.ciliumPolicies,
                      options: options, logger: logger)
    }

    /// Resolves an address-only peer to the workload or reserved entity that owns the address.
    public func normalize(_ peer: Peer) -> Peer {
        if case .external(let ip) = peer, let known = peersByAddress[ip] { return known }
        return peer
    }

    func sourceFacts(principal: String?, address: IPAddress?) -> SourceFacts {
        var f = SourceFacts()
        f.address = address
        guard var principal else { return f }
        if let info = principals.lookup(principal) {
            f.principal = principal
            f.principalID = info.principalID
            f.namespace = info.namespace
            f.namespaceID = info.namespaceID
            f.serviceAccount = info.serviceAccount
            f.serviceAccountID = info.serviceAccountID
            return f
        }
        // Policies name principals without the URI scheme, as ztunnel compares them.
        if principal.hasPrefix("spiffe://") {
            principal.removeFirst("spiffe://".count)
            return sourceFacts(principal: principal, address: address)
        }
        f.principal = principal
        f.principalID = interner.lookup(principal)
        let parts = PrincipalInfo.parse(principal)
        f.namespace = parts.namespace
        f.namespaceID = parts.namespace.map(interner.lookup) ?? -1
        f.serviceAccount = parts.serviceAccount
        f.serviceAccountID = parts.serviceAccount.map(interner.lookup) ?? -1
        return f
    }

    private func authorization(_ engine: IstioLayerEngine, destination w: Workload, source: SourceFacts,
                               destinationAddress: IPAddress?, port: UInt16, request: RequestFacts?) -> (LayerDecision, RuleReference?) {
        engine.decide(w, inventory: inventory, source: source, destination: destinationAddress, port: port, request: request,
                      providers: options.customProviders)
    }

    /// The L4 decision for a new connection.
    public func decide(_ connection: Connection) -> Decision {
        // Fast path: mesh traffic between known workloads and no network policy.
        if network.isEmpty, connection.protocol == .tcp, case .workload(let dw) = connection.destination,
           case .workload = connection.source {
            let facts = sourceFacts(principal: connection.sourcePrincipal, address: connection.source.address)
            let authz = istioL4.decide(dw, inventory: inventory, source: facts, destination: dw.addresses.first,
                                       port: connection.destinationPort, request: nil, providers: options.customProviders).0
            return Decision(verdict: authz.verdict, decidedBy: authz, authorization: authz)
        }
        let src = normalize(connection.source)
        let dst = normalize(connection.destination)
        var egress: LayerDecision?
        var ingress: LayerDecision?
        var authz: LayerDecision?
        if !network.isEmpty {
            if let sw = src.workload {
                egress = network.decide(endpoint: sw, direction: .egress, peer: dst, port: connection.destinationPort, proto: connection.protocol)
            }
            if let dw = dst.workload {
                ingress = network.decide(endpoint: dw, direction: .ingress, peer: src, port: connection.destinationPort, proto: connection.protocol)
            }
        }
        // Istio (ztunnel, waypoints, sidecars) only carries TCP.
        if let dw = dst.workload, connection.protocol == .tcp {
            let facts = sourceFacts(principal: connection.sourcePrincipal, address: src.address)
            authz = authorization(istioL4, destination: dw, source: facts, destinationAddress: dst.address,
                                  port: connection.destinationPort, request: nil).0
        }
        return PolicySet.combine(egress: egress, ingress: ingress, authorization: authz, audit: nil)
    }

    /// The L7 decision for an HTTP request (network policy at L4 and, where
    /// redirected, Cilium HTTP rules; Istio authorization with all attributes).
    public func decide(_ request: HTTPRequest) -> Decision {
        let c = request.connection
        let src = normalize(c.source)
        let dst = normalize(c.destination)
        var egress: LayerDecision?
        var ingress: LayerDecision?
        var authz: LayerDecision?
        var audit: RuleReference?
        if !network.isEmpty {
            if let sw = src.workload {
                let l4 = network.decide(endpoint: sw, direction: .egress, peer: dst, port: c.destinationPort, proto: c.protocol)
                egress = network.decideHTTP(endpoint: sw, direction: .egress, peer: dst, request: request, l4: l4)
            }
            if let dw = dst.workload {
                let l4 = network.decide(endpoint: dw, direction: .ingress, peer: src, port: c.destinationPort, proto: c.protocol)
                ingress = network.decideHTTP(endpoint: dw, direction: .ingress, peer: src, request: request, l4: l4)
            }
        }
        if let dw = dst.workload, c.protocol == .tcp {
            let facts = sourceFacts(principal: c.sourcePrincipal, address: src.address)
            let r = RequestFacts(request: request, remoteAddress: request.remoteAddress ?? src.address)
            (authz, audit) = authorization(istioL7, destination: dw, source: facts, destinationAddress: dst.address,
                                           port: c.destinationPort, request: r)
        }
        return PolicySet.combine(egress: egress, ingress: ingress, authorization: authz, audit: audit)
    }

    static func combine(egress: LayerDecision?, ingress: LayerDecision?, authorization: LayerDecision?, audit: RuleReference?) -> Decision {
        func make(_ v: Verdict, _ by: LayerDecision) -> Decision {
            Decision(verdict: v, decidedBy: by, egress: egress, ingress: ingress, authorization: authorization, audit: audit)
        }
        if let e = egress, e.verdict == .deny { return make(.deny, e) }
        if let i = ingress, i.verdict == .deny { return make(.deny, i) }
        if let a = authorization, a.verdict == .deny { return make(.deny, a) }
        func byRule(_ l: LayerDecision?) -> LayerDecision? {
            guard let l, case .rule = l.reason else { return nil }
            return l
        }
        let decided = byRule(authorization) ?? byRule(ingress) ?? byRule(egress) ?? authorization ?? ingress ?? egress
            ?? LayerDecision(layer: .authorization, verdict: .allow, reason: .notSelected)
        return make(.allow, decided)
    }
}
