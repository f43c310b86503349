import X509

extension Certificate.Extensions {
    /// The URI entries of the subjectAltName extension, in order (empty when absent).
    func uriSANs() throws -> [String] {
        var uris: [String] = []
        for name in try subjectAlternativeNames ?? SubjectAlternativeNames() {
            if case .uniformResourceIdentifier(let uri) = name { uris.append(uri) }
        }
        return uris
    }
}
