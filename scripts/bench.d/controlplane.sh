#!/usr/bin/env bash
# scripts/bench controlplane [PODS]
# Builds bench-controlplane in release mode and runs it: PODS (10,000) pods on
# 100 nodes, 1,000 Services, 1,000 AuthorizationPolicies and 1,000
# NetworkPolicies generated as manifests; MeshControlPlane (a child process)
# serves them to 100 delta ADS clients and signs CSRs. Reports cold start
# (vs Yams parsing alone), the control plane's RSS, the initial push (vs one
# client), one pod edit until every client has it (p50/p99) and CSRs signed
# per second (vs in-process signing). Appends the result to BENCHMARKS.md.
# Bounds: BENCH_CONTROLPLANE_EDITS (100) edits and BENCH_CONTROLPLANE_EDIT_SECONDS
# (120) per edit mode, whichever comes first; BENCH_CONTROLPLANE_CSR_SECONDS (5).
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/lib/release-build --package-path Benchmarks --product bench-controlplane
bin="$(swift build -c release --package-path Benchmarks --show-bin-path)/bench-controlplane"
cmd="scripts/bench controlplane${1:+ $1}"
output="$("$bin" "$@")"
echo "$output"
cpu="$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | sed 's/^ *//' || true)"
{
  [ -f BENCHMARKS.md ] || printf '# Benchmarks\n'
  printf '\n## controlplane — %s\n\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
  # The module under test may be uncommitted work; say so rather than name a commit that does not hold it.
  dirty="$(git status --porcelain -- Sources Package.swift 2>/dev/null | head -1)"
  printf 'Command: `%s` (release build, %s cores%s; commit %s%s)  \n' "$cmd" "$(nproc)" "${cpu:+, $cpu}" "$(git rev-parse --short HEAD)" "${dirty:+ plus uncommitted changes in Sources/ and Package.swift}"
  printf 'Targets: initial push to 100 clients <= 2 s; one-pod change to all clients <= 100 ms p99; control plane RSS <= 300 MB; >= 500 CSRs/s (ECDSA P-256).\n\n'
  printf '```\n%s\n```\n' "$output"
} >> BENCHMARKS.md
