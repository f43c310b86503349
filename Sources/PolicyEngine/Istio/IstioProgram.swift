/// A contiguous slice of one of the program's pools.
struct Span: Sendable {
    var start: Int32
    var count: Int32

    static let empty = Span(start: 0, count: 0)

    @inline(__always) var range: Range<Int> { Int(start)..<Int(start + count) }
}

/// One test of a compiled match. Plain data (no references), so the
/// evaluation loop copies nothing that needs reference counting.
///
/// A group's predicates are stored contiguously; `endOfMatch` and
/// `endOfClause` mark where a match (AND of predicates) and a clause (OR of
/// matches) end, so evaluating a group walks one array slice.
struct Predicate: Sendable {
    enum Field: UInt8, Sendable {
        case principal, namespace, serviceAccount, sourceIP, destinationIP, destinationPort, l7, always
    }

    var field: Field
    /// A `not` list: the predicate holds when the list does not match.
    var negated: Bool
    /// Presence match (`*`): any present value matches.
    var presence: Bool
    var endOfMatch = false
    var endOfClause = false
    /// Up to two exact ids or ports held inline (count in `exact.count`,
    /// `exact.start` unused) to spare a pool read; -1 when unused.
    var inline0: Int32 = -1
    var inline1: Int32 = -1
    /// Interned ids / packed service accounts / CIDRs / ports / L7 match index.
    var exact: Span
    /// Prefix patterns in the string pool.
    var prefixes: Span
    /// Suffix patterns in the string pool.
    var suffixes: Span
}

/// A compiled group: the rule it came from and its predicates.
struct GroupRecord: Sendable {
    var policyIndex: Int32
    var ruleIndex: Int32
    var predicates: Span
}

/// Istio authorization policies compiled into flat pools of plain data.
struct IstioProgram: Sendable {
    var ids: [Int32] = []
    var serviceAccounts: [UInt64] = []
    var strings: [String] = []
    var cidrs: [CIDR] = []
    var ports: [UInt16] = []
    var l7: [IstioAuthorization.Match] = []
    var predicates: [Predicate] = []
    var groups: [GroupRecord] = []

    static func pack(_ namespace: Int32, _ serviceAccount: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: namespace)) << 32 | UInt64(UInt32(bitPattern: serviceAccount))
    }

    private mutating func strings(_ list: [IstioAuthorization.StringMatch], _ field: Predicate.Field, negated: Bool,
                                  interner: inout StringInterner) {
        guard !list.isEmpty else { return }
        var presence = false
        var exact: [Int32] = [], prefixes: [String] = [], suffixes: [String] = []
        for m in list {
            switch m {
            case .exact(let e), .pathTemplate(let e): exact.append(interner.intern(e))
            case .prefix(let p): prefixes.append(p)
            case .suffix(let s): suffixes.append(s)
            case .presence: presence = true
            }
        }
        let e = Span(start: Int32(ids.count), count: Int32(exact.count))
        var inline: [Int32] = []
        if exact.count <= 2 { inline = exact } else { ids += exact }
        let p = Span(start: Int32(strings.count), count: Int32(prefixes.count))
        strings += prefixes
        let s = Span(start: Int32(strings.count), count: Int32(suffixes.count))
        strings += suffixes
        var pred = Predicate(field: field, negated: negated, presence: presence, exact: e, prefixes: p, suffixes: s)
        if exact.count <= 2 {
            pred.inline0 = inline.first ?? -1
            pred.inline1 = inline.count > 1 ? inline[1] : -1
        }
        predicates.append(pred)
    }

    private mutating func simple(_ field: Predicate.Field, negated: Bool, span: Span) {
        predicates.append(Predicate(field: field, negated: negated, presence: false, exact: span, prefixes: .empty, suffixes: .empty))
    }

    private mutating func compile(_ m: IstioAuthorization.Match, interner: inout StringInterner) -> Span {
        let start = Int32(predicates.count)
        // Cheapest tests first.
        for (list, negated) in [(m.destinationPorts, false), (m.notDestinationPorts, true)] where !list.isEmpty {
            simple(.destinationPort, negated: negated, span: Span(start: Int32(ports.count), count: Int32(list.count)))
            if list.count <= 2 {
                predicates[predicates.count - 1].inline0 = Int32(list[0])
                predicates[predicates.count - 1].inline1 = list.count > 1 ? Int32(list[1]) : -1
            } else {
                ports += list
            }
        }
        strings(m.principals, .principal, negated: false, interner: &interner)
        strings(m.notPrincipals, .principal, negated: true, interner: &interner)
        strings(m.namespaces, .namespace, negated: false, interner: &interner)
        strings(m.notNamespaces, .namespace, negated: true, interner: &interner)
        for (list, negated) in [(m.serviceAccounts, false), (m.notServiceAccounts, true)] where !list.isEmpty {
            simple(.serviceAccount, negated: negated, span: Span(start: Int32(serviceAccounts.count), count: Int32(list.count)))
            serviceAccounts += list.map { IstioProgram.pack(interner.intern($0.namespace), interner.intern($0.name)) }
        }
        for (list, field, negated) in [(m.sourceIPs, Predicate.Field.sourceIP, false), (m.notSourceIPs, .sourceIP, true),
                                       (m.destinationIPs, .destinationIP, false), (m.notDestinationIPs, .destinationIP, true)]
            where !list.isEmpty {
            simple(field, negated: negated, span: Span(start: Int32(cidrs.count), count: Int32(list.count)))
            cidrs += list
        }
        let hasL7 = !(m.requestPrincipals.isEmpty && m.notRequestPrincipals.isEmpty && m.remoteIPs.isEmpty
            && m.notRemoteIPs.isEmpty && m.hosts.isEmpty && m.notHosts.isEmpty && m.methods.isEmpty
            && m.notMethods.isEmpty && m.paths.isEmpty && m.notPaths.isEmpty && m.conditions.isEmpty)
        if hasL7 {
            simple(.l7, negated: false, span: Span(start: Int32(l7.count), count: 1))
            l7.append(m)
        }
        if Int32(predicates.count) == start { simple(.always, negated: false, span: .empty) }
        predicates[predicates.count - 1].endOfMatch = true
        return Span(start: start, count: Int32(predicates.count) - start)
    }

    /// Appends a group and returns its index.
    mutating func add(_ g: IstioAuthorization.Group, policyIndex: Int, interner: inout StringInterner) -> Int {
        let start = Int32(predicates.count)
        for rule in g.rules {
            if rule.isEmpty {
                // A Rules message without matches can never match.
                simple(.always, negated: true, span: .empty)
                predicates[predicates.count - 1].endOfMatch = true
            }
            for m in rule { _ = compile(m, interner: &interner) }
            predicates[predicates.count - 1].endOfClause = true
        }
        groups.append(GroupRecord(policyIndex: Int32(policyIndex), ruleIndex: Int32(g.ruleIndex),
                                  predicates: Span(start: start, count: Int32(predicates.count) - start)))
        return groups.count - 1
    }

    /// The bucket key of a group. Ports: a clause whose every match restricts
    /// `destinationPorts` confines the group to their union. Principals (or
    /// namespaces): a clause whose every match lists only exact principals
    /// confines the group to those.
    static func key(_ g: IstioAuthorization.Group, interner: inout StringInterner) -> GroupKey {
        var ports: Set<UInt16>?
        var principals: Set<String>?
        var namespaces: Set<String>?
        func exactOnly(_ list: [IstioAuthorization.StringMatch]) -> [String]? {
            guard !list.isEmpty else { return nil }
            var out: [String] = []
            for m in list {
                guard case .exact(let e) = m else { return nil }
                out.append(e)
            }
            return out
        }
        for rule in g.rules where !rule.isEmpty {
            if rule.allSatisfy({ !$0.destinationPorts.isEmpty }) {
                let union = Set(rule.flatMap(\.destinationPorts))
                ports = ports.map { $0.intersection(union) } ?? union
            }
            let p = rule.map { exactOnly($0.principals) }
            if p.allSatisfy({ $0 != nil }) {
                let union = Set(p.compactMap { $0 }.joined())
                principals = principals.map { $0.intersection(union) } ?? union
            }
            let n = rule.map { exactOnly($0.namespaces) }
            if n.allSatisfy({ $0 != nil }) {
                let union = Set(n.compactMap { $0 }.joined())
                namespaces = namespaces.map { $0.intersection(union) } ?? union
            }
        }
        return GroupKey(ports: ports.map { $0.sorted() },
                        principals: principals.map { $0.sorted().map { interner.intern($0) } },
                        namespaces: namespaces.map { $0.sorted().map { interner.intern($0) } })
    }

    // MARK: Evaluation

    @inline(__always)
    private func stringHit(_ p: Predicate, id: Int32, value: String?) -> Bool {
        guard let value else { return false }
        if p.presence { return true }
        if p.exact.count <= 2 {
            if id >= 0 && (p.inline0 == id || p.inline1 == id) { return true }
        } else {
            for k in p.exact.range where ids[k] == id { return true }
        }
        for k in p.prefixes.range where value.hasPrefix(strings[k]) { return true }
        for k in p.suffixes.range where value.hasSuffix(strings[k]) { return true }
        return false
    }

    @inline(__always)
    private func cidrHit(_ span: Span, _ ip: IPAddress?) -> Bool {
        guard let ip else { return false }
        for k in span.range where cidrs[k].contains(ip) { return true }
        return false
    }

    @inline(__always)
    private func holds(_ p: Predicate, _ src: SourceFacts, _ destination: IPAddress?, _ port: UInt16, _ request: RequestFacts?) -> Bool {
        let hit: Bool
        switch p.field {
        case .destinationPort:
            if p.exact.count <= 2 {
                hit = p.inline0 == Int32(port) || p.inline1 == Int32(port)
            } else {
                var found = false
                for k in p.exact.range where ports[k] == port { found = true; break }
                hit = found
            }
        case .always:
            hit = true
        case .principal:
            hit = stringHit(p, id: src.principalID, value: src.principal)
        case .namespace:
            hit = stringHit(p, id: src.namespaceID, value: src.namespace)
        case .serviceAccount:
            if src.namespaceID < 0 || src.serviceAccountID < 0 { hit = false } else {
                let packed = IstioProgram.pack(src.namespaceID, src.serviceAccountID)
                var found = false
                for k in p.exact.range where serviceAccounts[k] == packed { found = true; break }
                hit = found
            }
        case .sourceIP:
            hit = cidrHit(p.exact, src.address)
        case .destinationIP:
            hit = cidrHit(p.exact, destination)
        case .l7:
            // Only L7 policies carry L7 parts; without a request they cannot match.
            guard let request else { return false }
            return L7Matcher.matchesL7(l7[Int(p.exact.start)], request)
        }
        return p.negated ? !hit : hit
    }

    /// Whether group `g` matches: every clause has a match whose predicates all hold.
    func matches(group g: Int, _ src: SourceFacts, destination: IPAddress?, port: UInt16, request: RequestFacts?) -> Bool {
        let span = groups[g].predicates
        var clauseOK = false
        var matchOK = true
        var i = Int(span.start)
        let end = i + Int(span.count)
        while i < end {
            let p = predicates[i]
            if !clauseOK && matchOK && !holds(p, src, destination, port, request) { matchOK = false }
            if p.endOfMatch {
                if matchOK { clauseOK = true }
                matchOK = true
            }
            if p.endOfClause {
                if !clauseOK { return false }
                clauseOK = false
            }
            i += 1
        }
        return true
    }
}
