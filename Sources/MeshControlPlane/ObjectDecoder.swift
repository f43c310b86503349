import PolicyEngine

/// Decodes the body of one object document into the control plane's types.
///
/// Core objects (Node, Pod, Service, ServiceAccount, EndpointSlice) are read
/// leniently, as `kubectl get -o yaml` prints them: fields the mesh does not
/// use are ignored, but every field it uses is checked. Istio and Gateway API
/// objects are read strictly: an unknown field is an error, and a field the
/// mesh does not implement is refused rather than silently ignored.
struct ObjectDecoder {
    let top: YAMLMapping
    let origin: ObjectOrigin
    let doc: YAMLCursor

    init(top: YAMLMapping, origin: ObjectOrigin, at doc: YAMLCursor) {
        self.top = top
        self.origin = origin
        self.doc = doc
    }

    private func field(_ name: String) -> String { doc.path.isEmpty ? name : "\(doc.path).\(name)" }

    private func requireVersion(_ apiVersion: String, _ allowed: [String], kind: String) throws(PolicyLoadError) {
        guard allowed.contains(apiVersion) else {
            throw doc.error(.invalidValue, "apiVersion '\(apiVersion)' is not supported for \(kind) (expected \(allowed.joined(separator: " or ")))", at: field("apiVersion"))
        }
    }

    private func meta(strict: Bool) throws(PolicyLoadError) -> ObjectMeta {
        try ObjectMeta.decode(try top.required("metadata"), strict: strict)
    }

    private static func ip(_ c: YAMLCursor) throws(PolicyLoadError) -> IPAddress {
        let text = try c.string()
        guard let ip = IPAddress(text) else { throw c.error(.invalidValue, "'\(text)' is not an IP address") }
        return ip
    }

    private static func port(_ c: YAMLCursor) throws(PolicyLoadError) -> UInt16 {
        try KubernetesDecoder.port(try c.int(), c)
    }

    private static func proto(_ c: YAMLCursor?) throws(PolicyLoadError) -> TransportProtocol {
        guard let c else { return .tcp }
        return try KubernetesDecoder.transportProtocol(c)
    }

    func node(apiVersion: String) throws(PolicyLoadError) -> ClusterNode {
        try requireVersion(apiVersion, ["v1"], kind: "Node")
        let meta = try meta(strict: false)
        top.markAllConsumed()
        var cidr: CIDR?
        if let spec = try top.optional("spec")?.mapping() {
            spec.markAllConsumed()
            if let c = spec.optional("podCIDR") {
                let text = try c.string()
                guard let parsed = CIDR(text, allowBareAddress: false) else { throw c.error(.invalidValue, "'\(text)' is not a CIDR (ADDRESS/PREFIX)") }
                cidr = parsed
            }
        }
        var internalIP: IPAddress?
        if let status = try top.optional("status")?.mapping() {
            status.markAllConsumed()
            for entry in try status.optional("addresses")?.sequence() ?? [] {
                let m = try entry.mapping()
                m.markAllConsumed()
                if try m.required("type").string() == "InternalIP", internalIP == nil {
                    internalIP = try Self.ip(try m.required("address"))
                }
            }
        }
        return ClusterNode(name: meta.name, labels: meta.labels, podCIDR: cidr, internalIP: internalIP, origin: origin)
    }

    func pod(apiVersion: String) throws(PolicyLoadError) -> ClusterPod {
        let meta = try meta(strict: false)
        top.markAllConsumed()
        var pod = ClusterPod(namespace: meta.namespace ?? "default", name: meta.name, labels: meta.labels, annotations: meta.annotations, origin: origin)
        if let spec = try top.optional("spec")?.mapping() {
            spec.markAllConsumed()
            if let s = try spec.optional("serviceAccountName")?.string() { pod.serviceAccount = s }
            else if let s = try spec.optional("serviceAccount")?.string() { pod.serviceAccount = s }
            pod.nodeName = try spec.optional("nodeName")?.string()
            pod.hostNetwork = try spec.optional("hostNetwork")?.bool() ?? false
            for c in try spec.optional("containers")?.sequence() ?? [] {
                pod.containers.append(try container(c))
            }
        }
        if let status = try top.optional("status")?.mapping() {
            status.markAllConsumed()
            pod.phase = try status.optional("phase")?.string()
            if let c = status.optional("podIP") { pod.podIPs.append(try Self.ip(c)) }
            for entry in try status.optional("podIPs")?.sequence() ?? [] {
                let m = try entry.mapping()
                let ip = try Self.ip(try m.required("ip"))
                if !pod.podIPs.contains(ip) { pod.podIPs.append(ip) }
            }
            for entry in try status.optional("conditions")?.sequence() ?? [] {
                let m = try entry.mapping()
                m.markAllConsumed()
                guard try m.required("type").string() == "Ready" else { continue }
                let value = try m.required("status")
                switch try value.string() {
                case "True": pod.ready = true
                case "False", "Unknown": pod.ready = false
                case let other: throw value.error(.invalidValue, "'\(other)' is not a condition status (expected True, False or Unknown)")
                }
            }
        }
        return pod
    }

    private func container(_ c: YAMLCursor) throws(PolicyLoadError) -> ContainerSpec {
        let m = try c.mapping()
        m.markAllConsumed()
        var spec = ContainerSpec(name: try m.required("name").string(), image: try m.optional("image")?.string())
        spec.command = try m.optional("command")?.stringList() ?? []
        spec.args = try m.optional("args")?.stringList() ?? []
        for e in try m.optional("env")?.sequence() ?? [] {
            let em = try e.mapping()
            let name = try em.required("name").string()
            if em.has("valueFrom") {
                throw e.error(.unsupported, "env '\(name)': valueFrom is not supported; give a literal value", at: e.path + ".valueFrom")
            }
            spec.env.append(.init(name: name, value: try em.optional("value")?.string() ?? ""))
        }
        for p in try m.optional("ports")?.sequence() ?? [] {
            let pm = try p.mapping()
            pm.markAllConsumed()
            let name = try pm.optional("name")?.string()
            if let name, !KubernetesDecoder.validPortName(name) { throw p.error(.invalidValue, "'\(name)' is not a valid port name", at: p.path + ".name") }
            spec.ports.append(.init(name: name, containerPort: try Self.port(try pm.required("containerPort")), protocol: try Self.proto(pm.optional("protocol"))))
        }
        return spec
    }

    func service(apiVersion: String) throws(PolicyLoadError) -> ClusterService {
        let meta = try meta(strict: false)
        top.markAllConsumed()
        var service = ClusterService(namespace: meta.namespace ?? "default", name: meta.name, labels: meta.labels, origin: origin)
        guard let spec = try top.optional("spec")?.mapping() else { return service }
        spec.markAllConsumed()
        service.selector = try spec.optional("selector")?.stringMap()
        if let c = spec.optional("clusterIP") {
            if try c.string() == "None" { service.headless = true } else { service.clusterIP = try Self.ip(c) }
        }
        var seen = Set<String>()
        for p in try spec.optional("ports")?.sequence() ?? [] {
            let pm = try p.mapping()
            pm.markAllConsumed()
            let name = try pm.optional("name")?.string()
            let number = try Self.port(try pm.required("port"))
            let proto = try Self.proto(pm.optional("protocol"))
            guard seen.insert("\(number)/\(proto)").inserted else { throw p.error(.duplicate, "port \(number)/\(proto) appears twice", at: p.path + ".port") }
            var target: ClusterService.TargetPort?
            if let t = pm.optional("targetPort") {
                switch try t.intOrString() {
                case .int(let n): target = .number(try KubernetesDecoder.port(n, t))
                case .string(let s):
                    if let n = Int(s) { target = .number(try KubernetesDecoder.port(n, t)) }
                    else {
                        guard KubernetesDecoder.validPortName(s) else { throw t.error(.invalidValue, "'\(s)' is not a valid port name") }
                        target = .named(s)
                    }
                }
            }
            service.ports.append(.init(name: name, port: number, targetPort: target, protocol: proto, appProtocol: try pm.optional("appProtocol")?.string()))
        }
        return service
    }

    func serviceAccount(apiVersion: String) throws(PolicyLoadError) -> ClusterServiceAccount {
        try requireVersion(apiVersion, ["v1"], kind: "ServiceAccount")
        let meta = try meta(strict: false)
        top.markAllConsumed()
        return ClusterServiceAccount(namespace: meta.namespace ?? "default", name: meta.name, origin: origin)
    }

    func endpointSlice(apiVersion: String) throws(PolicyLoadError) -> ClusterEndpointSlice {
        try requireVersion(apiVersion, ["discovery.k8s.io/v1"], kind: "EndpointSlice")
        let meta = try meta(strict: false)
        top.markAllConsumed()
        guard let serviceName = meta.labels["kubernetes.io/service-name"] else {
            throw doc.error(.missingField, "an EndpointSlice needs the label kubernetes.io/service-name", at: field("metadata.labels"))
        }
        let namespace = meta.namespace ?? "default"
        var slice = ClusterEndpointSlice(namespace: namespace, name: meta.name, serviceName: serviceName, origin: origin)
        let addressType = try top.required("addressType")
        guard ["IPv4", "IPv6"].contains(try addressType.string()) else {
            throw addressType.error(.invalidValue, "addressType must be IPv4 or IPv6 (FQDN is not supported)")
        }
        for p in try top.optional("ports")?.sequence() ?? [] {
            let pm = try p.mapping()
            pm.markAllConsumed()
            slice.ports.append(.init(name: try pm.optional("name")?.string(), port: try Self.port(try pm.required("port")), protocol: try Self.proto(pm.optional("protocol"))))
        }
        for e in try top.optional("endpoints")?.sequence() ?? [] {
            let em = try e.mapping()
            em.markAllConsumed()
            var endpoint = ClusterEndpointSlice.Endpoint(addresses: try (try em.required("addresses").sequence()).map { c throws(PolicyLoadError) in try Self.ip(c) })
            if let conditions = try em.optional("conditions")?.mapping() {
                conditions.markAllConsumed()
                endpoint.ready = try conditions.optional("ready")?.bool() ?? true
            }
            if let ref = try em.optional("targetRef")?.mapping() {
                ref.markAllConsumed()
                if try ref.optional("kind")?.string() == "Pod" {
                    endpoint.pod = "\(try ref.optional("namespace")?.string() ?? namespace)/\(try ref.required("name").string())"
                }
            }
            endpoint.nodeName = try em.optional("nodeName")?.string()
            slice.endpoints.append(endpoint)
        }
        return slice
    }

    func peerAuthentication(apiVersion: String) throws(PolicyLoadError) -> ClusterPeerAuthentication {
        try requireVersion(apiVersion, ["security.istio.io/v1", "security.istio.io/v1beta1"], kind: "PeerAuthentication")
        let meta = try meta(strict: true)
        top.ignore("status")
        var policy = ClusterPeerAuthentication(namespace: meta.namespace ?? "default", name: meta.name, origin: origin)
        if let spec = try top.optional("spec")?.mapping() {
            if let selector = try spec.optional("selector")?.mapping() {
                policy.selector = LabelSelector(matchLabels: try selector.optional("matchLabels")?.stringMap() ?? [:])
                try selector.finish()
            }
            if let mtls = spec.optional("mtls") { policy.mode = try Self.mode(mtls) }
            if let ports = try spec.optional("portLevelMtls")?.mapping() {
                for (key, value) in ports.entries {
                    let c = ports.cursor.child(value, key)
                    guard let number = Int(key) else { throw c.error(.invalidValue, "port '\(key)' is not a number") }
                    policy.portLevelModes[try KubernetesDecoder.port(number, c)] = try Self.mode(c)
                }
                ports.markAllConsumed()
            }
            try spec.finish()
        }
        try top.finish()
        return policy
    }

    private static func mode(_ c: YAMLCursor) throws(PolicyLoadError) -> ClusterPeerAuthentication.Mode {
        let m = try c.mapping()
        defer { m.markAllConsumed() }
        guard let modeCursor = m.optional("mode") else { return .unset }
        let text = try modeCursor.string()
        guard let mode = ClusterPeerAuthentication.Mode(rawValue: text) else {
            throw modeCursor.error(.invalidValue, "mode '\(text)' is not one of UNSET, DISABLE, PERMISSIVE, STRICT")
        }
        return mode
    }

    func gateway(apiVersion: String) throws(PolicyLoadError) -> ClusterGateway {
        try requireVersion(apiVersion, ["gateway.networking.k8s.io/v1", "gateway.networking.k8s.io/v1beta1"], kind: "Gateway")
        let meta = try meta(strict: false)
        top.ignore("status")
        let spec = try top.required("spec").mapping()
        var gateway = ClusterGateway(namespace: meta.namespace ?? "default", name: meta.name, labels: meta.labels,
                                     gatewayClassName: try spec.required("gatewayClassName").string(), origin: origin)
        spec.ignore("addresses", "infrastructure")
        var names = Set<String>()
        for l in try spec.required("listeners").sequence() {
            let lm = try l.mapping()
            let name = try lm.required("name").string()
            guard names.insert(name).inserted else { throw l.error(.duplicate, "listener '\(name)' appears twice", at: l.path + ".name") }
            let proto = try lm.required("protocol")
            let protoText = try proto.string()
            guard ["HTTP", "HTTPS", "TCP", "TLS", "HBONE", "GRPC"].contains(protoText) else {
                throw proto.error(.invalidValue, "protocol '\(protoText)' is not one of HTTP, HTTPS, TCP, TLS, HBONE")
            }
            lm.ignore("allowedRoutes", "tls")
            gateway.listeners.append(.init(name: name, port: try Self.port(try lm.required("port")), protocol: protoText, hostname: try lm.optional("hostname")?.string()))
            try lm.finish()
        }
        try spec.finish()
        try top.finish()
        return gateway
    }

    func httpRoute(apiVersion: String) throws(PolicyLoadError) -> ClusterHTTPRoute {
        try requireVersion(apiVersion, ["gateway.networking.k8s.io/v1", "gateway.networking.k8s.io/v1beta1"], kind: "HTTPRoute")
        let meta = try meta(strict: false)
        let namespace = meta.namespace ?? "default"
        top.ignore("status")
        let spec = try top.required("spec").mapping()
        var route = ClusterHTTPRoute(namespace: namespace, name: meta.name, origin: origin)
        route.hostnames = try spec.optional("hostnames")?.stringList() ?? []
        for p in try spec.optional("parentRefs")?.sequence() ?? [] {
            let pm = try p.mapping()
            route.parentRefs.append(.init(
                group: try pm.optional("group")?.string() ?? "gateway.networking.k8s.io",
                kind: try pm.optional("kind")?.string() ?? "Gateway",
                namespace: try pm.optional("namespace")?.string() ?? namespace,
                name: try pm.required("name").string(),
                port: try pm.optional("port").map { c throws(PolicyLoadError) in try Self.port(c) },
                sectionName: try pm.optional("sectionName")?.string()
            ))
            try pm.finish()
        }
        for r in try spec.optional("rules")?.sequence() ?? [] {
            let rm = try r.mapping()
            try rm.rejectUnsupported("filters", reason: "HTTPRoute filters are not implemented yet")
            rm.ignore("name", "timeouts")
            var rule = ClusterHTTPRoute.Rule(matches: [])
            for m in try rm.optional("matches")?.sequence() ?? [] { rule.matches.append(try Self.match(m)) }
            if rule.matches.isEmpty { rule.matches = [ClusterHTTPRoute.Match()] }
            for b in try rm.optional("backendRefs")?.sequence() ?? [] {
                let bm = try b.mapping()
                if let kind = try bm.optional("kind")?.string(), kind != "Service" {
                    throw b.error(.unsupported, "backend kind '\(kind)' is not supported (only Service)", at: b.path + ".kind")
                }
                bm.ignore("group")
                try bm.rejectUnsupported("filters", reason: "backend filters are not implemented yet")
                let weight = try bm.optional("weight")?.int() ?? 1
                guard (0...1_000_000).contains(weight) else { throw b.error(.invalidValue, "weight \(weight) is outside 0-1000000", at: b.path + ".weight") }
                rule.backends.append(.init(namespace: try bm.optional("namespace")?.string() ?? namespace, name: try bm.required("name").string(),
                                           port: try Self.port(try bm.required("port")), weight: UInt32(weight)))
                try bm.finish()
            }
            try rm.finish()
            route.rules.append(rule)
        }
        try spec.finish()
        try top.finish()
        return route
    }

    private static func match(_ c: YAMLCursor) throws(PolicyLoadError) -> ClusterHTTPRoute.Match {
        let m = try c.mapping()
        var match = ClusterHTTPRoute.Match()
        if let p = try m.optional("path")?.mapping() {
            if let t = p.optional("type") {
                let text = try t.string()
                guard let type = ClusterHTTPRoute.Match.PathType(rawValue: text) else {
                    throw t.error(.invalidValue, "path type '\(text)' is not one of Exact, PathPrefix, RegularExpression")
                }
                guard type != .regularExpression else {
                    throw t.error(.unsupported, "RegularExpression path matches are not supported (use Exact or PathPrefix)")
                }
                match.pathType = type
            }
            match.path = try p.optional("value")?.string() ?? "/"
            guard match.path.hasPrefix("/") || match.pathType == .regularExpression else {
                throw p.cursor.error(.invalidValue, "path '\(match.path)' must start with '/'", at: p.cursor.path + ".value")
            }
            try p.finish()
        }
        match.method = try m.optional("method")?.string()
        for h in try m.optional("headers")?.sequence() ?? [] {
            let hm = try h.mapping()
            if let t = hm.optional("type"), try t.string() != "Exact" {
                throw t.error(.unsupported, "header match type '\(try t.string())' is not supported (only Exact)")
            }
            match.headers[try hm.required("name").string().lowercased()] = try hm.required("value").string()
            try hm.finish()
        }
        try m.rejectUnsupported("queryParams", reason: "query parameter matches are not implemented yet")
        try m.finish()
        return match
    }
}
