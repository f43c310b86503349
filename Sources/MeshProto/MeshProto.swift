// Placeholder: filled by a later issue.
/// Namespace marker for the `MeshProto` module (see docs/ARCHITECTURE.md).
public enum MeshProtoModule {}
