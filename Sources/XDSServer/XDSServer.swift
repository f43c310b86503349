// Placeholder: filled by a later issue.
/// Namespace marker for the `XDSServer` module (see docs/ARCHITECTURE.md).
public enum XDSServerModule {}
