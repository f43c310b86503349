// Compiled for the host by the CMeshBPF target (Package.swift, "MARK: BPF"):
// it makes bpf/include/mesh_maps.h importable from Swift and checks, through
// the header's _Static_asserts, that the host compiler lays the structs out
// exactly as the eBPF programs do.
#include "mesh_maps.h"
