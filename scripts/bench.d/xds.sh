#!/usr/bin/env bash
# scripts/bench xds [WORKLOADS]
# Builds bench-xds in release mode and runs it: XDSServer (a child process)
# pushes WORKLOADS (100,000) Istio workloads over delta ADS to XDSClient, which
# applies them into a WorkloadStore; reports the time, the client's RSS per
# workload and one incremental update's latency, against an in-process
# decode+apply baseline from the same run. Appends the result to BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/lib/release-build --package-path Benchmarks --product bench-xds
bin="$(swift build -c release --package-path Benchmarks --show-bin-path)/bench-xds"
cmd="scripts/bench xds${1:+ $1}"
output="$("$bin" "$@")"
echo "$output"
cpu="$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | sed 's/^ *//' || true)"
{
  [ -f BENCHMARKS.md ] || printf '# Benchmarks\n'
  printf '\n## xds — %s\n\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
  printf 'Command: `%s` (release build, %s cores%s; commit %s)  \n' "$cmd" "$(nproc)" "${cpu:+, $cpu}" "$(git rev-parse --short HEAD)"
  printf 'Targets: initial push of 100,000 workloads <= 2 s; client RSS <= 2 KiB per workload.\n\n'
  printf '```\n%s\n```\n' "$output"
} >> BENCHMARKS.md
