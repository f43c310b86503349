/// An Istio `security.istio.io/v1` AuthorizationPolicy, as written in YAML.
///
/// Field names follow the CRD. Evaluation does not use this type directly: it
/// is converted into ``IstioAuthorization`` (the shape of the
/// `istio.security.Authorization` xDS resource), once for L4 enforcement
/// (ztunnel rules) and once for L7 enforcement (waypoint or sidecar rules).
public struct AuthorizationPolicy: Hashable, Sendable {
    /// The policy action.
    public enum Action: String, Hashable, Sendable, CaseIterable {
        case allow = "ALLOW"
        case deny = "DENY"
        case audit = "AUDIT"
        case custom = "CUSTOM"
    }

    /// A `targetRefs` entry (Gateway API PolicyTargetReference).
    public struct TargetReference: Hashable, Sendable {
        public var group: String
        public var kind: String
        public var name: String

        public init(group: String = "", kind: String, name: String) {
            self.group = group
            self.kind = kind
            self.name = name
        }
    }

    /// `rules[].from[].source`: all set fields must match (AND); each list is OR.
    public struct Source: Hashable, Sendable {
        public var principals: [String] = []
        public var notPrincipals: [String] = []
        public var requestPrincipals: [String] = []
        public var notRequestPrincipals: [String] = []
        public var namespaces: [String] = []
        public var notNamespaces: [String] = []
        public var serviceAccounts: [String] = []
        public var notServiceAccounts: [String] = []
        public var ipBlocks: [CIDR] = []
        public var notIpBlocks: [CIDR] = []
        public var remoteIpBlocks: [CIDR] = []
        public var notRemoteIpBlocks: [CIDR] = []

        public init() {}
    }

    /// `rules[].to[].operation`.
    public struct Operation: Hashable, Sendable {
        public var hosts: [String] = []
        public var notHosts: [String] = []
        public var ports: [UInt16] = []
        public var notPorts: [UInt16] = []
        public var methods: [String] = []
        public var notMethods: [String] = []
        public var paths: [String] = []
        public var notPaths: [String] = []

        public init() {}
    }

    /// `rules[].when[]`: one attribute key with `values` and/or `notValues`.
    public struct Condition: Hashable, Sendable {
        public var key: String
        public var values: [String]
        public var notValues: [String]

        public init(key: String, values: [String] = [], notValues: [String] = []) {
            self.key = key
            self.values = values
            self.notValues = notValues
        }
    }

    /// One rule: `from` (OR), `to` (OR) and `when` (AND) must all match.
    public struct Rule: Hashable, Sendable {
        public var from: [Source] = []
        public var to: [Operation] = []
        public var when: [Condition] = []

        public init(from: [Source] = [], to: [Operation] = [], when: [Condition] = []) {
            self.from = from
            self.to = to
            self.when = when
        }
    }

    public var namespace: String
    public var name: String
    /// `spec.selector.matchLabels`; nil means every workload in the namespace
    /// (or the whole mesh in the root namespace).
    public var selector: Labels?
    public var targetRefs: [TargetReference]
    public var action: Action
    /// `spec.provider.name`, required for CUSTOM.
    public var provider: String?
    /// nil means "no rules" (matches nothing); `[Rule()]` matches everything.
    public var rules: [Rule]?
    /// The `istio.io/dry-run: "true"` annotation: the policy is loaded but never enforced.
    public var dryRun: Bool

    public init(namespace: String, name: String, selector: Labels? = nil, targetRefs: [TargetReference] = [],
                action: Action = .allow, provider: String? = nil, rules: [Rule]? = nil, dryRun: Bool = false) {
        self.dryRun = dryRun
        self.namespace = namespace
        self.name = name
        self.selector = selector
        self.targetRefs = targetRefs
        self.action = action
        self.provider = provider
        self.rules = rules
    }

    public var reference: PolicyReference { PolicyReference(kind: .authorizationPolicy, namespace: namespace, name: name) }
}
