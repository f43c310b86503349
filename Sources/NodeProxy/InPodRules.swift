/// The capture rules a node agent installs inside an ambient pod's network
/// namespace, as istio-cni does since Istio 1.24 (REDIRECT, not TPROXY):
///
/// - inbound TCP (not to 127.0.0.1, not to 15008, not from ztunnel) is
///   redirected to 15006; 15008 reaches ztunnel's HBONE listener in the pod;
/// - outbound TCP (not to 127.0.0.1, not from ztunnel) is redirected to
///   15001, DNS (UDP and TCP port 53) to 15053;
/// - ztunnel's own sockets carry SO_MARK 0x539 (1337, mask 0xfff); their
///   connections are connmarked 0x111 so replies pass too;
/// - the kubelet health-probe source 169.254.7.127 is accepted.
///
/// The original destination survives in conntrack (SO_ORIGINAL_DST).
public struct InPodRules: Sendable, Hashable {
    /// ztunnel's socket mark.
    public static let ztunnelMark: UInt32 = 0x539
    /// The connmark of ztunnel's connections.
    public static let connectionMark: UInt32 = 0x111
    /// The mask both marks are compared under.
    public static let markMask: UInt32 = 0xfff
    /// Istio's health-probe source address.
    public static let probeSource = "169.254.7.127"

    public var outboundPort: Int = 15001
    public var inboundPlaintextPort: Int = 15006
    public var inboundHBONEPort: Int = 15008
    public var dnsPort: Int = 15053
    /// Whether DNS is redirected to ztunnel's proxy.
    public var capturesDNS: Bool = true

    public init() {}

    /// The rules as `iptables-restore` input (replaces the mangle and nat tables of the pod's namespace).
    public var iptablesRestoreInput: String {
        func hex(_ value: UInt32) -> String { "0x" + String(value, radix: 16) }
        let mark = hex(Self.ztunnelMark) + "/" + hex(Self.markMask)
        let connmark = hex(Self.connectionMark) + "/" + hex(Self.markMask)
        var lines = [
            "*mangle",
            ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", ":POSTROUTING ACCEPT [0:0]",
            ":ISTIO_PRERT - [0:0]", ":ISTIO_OUTPUT - [0:0]",
            "-A PREROUTING -j ISTIO_PRERT",
            "-A OUTPUT -j ISTIO_OUTPUT",
            "-A ISTIO_PRERT -m mark --mark \(mark) -j CONNMARK --set-xmark \(connmark)",
            "-A ISTIO_OUTPUT -m connmark --mark \(connmark) -j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff",
            "COMMIT",
            "*nat",
            ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", ":POSTROUTING ACCEPT [0:0]",
            ":ISTIO_PRERT - [0:0]", ":ISTIO_OUTPUT - [0:0]",
            "-A PREROUTING -j ISTIO_PRERT",
            "-A OUTPUT -j ISTIO_OUTPUT",
            "-A ISTIO_PRERT -s \(Self.probeSource)/32 -p tcp -j ACCEPT",
            "-A ISTIO_PRERT ! -d 127.0.0.1/32 -p tcp ! --dport \(inboundHBONEPort) -m mark ! --mark \(mark) -j REDIRECT --to-ports \(inboundPlaintextPort)",
            "-A ISTIO_OUTPUT -d \(Self.probeSource)/32 -p tcp -j ACCEPT",
        ]
        if capturesDNS {
            lines += [
                "-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -p udp --dport 53 -m mark ! --mark \(mark) -j REDIRECT --to-ports \(dnsPort)",
                "-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -p tcp --dport 53 -m mark ! --mark \(mark) -j REDIRECT --to-ports \(dnsPort)",
            ]
        }
        lines += [
            "-A ISTIO_OUTPUT -p tcp -m mark --mark \(connmark) -j ACCEPT",
            "-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -j ACCEPT",
            "-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -p tcp -m mark ! --mark \(mark) -j REDIRECT --to-ports \(outboundPort)",
            "COMMIT",
        ]
        return lines.joined(separator: "\n") + "\n"
    }
}
