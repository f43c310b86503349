/// Decoder for `security.istio.io` AuthorizationPolicy specs, with Istio's validation rules.
enum IstioDecoder {
    static func decode(_ spec: YAMLCursor?, namespace: String, name: String) throws(PolicyLoadError) -> AuthorizationPolicy {
        var policy = AuthorizationPolicy(namespace: namespace, name: name)
        guard let spec else { return policy }
        let m = try spec.mapping()
        if let sel = m.optional("selector") {
            let sm = try sel.mapping()
            policy.selector = try sm.optional("matchLabels")?.stringMap() ?? [:]
            try sm.finish()
        }
        var refs: [AuthorizationPolicy.TargetReference] = []
        if let single = m.optional("targetRef") { refs.append(try targetRef(single)) }
        for r in try m.optional("targetRefs")?.sequence() ?? [] { refs.append(try targetRef(r)) }
        if !refs.isEmpty && policy.selector != nil {
            throw spec.error(.invalidValue, "selector and targetRefs are mutually exclusive", at: spec.path + ".targetRefs")
        }
        policy.targetRefs = refs
        if let a = m.optional("action") {
            let text = try a.string()
            guard let action = AuthorizationPolicy.Action(rawValue: text) else {
                throw a.error(.invalidValue, "action '\(text)' is not one of ALLOW, DENY, AUDIT, CUSTOM")
            }
            policy.action = action
        }
        if let p = m.optional("provider") {
            let pm = try p.mapping()
            policy.provider = try pm.required("name").string()
            try pm.finish()
        }
        if policy.action == .custom && policy.provider == nil {
            throw spec.error(.missingField, "action CUSTOM requires provider.name", at: spec.path + ".provider")
        }
        if policy.action != .custom && policy.provider != nil {
            throw spec.error(.invalidValue, "provider is only allowed with action CUSTOM", at: spec.path + ".provider")
        }
        if let rc = m.optional("rules") {
            policy.rules = try rc.sequence().map { r throws(PolicyLoadError) in try rule(r, policyNamespace: namespace) }
        }
        try m.finish()
        return policy
    }

    private static func targetRef(_ c: YAMLCursor) throws(PolicyLoadError) -> AuthorizationPolicy.TargetReference {
        let m = try c.mapping()
        let group = try m.optional("group")?.string() ?? ""
        let kind = try m.required("kind").string()
        let name = try m.required("name").string()
        try m.rejectUnsupported("namespace", reason: "cross-namespace targetRefs are not allowed")
        try m.finish()
        return .init(group: group, kind: kind, name: name)
    }

    private static func rule(_ c: YAMLCursor, policyNamespace: String) throws(PolicyLoadError) -> AuthorizationPolicy.Rule {
        let m = try c.mapping()
        var rule = AuthorizationPolicy.Rule()
        for f in try m.optional("from")?.sequence() ?? [] {
            let fm = try f.mapping()
            rule.from.append(try source(try fm.required("source")))
            try fm.finish()
        }
        for t in try m.optional("to")?.sequence() ?? [] {
            let tm = try t.mapping()
            rule.to.append(try operation(try tm.required("operation")))
            try tm.finish()
        }
        for w in try m.optional("when")?.sequence() ?? [] { rule.when.append(try condition(w)) }
        try m.finish()
        return rule
    }

    private static func strings(_ m: YAMLMapping, _ key: String) throws(PolicyLoadError) -> [String] {
        guard let c = m.optional(key) else { return [] }
        let list = try c.stringList()
        if list.contains(where: \.isEmpty) { throw c.error(.invalidValue, "empty string is not allowed") }
        return list
    }

    private static func cidrs(_ m: YAMLMapping, _ key: String) throws(PolicyLoadError) -> [CIDR] {
        guard let c = m.optional(key) else { return [] }
        return try c.sequence().map { e throws(PolicyLoadError) in
            let text = try e.string()
            guard let cidr = CIDR(text) else { throw e.error(.invalidValue, "'\(text)' is not an IP address or CIDR") }
            return cidr
        }
    }

    private static func source(_ c: YAMLCursor) throws(PolicyLoadError) -> AuthorizationPolicy.Source {
        let m = try c.mapping()
        var s = AuthorizationPolicy.Source()
        s.principals = try strings(m, "principals")
        s.notPrincipals = try strings(m, "notPrincipals")
        s.requestPrincipals = try strings(m, "requestPrincipals")
        s.notRequestPrincipals = try strings(m, "notRequestPrincipals")
        s.namespaces = try strings(m, "namespaces")
        s.notNamespaces = try strings(m, "notNamespaces")
        s.serviceAccounts = try strings(m, "serviceAccounts")
        s.notServiceAccounts = try strings(m, "notServiceAccounts")
        s.ipBlocks = try cidrs(m, "ipBlocks")
        s.notIpBlocks = try cidrs(m, "notIpBlocks")
        s.remoteIpBlocks = try cidrs(m, "remoteIpBlocks")
        s.notRemoteIpBlocks = try cidrs(m, "notRemoteIpBlocks")
        try m.finish()
        if s == AuthorizationPolicy.Source() { throw c.error(.invalidValue, "source must set at least one field") }
        if !(s.serviceAccounts.isEmpty && s.notServiceAccounts.isEmpty) && !(s.principals.isEmpty && s.notPrincipals.isEmpty) {
            throw c.error(.invalidValue, "serviceAccounts cannot be combined with principals")
        }
        return s
    }

    private static func ports(_ m: YAMLMapping, _ key: String) throws(PolicyLoadError) -> [UInt16] {
        guard let c = m.optional(key) else { return [] }
        return try c.sequence().map { e throws(PolicyLoadError) in
            let text: String
            switch try e.intOrString() {
            case .int(let n): text = String(n)
            case .string(let s): text = s
            }
            guard let n = Int(text), (1...65535).contains(n) else { throw e.error(.invalidValue, "'\(text)' is not a port number in 1-65535") }
            return UInt16(n)
        }
    }

    private static func paths(_ m: YAMLMapping, _ key: String) throws(PolicyLoadError) -> [String] {
        guard let c = m.optional(key) else { return [] }
        let list = try c.stringList()
        for (i, p) in list.enumerated() {
            if p.isEmpty { throw c.error(.invalidValue, "empty string is not allowed", at: c.path + "[\(i)]") }
            if p.contains("{"), let problem = IstioAuthorization.StringMatch.templateProblem(p) {
                throw c.error(.invalidValue, "invalid path template '\(p)': \(problem)", at: c.path + "[\(i)]")
            }
        }
        return list
    }

    private static func operation(_ c: YAMLCursor) throws(PolicyLoadError) -> AuthorizationPolicy.Operation {
        let m = try c.mapping()
        var o = AuthorizationPolicy.Operation()
        o.hosts = try strings(m, "hosts")
        o.notHosts = try strings(m, "notHosts")
        o.ports = try ports(m, "ports")
        o.notPorts = try ports(m, "notPorts")
        o.methods = try strings(m, "methods")
        o.notMethods = try strings(m, "notMethods")
        o.paths = try paths(m, "paths")
        o.notPaths = try paths(m, "notPaths")
        try m.finish()
        if o == AuthorizationPolicy.Operation() { throw c.error(.invalidValue, "operation must set at least one field") }
        return o
    }

    private static func condition(_ c: YAMLCursor) throws(PolicyLoadError) -> AuthorizationPolicy.Condition {
        let m = try c.mapping()
        let keyCursor = try m.required("key")
        let key = try keyCursor.string()
        let values = try m.optional("values")?.stringList() ?? []
        let notValues = try m.optional("notValues")?.stringList() ?? []
        try m.finish()
        guard let parsed = IstioConditionKey(key) else {
            throw keyCursor.error(.invalidValue, "unknown condition key '\(key)'")
        }
        if values.isEmpty && notValues.isEmpty {
            throw c.error(.missingField, "condition '\(key)' needs values or notValues")
        }
        for (field, list) in [("values", values), ("notValues", notValues)] {
            for (i, v) in list.enumerated() {
                let at = c.path + ".\(field)[\(i)]"
                switch parsed {
                case .sourceIP, .remoteIP, .destinationIP:
                    if CIDR(v) == nil { throw c.error(.invalidValue, "'\(v)' is not an IP address or CIDR", at: at) }
                case .destinationPort:
                    if UInt16(v).map({ $0 > 0 }) != true { throw c.error(.invalidValue, "'\(v)' is not a port number in 1-65535", at: at) }
                default:
                    break
                }
            }
        }
        return .init(key: key, values: values, notValues: notValues)
    }
}
