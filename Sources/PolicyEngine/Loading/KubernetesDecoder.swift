/// Decoders for Kubernetes core and networking objects.
package enum KubernetesDecoder {
    package static func labelSelector(_ c: YAMLCursor, stripCiliumPrefixes: Bool = false) throws(PolicyLoadError) -> LabelSelector {
        let m = try c.mapping()
        var matchLabels: Labels = [:]
        if let ml = m.optional("matchLabels") {
            for (k, v) in try ml.stringMap() {
                matchLabels[try key(k, ml, stripCiliumPrefixes)] = v
            }
        }
        var exprs: [LabelSelector.Requirement] = []
        for e in try m.optional("matchExpressions")?.sequence() ?? [] {
            let em = try e.mapping()
            let k = try key(try em.required("key").string(), e, stripCiliumPrefixes)
            let opText = try em.required("operator").string()
            guard let op = LabelSelector.Requirement.Operator(rawValue: opText) else {
                throw e.error(.invalidValue, "operator '\(opText)' is not one of In, NotIn, Exists, DoesNotExist", at: e.path + ".operator")
            }
            let values = try em.optional("values")?.stringList() ?? []
            switch op {
            case .in, .notIn:
                if values.isEmpty { throw e.error(.invalidValue, "operator \(opText) requires at least one value", at: e.path + ".values") }
            case .exists, .doesNotExist:
                if !values.isEmpty { throw e.error(.invalidValue, "operator \(opText) must not have values", at: e.path + ".values") }
            }
            try em.finish()
            exprs.append(.init(key: k, operator: op, values: values))
        }
        try m.finish()
        return LabelSelector(matchLabels: matchLabels, matchExpressions: exprs)
    }

    /// Cilium label keys may carry a source prefix (`k8s:`, `any:`); other sources are not supported.
    private static func key(_ k: String, _ c: YAMLCursor, _ strip: Bool) throws(PolicyLoadError) -> String {
        guard strip else { return k }
        if k.hasPrefix("k8s:") { return String(k.dropFirst(4)) }
        if k.hasPrefix("any:") { return String(k.dropFirst(4)) }
        if k.hasPrefix("reserved:") || k.hasPrefix("cidr:") || k.hasPrefix("fqdn:") {
            throw c.error(.unsupported, "label source in '\(k)' is not supported; use fromEntities/fromCIDR instead")
        }
        return k
    }

    package static func transportProtocol(_ c: YAMLCursor) throws(PolicyLoadError) -> TransportProtocol {
        let text = try c.string()
        guard let p = TransportProtocol(rawValue: text) else {
            throw c.error(.invalidValue, "protocol '\(text)' is not one of TCP, UDP, SCTP")
        }
        return p
    }

    package static func port(_ value: Int, _ c: YAMLCursor) throws(PolicyLoadError) -> UInt16 {
        guard (1...65535).contains(value) else { throw c.error(.invalidValue, "port \(value) is outside 1-65535") }
        return UInt16(value)
    }

    /// IANA service name rules for named ports: 1-15 lowercase letters, digits
    /// and '-', at least one letter, no leading/trailing or double '-'.
    package static func validPortName(_ s: String) -> Bool {
        !s.isEmpty && s.count <= 15 && s.allSatisfy { ($0.isLetter && $0.isLowercase && $0.isASCII) || ($0.isNumber && $0.isASCII) || $0 == "-" }
            && s.contains(where: \.isLetter) && !s.hasPrefix("-") && !s.hasSuffix("-") && !s.contains("--")
    }

    static func networkPolicy(_ spec: YAMLCursor, namespace: String, name: String) throws(PolicyLoadError) -> NetworkPolicy {
        let m = try spec.mapping()
        let podSelector = try labelSelector(try m.required("podSelector"))
        var types: Set<NetworkPolicy.PolicyType>?
        if let pt = m.optional("policyTypes") {
            var set = Set<NetworkPolicy.PolicyType>()
            for t in try pt.sequence() {
                let text = try t.string()
                guard let v = NetworkPolicy.PolicyType(rawValue: text) else {
                    throw t.error(.invalidValue, "policy type '\(text)' is not Ingress or Egress")
                }
                set.insert(v)
            }
            types = set
        }
        let ingress = try rules(m.optional("ingress"), peerKey: "from")
        let egress = try rules(m.optional("egress"), peerKey: "to")
        try m.finish()
        return NetworkPolicy(namespace: namespace, name: name, podSelector: podSelector, policyTypes: types,
                             ingress: ingress, egress: egress)
    }

    private static func rules(_ c: YAMLCursor?, peerKey: String) throws(PolicyLoadError) -> [NetworkPolicy.Rule] {
        guard let c else { return [] }
        var out: [NetworkPolicy.Rule] = []
        for r in try c.sequence() {
            let m = try r.mapping()
            var peers: [NetworkPolicy.Peer] = []
            for p in try m.optional(peerKey)?.sequence() ?? [] { peers.append(try peer(p)) }
            var ports: [NetworkPolicy.Port] = []
            for p in try m.optional("ports")?.sequence() ?? [] { ports.append(try networkPort(p)) }
            try m.finish()
            out.append(.init(peers: peers, ports: ports))
        }
        return out
    }

    private static func peer(_ c: YAMLCursor) throws(PolicyLoadError) -> NetworkPolicy.Peer {
        let m = try c.mapping()
        let pod = try m.optional("podSelector").map { x throws(PolicyLoadError) in try labelSelector(x) }
        let ns = try m.optional("namespaceSelector").map { x throws(PolicyLoadError) in try labelSelector(x) }
        let ipBlock = m.optional("ipBlock")
        try m.finish()
        if let ipBlock {
            guard pod == nil && ns == nil else {
                throw c.error(.invalidValue, "ipBlock may not be combined with podSelector or namespaceSelector")
            }
            let b = try ipBlock.mapping()
            let cidrCursor = try b.required("cidr")
            let text = try cidrCursor.string()
            guard let cidr = CIDR(text, allowBareAddress: false) else {
                throw cidrCursor.error(.invalidValue, "'\(text)' is not a CIDR (ADDRESS/PREFIX)")
            }
            var except: [CIDR] = []
            for e in try b.optional("except")?.sequence() ?? [] {
                let et = try e.string()
                guard let ec = CIDR(et, allowBareAddress: false) else { throw e.error(.invalidValue, "'\(et)' is not a CIDR (ADDRESS/PREFIX)") }
                guard cidr.contains(ec), ec.prefixLength > cidr.prefixLength else {
                    throw e.error(.invalidValue, "except '\(et)' must be a strict subset of cidr '\(text)'")
                }
                except.append(ec)
            }
            try b.finish()
            return .ipBlock(cidr: cidr, except: except)
        }
        guard pod != nil || ns != nil else {
            throw c.error(.missingField, "a peer needs podSelector, namespaceSelector or ipBlock")
        }
        return .pods(podSelector: pod ?? .everything, namespaceSelector: ns)
    }

    private static func networkPort(_ c: YAMLCursor) throws(PolicyLoadError) -> NetworkPolicy.Port {
        let m = try c.mapping()
        let proto = try m.optional("protocol").map { x throws(PolicyLoadError) in try transportProtocol(x) } ?? .tcp
        var value: NetworkPolicy.Port.Value?
        if let pc = m.optional("port") {
            switch try pc.intOrString() {
            case .int(let n): value = .number(try port(n, pc))
            case .string(let s):
                if let n = Int(s) { value = .number(try port(n, pc)) }
                else {
                    guard validPortName(s) else { throw pc.error(.invalidValue, "'\(s)' is not a valid port name") }
                    value = .named(s)
                }
            }
        }
        var endPort: UInt16?
        if let ec = m.optional("endPort") {
            let e = try port(try ec.int(), ec)
            guard case .number(let start) = value else {
                throw ec.error(.invalidValue, "endPort requires a numeric port")
            }
            guard e >= start else { throw ec.error(.invalidValue, "endPort \(e) is below port \(start)") }
            endPort = e
        }
        try m.finish()
        return .init(protocol: proto, port: value, endPort: endPort)
    }

    static func pod(_ top: YAMLMapping, namespace: String, meta: ObjectMeta) throws(PolicyLoadError) -> Workload {
        var sa = "default"
        var named: [NamedPort] = []
        var addresses: [IPAddress] = []
        if let spec = try top.optional("spec")?.mapping() {
            spec.markAllConsumed()
            if let s = try spec.optional("serviceAccountName")?.string() { sa = s }
            else if let s = try spec.optional("serviceAccount")?.string() { sa = s }
            for container in try spec.optional("containers")?.sequence() ?? [] {
                let cm = try container.mapping()
                for p in try cm.optional("ports")?.sequence() ?? [] {
                    let pm = try p.mapping()
                    guard let nameCursor = pm.optional("name") else { continue }
                    let portCursor = try pm.required("containerPort")
                    let number = try port(try portCursor.int(), portCursor)
                    let proto = try pm.optional("protocol").map { x throws(PolicyLoadError) in try transportProtocol(x) } ?? .tcp
                    named.append(NamedPort(name: try nameCursor.string(), port: number, protocol: proto))
                }
            }
        }
        if let status = try top.optional("status")?.mapping() {
            status.markAllConsumed()
            for ipc in try status.optional("podIPs")?.sequence() ?? [] {
                let im = try ipc.mapping()
                let c = try im.required("ip")
                guard let ip = IPAddress(try c.string()) else { throw c.error(.invalidValue, "not an IP address") }
                if !addresses.contains(ip) { addresses.append(ip) }
            }
            if let c = status.optional("podIP") {
                guard let ip = IPAddress(try c.string()) else { throw c.error(.invalidValue, "not an IP address") }
                if !addresses.contains(ip) { addresses.insert(ip, at: 0) }
            }
        }
        return Workload(namespace: namespace, name: meta.name, labels: meta.labels, serviceAccount: sa,
                        addresses: addresses, namedPorts: named)
    }
}
