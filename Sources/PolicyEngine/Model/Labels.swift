/// A set of Kubernetes-style labels (`key: value`).
public typealias Labels = [String: String]

/// A Kubernetes label selector: `matchLabels` ANDed with `matchExpressions`.
///
/// An empty selector selects everything, as in Kubernetes.
public struct LabelSelector: Hashable, Sendable, CustomStringConvertible {
    /// One `matchExpressions` requirement.
    public struct Requirement: Hashable, Sendable {
        /// The set-based operators of the Kubernetes API.
        public enum Operator: String, Hashable, Sendable, CaseIterable {
            case `in` = "In"
            case notIn = "NotIn"
            case exists = "Exists"
            case doesNotExist = "DoesNotExist"
        }

        public var key: String
        public var `operator`: Operator
        public var values: [String]

        public init(key: String, operator: Operator, values: [String] = []) {
            self.key = key
            self.operator = `operator`
            self.values = values
        }

        /// Whether `labels` satisfies this requirement.
        public func matches(_ labels: Labels) -> Bool {
            switch self.operator {
            case .in: return labels[key].map(values.contains) ?? false
            case .notIn: return labels[key].map { !values.contains($0) } ?? true
            case .exists: return labels[key] != nil
            case .doesNotExist: return labels[key] == nil
            }
        }
    }

    public var matchLabels: Labels
    public var matchExpressions: [Requirement]

    public init(matchLabels: Labels = [:], matchExpressions: [Requirement] = []) {
        self.matchLabels = matchLabels
        self.matchExpressions = matchExpressions
    }

    /// The selector that selects everything.
    public static let everything = LabelSelector()

    /// True when the selector has no requirements (selects everything).
    public var isEmpty: Bool { matchLabels.isEmpty && matchExpressions.isEmpty }

    /// Whether `labels` satisfies every requirement.
    public func matches(_ labels: Labels) -> Bool {
        for (k, v) in matchLabels where labels[k] != v { return false }
        for r in matchExpressions where !r.matches(labels) { return false }
        return true
    }

    /// Whether the selector constrains `key` (used for Cilium's namespace scoping).
    public func mentions(_ key: String) -> Bool {
        matchLabels[key] != nil || matchExpressions.contains { $0.key == key }
    }

    public var description: String {
        var parts = matchLabels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        parts += matchExpressions.map { "\($0.key) \($0.operator.rawValue) (\($0.values.joined(separator: ",")))" }
        return parts.isEmpty ? "{}" : parts.joined(separator: ",")
    }
}
