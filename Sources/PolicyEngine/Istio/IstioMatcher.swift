/// Maps strings used by exact matchers to small integers so that the hot path
/// compares integers instead of strings.
struct StringInterner: Sendable {
    private(set) var ids: [String: Int32] = [:]

    mutating func intern(_ s: String) -> Int32 {
        if let id = ids[s] { return id }
        let id = Int32(ids.count)
        ids[s] = id
        return id
    }

    /// -1 when the string never appears in any policy.
    @inline(__always)
    func lookup(_ s: String) -> Int32 { ids[s] ?? -1 }
}

/// A list of Istio string matches with exact values interned.
struct InternedStringMatches: Sendable {
    var exact: [Int32] = []
    var prefixes: [String] = []
    var suffixes: [String] = []
    var presence = false
    var isEmpty = true

    init() {}

    init(_ matches: [IstioAuthorization.StringMatch], interner: inout StringInterner) {
        isEmpty = matches.isEmpty
        for m in matches {
            switch m {
            case .exact(let e): exact.append(interner.intern(e))
            case .prefix(let p): prefixes.append(p)
            case .suffix(let s): suffixes.append(s)
            case .presence: presence = true
            }
        }
    }

    /// `id` is the interned id of `value` (-1 if not interned).
    @inline(__always)
    func matches(id: Int32, value: String?) -> Bool {
        guard let value else { return false }
        if presence { return true }
        for e in exact where e == id { return true }
        for p in prefixes where value.hasPrefix(p) { return true }
        for s in suffixes where value.hasSuffix(s) { return true }
        return false
    }
}

/// The facts of the source peer derived once per decision.
struct SourceFacts {
    var principal: String?
    var principalID: Int32 = -1
    var namespace: String?
    var namespaceID: Int32 = -1
    var serviceAccount: String?
    var serviceAccountID: Int32 = -1
    var address: IPAddress?
}

/// What the istio principal `<td>/ns/<ns>/sa/<sa>` says about its owner.
struct PrincipalInfo: Sendable {
    var principalID: Int32
    var namespace: String?
    var namespaceID: Int32
    var serviceAccount: String?
    var serviceAccountID: Int32

    /// Splits a principal into namespace and service account (nil parts when it
    /// does not follow Istio's form).
    static func parse(_ principal: String) -> (namespace: String?, serviceAccount: String?) {
        var s = Substring(principal)
        if s.hasPrefix("spiffe://") { s = s.dropFirst("spiffe://".count) }
        let parts = s.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count >= 5, parts[1] == "ns", parts[3] == "sa" else { return (nil, nil) }
        return (String(parts[2]), String(parts[4]))
    }
}

/// L7 request facts, present only in `decide(request)`.
struct RequestFacts {
    var request: HTTPRequest
    var remoteAddress: IPAddress?
}

/// One compiled `IstioAuthorization.Match`.
struct CompiledMatch: Sendable {
    var namespaces: InternedStringMatches
    var notNamespaces: InternedStringMatches
    var principals: InternedStringMatches
    var notPrincipals: InternedStringMatches
    /// (namespace id, service account id) pairs.
    var serviceAccounts: [(Int32, Int32)]
    var notServiceAccounts: [(Int32, Int32)]
    var sourceIPs: [CIDR]
    var notSourceIPs: [CIDR]
    var destinationIPs: [CIDR]
    var notDestinationIPs: [CIDR]
    var destinationPorts: [UInt16]
    var notDestinationPorts: [UInt16]
    /// The L7 part, nil when the match has no L7 attribute.
    var l7: IstioAuthorization.Match?

    init(_ m: IstioAuthorization.Match, interner: inout StringInterner) {
        namespaces = InternedStringMatches(m.namespaces, interner: &interner)
        notNamespaces = InternedStringMatches(m.notNamespaces, interner: &interner)
        principals = InternedStringMatches(m.principals, interner: &interner)
        notPrincipals = InternedStringMatches(m.notPrincipals, interner: &interner)
        serviceAccounts = m.serviceAccounts.map { (interner.intern($0.namespace), interner.intern($0.name)) }
        notServiceAccounts = m.notServiceAccounts.map { (interner.intern($0.namespace), interner.intern($0.name)) }
        sourceIPs = m.sourceIPs
        notSourceIPs = m.notSourceIPs
        destinationIPs = m.destinationIPs
        notDestinationIPs = m.notDestinationIPs
        destinationPorts = m.destinationPorts
        notDestinationPorts = m.notDestinationPorts
        let hasL7 = !(m.requestPrincipals.isEmpty && m.notRequestPrincipals.isEmpty && m.remoteIPs.isEmpty
            && m.notRemoteIPs.isEmpty && m.hosts.isEmpty && m.notHosts.isEmpty && m.methods.isEmpty
            && m.notMethods.isEmpty && m.paths.isEmpty && m.notPaths.isEmpty && m.conditions.isEmpty)
        l7 = hasL7 ? m : nil
    }

    /// The ports this match can possibly match, nil for any.
    var possiblePorts: [UInt16]? { destinationPorts.isEmpty ? nil : destinationPorts }

    @inline(__always)
    func matches(_ src: SourceFacts, destination: IPAddress?, port: UInt16, request: RequestFacts?) -> Bool {
        if !destinationPorts.isEmpty && !destinationPorts.contains(port) { return false }
        if !notDestinationPorts.isEmpty && notDestinationPorts.contains(port) { return false }
        if !principals.isEmpty && !principals.matches(id: src.principalID, value: src.principal) { return false }
        if !notPrincipals.isEmpty && notPrincipals.matches(id: src.principalID, value: src.principal) { return false }
        if !namespaces.isEmpty && !namespaces.matches(id: src.namespaceID, value: src.namespace) { return false }
        if !notNamespaces.isEmpty && notNamespaces.matches(id: src.namespaceID, value: src.namespace) { return false }
        if !serviceAccounts.isEmpty && !serviceAccounts.contains(where: { $0.0 == src.namespaceID && $0.1 == src.serviceAccountID }) {
            return false
        }
        if !notServiceAccounts.isEmpty && notServiceAccounts.contains(where: { $0.0 == src.namespaceID && $0.1 == src.serviceAccountID }) {
            return false
        }
        if !sourceIPs.isEmpty && !CompiledMatch.any(sourceIPs, contains: src.address) { return false }
        if !notSourceIPs.isEmpty && CompiledMatch.any(notSourceIPs, contains: src.address) { return false }
        if !destinationIPs.isEmpty && !CompiledMatch.any(destinationIPs, contains: destination) { return false }
        if !notDestinationIPs.isEmpty && CompiledMatch.any(notDestinationIPs, contains: destination) { return false }
        if let l7 {
            // Only L7 policies carry L7 parts; without a request they cannot match.
            guard let request else { return false }
            return CompiledMatch.matchesL7(l7, request)
        }
        return true
    }

    @inline(__always)
    static func any(_ cidrs: [CIDR], contains ip: IPAddress?) -> Bool {
        guard let ip else { return false }
        for c in cidrs where c.contains(ip) { return true }
        return false
    }

    static func anyMatch(_ list: [IstioAuthorization.StringMatch], _ value: String?) -> Bool {
        list.contains { $0.matches(value) }
    }

    static func hostMatches(_ list: [IstioAuthorization.StringMatch], _ authority: String) -> Bool {
        let host = authority.lowercased()
        let withoutPort: String? = {
            // Strip a trailing :port (not inside an IPv6 literal).
            guard let colon = host.lastIndex(of: ":"), !host.hasSuffix("]"), host[host.index(after: colon)...].allSatisfy(\.isNumber)
            else { return nil }
            return String(host[..<colon])
        }()
        for m in list {
            let lowered: IstioAuthorization.StringMatch
            switch m {
            case .exact(let e): lowered = .exact(e.lowercased())
            case .prefix(let p): lowered = .prefix(p.lowercased())
            case .suffix(let s): lowered = .suffix(s.lowercased())
            case .presence: lowered = .presence
            }
            if lowered.matches(host) { return true }
            if let withoutPort, lowered.matches(withoutPort) { return true }
        }
        return false
    }

    static func matchesL7(_ m: IstioAuthorization.Match, _ facts: RequestFacts) -> Bool {
        let r = facts.request
        if !m.requestPrincipals.isEmpty && !anyMatch(m.requestPrincipals, r.requestPrincipal) { return false }
        if !m.notRequestPrincipals.isEmpty && anyMatch(m.notRequestPrincipals, r.requestPrincipal) { return false }
        if !m.remoteIPs.isEmpty && !any(m.remoteIPs, contains: facts.remoteAddress) { return false }
        if !m.notRemoteIPs.isEmpty && any(m.notRemoteIPs, contains: facts.remoteAddress) { return false }
        if !m.hosts.isEmpty && !hostMatches(m.hosts, r.host) { return false }
        if !m.notHosts.isEmpty && hostMatches(m.notHosts, r.host) { return false }
        if !m.methods.isEmpty && !anyMatch(m.methods, r.method) { return false }
        if !m.notMethods.isEmpty && anyMatch(m.notMethods, r.method) { return false }
        let path = String(r.pathWithoutQuery)
        if !m.paths.isEmpty && !anyMatch(m.paths, path) { return false }
        if !m.notPaths.isEmpty && anyMatch(m.notPaths, path) { return false }
        for c in m.conditions {
            let values = attributeValues(c.attribute, r)
            if !c.values.isEmpty && !values.contains(where: { v in c.values.contains { $0.matches(v) } }) { return false }
            if !c.notValues.isEmpty && values.contains(where: { v in c.notValues.contains { $0.matches(v) } }) { return false }
        }
        return true
    }

    static func attributeValues(_ a: IstioAuthorization.Attribute, _ r: HTTPRequest) -> [String] {
        switch a {
        case .requestHeader(let h): return r.headers[h].map { [$0] } ?? []
        case .connectionSNI: return r.connection.sni.map { [$0] } ?? []
        case .requestAuthAudiences: return r.claims["aud"] ?? []
        case .requestAuthPresenter: return r.claims["azp"] ?? []
        case .requestAuthClaim(let path): return r.claims[path.joined(separator: ".")] ?? []
        }
    }
}

/// One compiled group: all rules must match, each rule by any of its matches.
struct CompiledGroup: Sendable {
    var rule: RuleReference
    var policyIndex: Int
    var rules: [[CompiledMatch]]

    /// Ports the group can match (nil = any): if any rule only has
    /// port-restricted matches, the group is confined to their union.
    var possiblePorts: [UInt16]? {
        var result: Set<UInt16>?
        for r in rules {
            var union = Set<UInt16>()
            var unconstrained = false
            for m in r {
                guard let p = m.possiblePorts else { unconstrained = true; break }
                union.formUnion(p)
            }
            if unconstrained { continue }
            result = result.map { $0.intersection(union) } ?? union
        }
        return result.map { $0.sorted() }
    }

    @inline(__always)
    func matches(_ src: SourceFacts, destination: IPAddress?, port: UInt16, request: RequestFacts?) -> Bool {
        for r in rules {
            var any = false
            for m in r where m.matches(src, destination: destination, port: port, request: request) {
                any = true
                break
            }
            if !any { return false }
        }
        return true
    }
}
