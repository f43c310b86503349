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

/// L7 matching helpers (evaluated only in `decide(request)`).
enum L7Matcher {
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
            case .pathTemplate(let t): lowered = .pathTemplate(t.lowercased())
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

