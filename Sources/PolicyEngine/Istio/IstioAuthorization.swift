/// The engine's internal form of an Istio authorization policy. It mirrors the
/// `istio.security.Authorization` xDS resource that istiod sends to ztunnel
/// (action, scope, groups of rules of matches, each match with positive and
/// `not` lists), extended with the L7 attributes a waypoint evaluates.
///
/// Semantics (as ztunnel): a policy matches when any group matches; a group
/// matches when every one of its rules matches; a rule matches when any of its
/// matches matches; a match matches when every non-empty positive list has a
/// hit and no non-empty `not` list has one. A group with no rules matches
/// everything. An absent attribute (e.g. no peer principal on plaintext)
/// fails positive lists and passes `not` lists.
///
/// The protobuf adapter (issue 4, through MeshProto) maps each proto field to
/// the field of the same name here.
public struct IstioAuthorization: Hashable, Sendable {
    /// Which workloads the policy applies to.
    public enum Scope: Hashable, Sendable {
        /// Every workload in the mesh (a policy in the root namespace without selector).
        case global
        /// Every workload in `namespace`.
        case namespace
        /// Workloads in `namespace` whose labels include these.
        case workloadSelector(Labels)
        /// Workloads named explicitly (`namespace/name`), as ztunnel receives them
        /// through each workload's `authorization_policies` list.
        case workloads(Set<String>)
        /// Gateway API `targetRefs` (Service, Gateway, ...); enforced at L7 only.
        case targetRefs([AuthorizationPolicy.TargetReference])
    }

    /// The action; CUSTOM carries the extension provider name.
    public enum Action: Hashable, Sendable {
        case allow, deny, audit
        case custom(provider: String)
    }

    /// Exact, prefix (`abc*`), suffix (`*abc`) or presence (`*`) match; for
    /// `paths` also a path template (`/api/{*}/items/{**}`).
    public enum StringMatch: Hashable, Sendable, CustomStringConvertible {
        case exact(String)
        case prefix(String)
        case suffix(String)
        case presence
        /// `{*}` matches one non-empty path segment, `{**}` (last only) any
        /// number of remaining segments.
        case pathTemplate(String)

        /// Parses Istio's value syntax.
        public init(istio value: String) {
            if value == "*" { self = .presence }
            else if value.hasPrefix("*") { self = .suffix(String(value.dropFirst())) }
            else if value.hasSuffix("*") { self = .prefix(String(value.dropLast())) }
            else { self = .exact(value) }
        }

        /// Parses a `paths` value: a template when it contains `{`.
        public init(istioPath value: String) {
            self = value.contains("{") ? .pathTemplate(value) : StringMatch(istio: value)
        }

        /// Whether `value` matches; an absent value never matches.
        public func matches(_ value: String?) -> Bool {
            guard let value else { return false }
            switch self {
            case .exact(let e): return value == e
            case .prefix(let p): return value.hasPrefix(p)
            case .suffix(let s): return value.hasSuffix(s)
            case .presence: return true
            case .pathTemplate(let t): return StringMatch.templateMatches(t, value)
            }
        }

        /// Why `template` is not a valid Istio path template, or nil if it is.
        public static func templateProblem(_ template: String) -> String? {
            let segments = template.split(separator: "/", omittingEmptySubsequences: false)
            guard template.hasPrefix("/") else { return "a path template must start with '/'" }
            for (i, s) in segments.enumerated() {
                if s == "{*}" { continue }
                if s == "{**}" {
                    if i != segments.count - 1 { return "'{**}' must be the last segment" }
                    continue
                }
                if s.contains("{") || s.contains("}") || s.contains("*") {
                    return "segment '\(s)' must be a literal, '{*}' or '{**}'"
                }
            }
            return nil
        }

        static func templateMatches(_ template: String, _ path: String) -> Bool {
            let t = template.split(separator: "/", omittingEmptySubsequences: false)
            let p = path.split(separator: "/", omittingEmptySubsequences: false)
            var i = 0
            while i < t.count {
                if t[i] == "{**}" { return i < p.count }  // the slash before it must be present
                guard i < p.count else { return false }
                if t[i] == "{*}" {
                    if p[i].isEmpty { return false }
                } else if t[i] != p[i] {
                    return false
                }
                i += 1
            }
            return i == p.count
        }

        public var description: String {
            switch self {
            case .exact(let e): return e
            case .prefix(let p): return p + "*"
            case .suffix(let s): return "*" + s
            case .presence: return "*"
            case .pathTemplate(let t): return t
            }
        }
    }

    /// A service account reference (`namespace`, `name`).
    public struct ServiceAccount: Hashable, Sendable {
        public var namespace: String
        public var name: String

        public init(namespace: String, name: String) {
            self.namespace = namespace
            self.name = name
        }
    }

    /// An L7 attribute named by a `when` key.
    public enum Attribute: Hashable, Sendable, CustomStringConvertible {
        case requestHeader(String)
        case requestAuthAudiences
        case requestAuthPresenter
        case requestAuthClaim([String])
        case connectionSNI

        public var description: String {
            switch self {
            case .requestHeader(let h): return "request.headers[\(h)]"
            case .requestAuthAudiences: return "request.auth.audiences"
            case .requestAuthPresenter: return "request.auth.presenter"
            case .requestAuthClaim(let p): return "request.auth.claims[\(p.joined(separator: "]["))]"
            case .connectionSNI: return "connection.sni"
            }
        }
    }

    /// A condition on an L7 attribute: `values` (any must match) and
    /// `notValues` (none may match).
    public struct AttributeCondition: Hashable, Sendable {
        public var attribute: Attribute
        public var values: [StringMatch]
        public var notValues: [StringMatch]

        public init(attribute: Attribute, values: [StringMatch] = [], notValues: [StringMatch] = []) {
            self.attribute = attribute
            self.values = values
            self.notValues = notValues
        }
    }

    /// One match; see the type documentation for its semantics.
    public struct Match: Hashable, Sendable {
        // L4 attributes (the fields of istio.security.Match).
        public var namespaces: [StringMatch] = []
        public var notNamespaces: [StringMatch] = []
        public var principals: [StringMatch] = []
        public var notPrincipals: [StringMatch] = []
        public var serviceAccounts: [ServiceAccount] = []
        public var notServiceAccounts: [ServiceAccount] = []
        public var sourceIPs: [CIDR] = []
        public var notSourceIPs: [CIDR] = []
        public var destinationIPs: [CIDR] = []
        public var notDestinationIPs: [CIDR] = []
        public var destinationPorts: [UInt16] = []
        public var notDestinationPorts: [UInt16] = []
        // L7 attributes (waypoint or sidecar only).
        public var requestPrincipals: [StringMatch] = []
        public var notRequestPrincipals: [StringMatch] = []
        public var remoteIPs: [CIDR] = []
        public var notRemoteIPs: [CIDR] = []
        public var hosts: [StringMatch] = []
        public var notHosts: [StringMatch] = []
        public var methods: [StringMatch] = []
        public var notMethods: [StringMatch] = []
        public var paths: [StringMatch] = []
        public var notPaths: [StringMatch] = []
        public var conditions: [AttributeCondition] = []

        public init() {}
    }

    /// A group of rules (all must match); `ruleIndex` is the CRD rule it came from.
    public struct Group: Hashable, Sendable {
        public var ruleIndex: Int
        /// Each inner array is one `Rules` message: any of its matches may match.
        public var rules: [[Match]]

        public init(ruleIndex: Int, rules: [[Match]]) {
            self.ruleIndex = ruleIndex
            self.rules = rules
        }
    }

    public var namespace: String
    public var name: String
    public var scope: Scope
    public var action: Action
    public var groups: [Group]
    /// A dry-run policy (`istio.io/dry-run: "true"`) is compiled but never
    /// enforced.
    public var dryRun: Bool

    public init(namespace: String, name: String, scope: Scope, action: Action, groups: [Group], dryRun: Bool = false) {
        self.namespace = namespace
        self.name = name
        self.scope = scope
        self.action = action
        self.groups = groups
        self.dryRun = dryRun
    }

    public var reference: PolicyReference { PolicyReference(kind: .authorizationPolicy, namespace: namespace, name: name) }
}
