import Foundation
import MeshIdentity
import MeshProto
import MeshTestSupport
import SwiftProtobuf
import Testing
import XDSClient
import XDSServer

/// Istio ambient resources as istiod would serve them.
enum IstioFixture {
    static func workload(_ name: String, ip: [UInt8], namespace: String = "default", serviceAccount: String = "sa", services: [String: (UInt32, UInt32)] = [:]) -> Istio_Workload_Address {
        var workload = Istio_Workload_Workload()
        workload.uid = "cluster1//v1/Pod/\(namespace)/\(name)"
        workload.name = name
        workload.namespace = namespace
        workload.serviceAccount = serviceAccount
        workload.addresses = [Data(ip)]
        workload.tunnelProtocol = .hbone
        workload.node = "node-a"
        for (key, ports) in services {
            var port = Istio_Workload_Port()
            port.servicePort = ports.0
            port.targetPort = ports.1
            var list = Istio_Workload_PortList()
            list.ports = [port]
            workload.services[key] = list
        }
        var address = Istio_Workload_Address()
        address.workload = workload
        return address
    }

    static func service(_ name: String, namespace: String = "default", vip: [UInt8]) -> Istio_Workload_Address {
        var service = Istio_Workload_Service()
        service.name = name
        service.namespace = namespace
        service.hostname = "\(name).\(namespace).svc.cluster.local"
        var address = Istio_Workload_NetworkAddress()
        address.address = Data(vip)
        service.addresses = [address]
        var port = Istio_Workload_Port()
        port.servicePort = 80
        port.targetPort = 8080
        service.ports = [port]
        var wrapped = Istio_Workload_Address()
        wrapped.service = service
        return wrapped
    }

    static func allowPrincipal(_ name: String, namespace: String = "default", principal: String, port: UInt32) -> Istio_Security_Authorization {
        var exact = Istio_Security_StringMatch()
        exact.exact = principal
        var match = Istio_Security_Match()
        match.principals = [exact]
        match.destinationPorts = [port]
        var rules = Istio_Security_Rules()
        rules.matches = [match]
        var group = Istio_Security_Group()
        group.rules = [rules]
        var policy = Istio_Security_Authorization()
        policy.name = name
        policy.namespace = namespace
        policy.scope = .namespace
        policy.action = .allow
        policy.groups = [group]
        return policy
    }

    static func resources(_ addresses: [Istio_Workload_Address], _ policies: [Istio_Security_Authorization] = []) throws -> [XDSResource] {
        try addresses.map { address in
            switch address.type {
            case .workload(let workload): return try XDSResource(name: workload.uid, message: address)
            case .service(let service): return try XDSResource(name: "\(service.namespace)/\(service.hostname)", message: address)
            case nil: throw TestTimeout(what: "an address with a type")
            }
        } + policies.map { try XDSResource(name: "\($0.namespace)/\($0.name)", message: $0) }
    }
}

@Suite("WorkloadStore fed by ADS")
struct WorkloadStoreSyncTests {
    @Test("Istio Address and Authorization over ADS become indexed, atomically updated store state", arguments: bothVariants)
    func sync(variant: ADSClient.Variant) async throws {
        try await withXDSServer { server, port in
            let echo = IstioFixture.workload("echo", ip: [10, 0, 0, 12], services: ["default/echo.default.svc.cluster.local": (80, 8080)])
            let client = IstioFixture.workload("client", ip: [10, 0, 0, 11], serviceAccount: "client")
            let service = IstioFixture.service("echo", vip: [10, 96, 0, 10])
            let policy = IstioFixture.allowPrincipal("allow-client", principal: "cluster.local/ns/default/sa/client", port: 8080)
            await server.cache.setSnapshot(try XDSSnapshot(IstioFixture.resources([echo, client, service], [policy])), forNode: "node-1")

            let store = try WorkloadStore()
            try await withADSClient(port: port, variant: variant) { ads in
                let sync = WorkloadStoreSync(client: ads, store: store)
                let syncing = Task { await sync.run() }
                #expect(await eventually { store.counts == (2, 1, 1) })
                let echoWorkload = try #require(store.workload(address: "10.0.0.12"))
                #expect(echoWorkload.uid == "cluster1//v1/Pod/default/echo")
                #expect(echoWorkload.tunnelProtocol == .hbone)
                #expect(store.service(vip: "10.96.0.10")?.hostname == "echo.default.svc.cluster.local")
                #expect(store.service(hostname: "echo.default.svc.cluster.local")?.ports == [80: 8080])
                #expect(store.endpoints(of: try #require(store.service(hostname: "echo.default.svc.cluster.local"))).map(\.name) == ["echo"])
                let clientID = try SPIFFEID("spiffe://cluster.local/ns/default/sa/client")
                let otherID = try SPIFFEID("spiffe://cluster.local/ns/default/sa/other")
                #expect(store.authorize(L4Connection(source: clientID, destination: echoWorkload, destinationPort: 8080)) == .allow(policy: "default/allow-client"))
                #expect(!store.authorize(L4Connection(source: otherID, destination: echoWorkload, destinationPort: 8080)).isAllowed)

                // One change: echo moves to a new IP, client leaves.
                let moved = IstioFixture.workload("echo", ip: [10, 0, 0, 99])
                try await server.cache.updateSnapshot(
                    forNode: "node-1",
                    upserting: IstioFixture.resources([moved]),
                    removing: [XDSResourceKey(typeURL: XDSTypeURL.address, name: "cluster1//v1/Pod/default/client")]
                )
                #expect(await eventually { store.workload(address: "10.0.0.99") != nil })
                #expect(store.workload(address: "10.0.0.12") == nil)
                #expect(store.workload(uid: "cluster1//v1/Pod/default/client") == nil)
                #expect(store.counts == (1, 1, 1))

                // A workload the model cannot represent (a 5-byte address) is NACKed; the store is untouched.
                var broken = IstioFixture.workload("broken", ip: [10, 0, 0, 50])
                broken.workload.addresses = [Data([1, 2, 3, 4, 5])]
                let versionBefore = store.version
                try await server.cache.updateSnapshot(forNode: "node-1", upserting: IstioFixture.resources([broken]))
                #expect(await eventually { server.counters.snapshot().nacks == 1 })
                #expect(store.version == versionBefore)
                #expect(store.workload(uid: "cluster1//v1/Pod/default/broken") == nil)
                ads.shutdown()
                await syncing.value
            }
        }
    }

    @Test("conversion: IPv6 text, ports, service-account and StringMatch forms, refused IP matches")
    func conversion() throws {
        var v6 = IstioFixture.workload("v6", ip: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])
        v6.workload.trustDomain = ""
        guard case .workload(let workload) = try MeshAddress(v6) else { Issue.record("not a workload"); return }
        #expect(workload.workloadIPs == ["2001:db8::1"])
        #expect(workload.trustDomain == "cluster.local")

        var match = Istio_Security_Match()
        var prefix = Istio_Security_StringMatch()
        prefix.prefix = "team-"
        match.namespaces = [prefix]
        var account = Istio_Security_ServiceAccountMatch()
        account.namespace = "default"
        account.serviceAccount = "web"
        match.serviceAccounts = [account]
        var rules = Istio_Security_Rules()
        rules.matches = [match]
        var group = Istio_Security_Group()
        group.rules = [rules]
        var policy = Istio_Security_Authorization()
        policy.name = "p"
        policy.namespace = "default"
        policy.groups = [group]
        let converted = try Authorization(policy)
        #expect(converted.rules[0][0][0].namespaces == ["team-*"])
        #expect(converted.rules[0][0][0].principals == ["*/ns/default/sa/web"])

        var withIP = match
        var address = Istio_Security_Address()
        address.address = Data([10, 0, 0, 1])
        address.length = 32
        withIP.sourceIps = [address]
        rules.matches = [withIP]
        group.rules = [rules]
        policy.groups = [group]
        let ranged = try Authorization(policy)
        #expect(ranged.rules[0][0][0].sourceIPs == [try AddressRange(parsing: "10.0.0.1/32")])
        // The range round-trips through the encoder a control plane uses.
        #expect(try Authorization(ranged.istio()) == ranged)
        // A length beyond the address width names the field.
        address.length = 33
        withIP.sourceIps = [address]
        rules.matches = [withIP]
        group.rules = [rules]
        policy.groups = [group]
        #expect(throws: WorkloadStoreError.self) { try Authorization(policy) }

        var empty = Istio_Workload_Address()
        empty.workload = Istio_Workload_Workload()
        #expect(throws: WorkloadStoreError.missingField("workload.uid")) { try MeshAddress(empty) }
    }

    @Test("round trip: a local config served as Istio resources over ADS gives the same store as loading it", arguments: bothVariants)
    func localConfigOverADS(variant: ADSClient.Variant) async throws {
        let local = try LocalConfig.parse(demoConfig)
        let resources = try local.istioAddresses().map { try XDSResource(name: $0.name, message: $0.address) }
            + local.istioAuthorizations().map { try XDSResource(name: $0.name, message: $0.authorization) }
        let direct = try WorkloadStore(local)
        try await withXDSServer { server, port in
            await server.cache.setSnapshot(try XDSSnapshot(resources), forNode: "node-1")
            let store = try WorkloadStore()
            try await withADSClient(port: port, variant: variant) { ads in
                let sync = WorkloadStoreSync(client: ads, store: store)
                let syncing = Task { await sync.run() }
                #expect(await eventually { store.counts == direct.counts })
                #expect(store.snapshot == direct.snapshot)
                ads.shutdown()
                await syncing.value
            }
        }
    }

    @Test("IPv4 and IPv6 text survives the byte form both ways; bad text is refused")
    func addressBytes() throws {
        for text in ["10.0.0.1", "2001:db8::1", "::1", "fe80::a:b:c:d", "1:2:3:4:5:6:7:8", "::"] {
            let workload = Workload(uid: "u", name: "n", namespace: "ns", workloadIPs: [text])
            var address = Istio_Workload_Address()
            address.workload = try workload.istio()
            guard case .workload(let back) = try MeshAddress(address) else { Issue.record("not a workload"); continue }
            #expect(back.workloadIPs == [text])
        }
        for bad in ["10.0.0", "1:2:3", "1::2::3", "zz::1", "300.1.1.1"] {
            #expect(throws: WorkloadStoreError.self) { try Workload(uid: "u", name: "n", namespace: "ns", workloadIPs: [bad]).istio() }
        }
    }
}
