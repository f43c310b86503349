/// A regular expression compiled once and matched against whole strings
/// (Cilium anchors its HTTP method, path and host patterns).
struct CompiledRegex: @unchecked Sendable {
    // `Regex<AnyRegexOutput>` is immutable after construction; matching does
    // not mutate it, so sharing it across tasks is safe.
    let pattern: String
    private let regex: Regex<AnyRegexOutput>

    init(_ pattern: String) throws {
        self.pattern = pattern
        self.regex = try Regex(pattern)
    }

    func wholeMatch(_ s: String) -> Bool {
        (try? regex.wholeMatch(in: s)) != nil
    }
}
