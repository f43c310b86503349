/// A regular expression compiled once and matched against whole strings
/// (Cilium anchors its HTTP method, path and host patterns).
struct CompiledRegex: @unchecked Sendable {
    // `Regex<AnyRegexOutput>` is not declared Sendable because its output type
    // is dynamic. The value is immutable after `init`, which also runs one
    // match so the regex's lazily lowered program exists before the value is
    // shared; matching only reads it.
    let pattern: String
    private let regex: Regex<AnyRegexOutput>

    init(_ pattern: String) throws {
        self.pattern = pattern
        self.regex = try Regex(pattern)
        _ = try? regex.wholeMatch(in: "")
    }

    func wholeMatch(_ s: String) -> Bool {
        (try? regex.wholeMatch(in: s)) != nil
    }
}
