/// Allow or deny.
public enum Verdict: String, Hashable, Sendable, CustomStringConvertible {
    case allow = "ALLOW"
    case deny = "DENY"

    public var description: String { rawValue }
}

/// Cilium authentication types carried by datapath policy entries.
public enum AuthType: UInt8, Hashable, Sendable, Comparable {
    /// No authentication required.
    case disabled = 0
    /// Mutual authentication with SPIFFE identities (`authentication.mode: required`).
    case spire = 1
    /// Always fails (`authentication.mode: test-always-fail`).
    case alwaysFail = 2

    public static func < (a: AuthType, b: AuthType) -> Bool { a.rawValue < b.rawValue }
}

/// The verdict of one enforcement point, with the reason a person can read.
public struct LayerDecision: Hashable, Sendable, CustomStringConvertible {
    /// The enforcement point.
    public enum Layer: String, Hashable, Sendable {
        /// Network policy (Kubernetes + Cilium) at the source, egress direction.
        case egress
        /// Network policy (Kubernetes + Cilium) at the destination, ingress direction.
        case ingress
        /// Istio authorization at the destination.
        case authorization
    }

    /// Why the layer decided as it did.
    public enum Reason: Hashable, Sendable, CustomStringConvertible {
        /// This rule matched (an allow or a deny rule, see the verdict).
        case rule(RuleReference)
        /// No policy selects the workload in this direction: allowed.
        case notSelected
        /// Isolated by these policies, and no allow rule matched.
        case defaultDeny([PolicyReference])
        /// Istio: only DENY/AUDIT/CUSTOM policies apply and none denied.
        case noAllowPolicy
        /// Istio: ALLOW policies apply but none matched.
        case noMatchingAllow([PolicyReference])
        /// Istio CUSTOM: the provider denied (or is not registered).
        case customDenied(provider: String, RuleReference)
        /// Cilium L7: the request did not match any HTTP rule on the redirected port.
        case noMatchingHTTPRule([RuleReference])

        public var description: String {
            switch self {
            case .rule(let r): return "rule \(r)"
            case .notSelected: return "no policy selects it"
            case .defaultDeny(let p): return "default deny (isolated by \(p.map(\.description).joined(separator: ", ")))"
            case .noAllowPolicy: return "no ALLOW policy applies"
            case .noMatchingAllow(let p): return "no ALLOW rule matched (\(p.map(\.description).joined(separator: ", ")))"
            case .customDenied(let provider, let r): return "CUSTOM provider '\(provider)' denied (\(r))"
            case .noMatchingHTTPRule(let r): return "no HTTP rule matched (\(r.map(\.description).joined(separator: ", ")))"
            }
        }
    }

    public var layer: Layer
    public var verdict: Verdict
    public var reason: Reason
    /// Cilium: the connection is redirected to the L7 proxy (an L7 rule applies).
    public var redirectToProxy: Bool
    /// Cilium: authentication required by the matching allow rules.
    public var authentication: AuthType

    public init(layer: Layer, verdict: Verdict, reason: Reason, redirectToProxy: Bool = false, authentication: AuthType = .disabled) {
        self.layer = layer
        self.verdict = verdict
        self.reason = reason
        self.redirectToProxy = redirectToProxy
        self.authentication = authentication
    }

    /// The verdict, the reason and the Cilium flags, without the layer's name
    /// (`ALLOW by rule ... [L7 proxy]`).
    public var summary: String {
        var s = "\(verdict) by \(reason)"
        if redirectToProxy { s += " [L7 proxy]" }
        if authentication != .disabled { s += " [auth required]" }
        return s
    }

    public var description: String { "\(layer.rawValue): \(summary)" }
}

/// The final decision for a connection or request, with every layer that was
/// consulted and the one that decided.
public struct Decision: Hashable, Sendable, CustomStringConvertible {
    /// The overall verdict: allowed only if every layer allowed.
    public var verdict: Verdict
    /// The layer that decided: the first that denied, or for an allow the most
    /// specific layer that matched a rule.
    public var decidedBy: LayerDecision
    /// Network policy at the source (nil when the source is not a workload or no network policy exists).
    public var egress: LayerDecision?
    /// Network policy at the destination (nil when the destination is not a workload or no network policy exists).
    public var ingress: LayerDecision?
    /// Istio authorization at the destination (nil when the destination is not
    /// a workload, or for UDP/SCTP, which Istio's proxies do not carry).
    public var authorization: LayerDecision?
    /// An Istio AUDIT rule that matched (never changes the verdict).
    public var audit: RuleReference?

    public init(verdict: Verdict, decidedBy: LayerDecision, egress: LayerDecision? = nil, ingress: LayerDecision? = nil,
                authorization: LayerDecision? = nil, audit: RuleReference? = nil) {
        self.verdict = verdict
        self.decidedBy = decidedBy
        self.egress = egress
        self.ingress = ingress
        self.authorization = authorization
        self.audit = audit
    }

    /// Convenience: `verdict == .allow`.
    public var isAllowed: Bool { verdict == .allow }

    public var description: String { "\(verdict) — \(decidedBy)" }
}
