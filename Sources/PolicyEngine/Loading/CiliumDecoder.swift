/// Decoder for `cilium.io/v2` CiliumNetworkPolicy / CiliumClusterwideNetworkPolicy specs.
enum CiliumDecoder {
    static func decode(_ spec: YAMLCursor, namespace: String, name: String) throws(PolicyLoadError) -> CiliumNetworkPolicy {
        let m = try spec.mapping()
        try m.rejectUnsupported("nodeSelector", reason: "host policies are not supported")
        m.ignore("description", "labels")
        let selector = try KubernetesDecoder.labelSelector(try m.required("endpointSelector"), stripCiliumPrefixes: true)
        var p = CiliumNetworkPolicy(namespace: namespace, name: name, endpointSelector: selector)
        p.ingress = try rules(m.optional("ingress"), direction: .ingress, deny: false)
        p.egress = try rules(m.optional("egress"), direction: .egress, deny: false)
        p.ingressDeny = try rules(m.optional("ingressDeny"), direction: .ingress, deny: true)
        p.egressDeny = try rules(m.optional("egressDeny"), direction: .egress, deny: true)
        if let d = m.optional("enableDefaultDeny") {
            let dm = try d.mapping()
            p.enableDefaultDeny.ingress = try dm.optional("ingress")?.bool()
            p.enableDefaultDeny.egress = try dm.optional("egress")?.bool()
            try dm.finish()
        }
        try m.finish()
        return p
    }

    private static func rules(_ c: YAMLCursor?, direction: TrafficDirection, deny: Bool) throws(PolicyLoadError) -> [CiliumNetworkPolicy.Rule]? {
        guard let c else { return nil }
        return try c.sequence().map { r throws(PolicyLoadError) in try rule(r, direction: direction, deny: deny) }
    }

    private static func rule(_ c: YAMLCursor, direction: TrafficDirection, deny: Bool) throws(PolicyLoadError) -> CiliumNetworkPolicy.Rule {
        let m = try c.mapping()
        let p = direction == .ingress ? "from" : "to"
        try m.rejectUnsupported(p + "Requires", p + "Nodes", p + "Groups", "icmps", reason: "not implemented by this engine")
        if direction == .egress {
            try m.rejectUnsupported("toFQDNs", "toServices", reason: "DNS- and service-based egress is not implemented by this engine")
        }
        var rule = CiliumNetworkPolicy.Rule()
        if let e = m.optional(p + "Endpoints") {
            rule.endpoints = try e.sequence().map { s throws(PolicyLoadError) in
                try KubernetesDecoder.labelSelector(s, stripCiliumPrefixes: true)
            }
        }
        if let e = m.optional(p + "Entities") {
            rule.entities = try e.sequence().map { x throws(PolicyLoadError) in
                let text = try x.string()
                guard let entity = CiliumNetworkPolicy.Entity(rawValue: text) else {
                    throw x.error(.invalidValue, "unknown entity '\(text)' (expected one of \(CiliumNetworkPolicy.Entity.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                return entity
            }
        }
        var cidrs: [CiliumNetworkPolicy.CIDRRule]?
        if let e = m.optional(p + "CIDR") {
            cidrs = try e.sequence().map { x throws(PolicyLoadError) in
                let text = try x.string()
                guard let cidr = CIDR(text) else { throw x.error(.invalidValue, "'\(text)' is not a CIDR") }
                return .init(cidr: cidr)
            }
        }
        if let e = m.optional(p + "CIDRSet") {
            let set = try e.sequence().map { x throws(PolicyLoadError) in try cidrRule(x) }
            cidrs = (cidrs ?? []) + set
        }
        rule.cidrs = cidrs
        if let tp = m.optional("toPorts") {
            rule.toPorts = try tp.sequence().map { x throws(PolicyLoadError) in try portRule(x, deny: deny) }
        }
        if let a = m.optional("authentication") {
            if deny { throw a.error(.invalidValue, "authentication is not allowed in deny rules") }
            let am = try a.mapping()
            let mc = try am.required("mode")
            let text = try mc.string()
            guard let mode = CiliumNetworkPolicy.AuthenticationMode(rawValue: text) else {
                throw mc.error(.invalidValue, "authentication mode '\(text)' is not one of disabled, required, test-always-fail")
            }
            rule.authentication = mode
            try am.finish()
        }
        try m.finish()
        return rule
    }

    private static func cidrRule(_ c: YAMLCursor) throws(PolicyLoadError) -> CiliumNetworkPolicy.CIDRRule {
        let m = try c.mapping()
        try m.rejectUnsupported("cidrGroupRef", "cidrGroupSelector", reason: "CiliumCIDRGroup is not implemented by this engine")
        let cc = try m.required("cidr")
        let text = try cc.string()
        guard let cidr = CIDR(text) else { throw cc.error(.invalidValue, "'\(text)' is not a CIDR") }
        var except: [CIDR] = []
        for e in try m.optional("except")?.sequence() ?? [] {
            let et = try e.string()
            guard let ec = CIDR(et) else { throw e.error(.invalidValue, "'\(et)' is not a CIDR") }
            guard cidr.contains(ec) else { throw e.error(.invalidValue, "except '\(et)' is not inside cidr '\(text)'") }
            except.append(ec)
        }
        try m.finish()
        return .init(cidr: cidr, except: except)
    }

    private static func portRule(_ c: YAMLCursor, deny: Bool) throws(PolicyLoadError) -> CiliumNetworkPolicy.PortRule {
        let m = try c.mapping()
        try m.rejectUnsupported("serverNames", "originatingTLS", "terminatingTLS", "listener", reason: "TLS/listener redirection is not implemented by this engine")
        var ports: [CiliumNetworkPolicy.PortProtocol] = []
        for pc in try m.optional("ports")?.sequence() ?? [] {
            let pm = try pc.mapping()
            var pp = CiliumNetworkPolicy.PortProtocol()
            let portCursor = try pm.required("port")
            let text: String
            switch try portCursor.intOrString() {
            case .int(let n): text = String(n)
            case .string(let s): text = s
            }
            if let n = Int(text) {
                guard (0...65535).contains(n) else { throw portCursor.error(.invalidValue, "port \(n) is outside 0-65535") }
                pp.port = UInt16(n)
            } else {
                guard KubernetesDecoder.validPortName(text) else { throw portCursor.error(.invalidValue, "'\(text)' is not a port number or a valid port name") }
                pp.namedPort = text
            }
            if let ec = pm.optional("endPort") {
                let e = try ec.int()
                guard pp.namedPort == nil, pp.port > 0 else { throw ec.error(.invalidValue, "endPort requires a numeric, non-zero port") }
                guard e >= Int(pp.port), e <= 65535 else { throw ec.error(.invalidValue, "endPort \(e) must be in \(pp.port)-65535") }
                pp.endPort = UInt16(e)
            }
            if let proto = pm.optional("protocol") {
                let t = try proto.string()
                if t != "ANY" {
                    guard let tp = TransportProtocol(rawValue: t) else { throw proto.error(.invalidValue, "protocol '\(t)' is not one of TCP, UDP, SCTP, ANY") }
                    pp.protocol = tp
                }
            }
            try pm.finish()
            ports.append(pp)
        }
        var http: [CiliumNetworkPolicy.HTTPRule]?
        if let rc = m.optional("rules") {
            if deny { throw rc.error(.invalidValue, "L7 rules are not allowed in deny rules") }
            let rm = try rc.mapping()
            try rm.rejectUnsupported("dns", "kafka", "l7proto", "l7", reason: "only HTTP L7 rules are implemented by this engine")
            if let hc = rm.optional("http") {
                http = try hc.sequence().map { x throws(PolicyLoadError) in try httpRule(x) }
            }
            try rm.finish()
            if http != nil && ports.contains(where: { $0.port == 0 && $0.namedPort == nil }) {
                throw rc.error(.invalidValue, "L7 rules require a specific port, not port 0")
            }
        }
        try m.finish()
        return .init(ports: ports, http: http)
    }

    private static func httpRule(_ c: YAMLCursor) throws(PolicyLoadError) -> CiliumNetworkPolicy.HTTPRule {
        let m = try c.mapping()
        try m.rejectUnsupported("headerMatches", reason: "use 'headers' ('Name' or 'Name: value')")
        var r = CiliumNetworkPolicy.HTTPRule()
        func regex(_ key: String) throws(PolicyLoadError) -> String? {
            guard let x = m.optional(key) else { return nil }
            let text = try x.string()
            do { _ = try CompiledRegex(text) } catch {
                throw x.error(.invalidValue, "'\(text)' is not a valid regular expression")
            }
            return text
        }
        r.method = try regex("method")
        r.path = try regex("path")
        r.host = try regex("host")
        r.headers = try m.optional("headers")?.stringList() ?? []
        try m.finish()
        return r
    }
}
