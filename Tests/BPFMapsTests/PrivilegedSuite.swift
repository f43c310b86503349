import Testing

/// Every test that touches the kernel runs inside this suite, one at a time:
/// they share the process's BPF file-descriptor count (see FileDescriptorTests)
/// and create network namespaces, tc hooks and cgroups.
@Suite(.serialized)
struct Privileged {}
