// Placeholder: filled by a later issue.
/// Namespace marker for the `HBONE` module (see docs/ARCHITECTURE.md).
public enum HBONEModule {}
