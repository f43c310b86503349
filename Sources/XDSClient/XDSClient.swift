// Placeholder: filled by a later issue.
/// Namespace marker for the `XDSClient` module (see docs/ARCHITECTURE.md).
public enum XDSClientModule {}
