#!/usr/bin/env bash
# scripts/bench policy [POLICY_COUNT]
# Builds bench-policy in release mode, runs it (compiled PolicySet vs the naive
# evaluator, same process), prints the result and appends it to BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/lib/release-build --package-path Benchmarks --product bench-policy
bin="$(swift build -c release --package-path Benchmarks --show-bin-path)/bench-policy"
cmd="scripts/bench policy${1:+ $1}"
# Pin to one CPU when taskset is available: the targets are per core.
if command -v taskset >/dev/null 2>&1; then runner=(taskset -c 0 "$bin"); else runner=("$bin"); fi
output="$("${runner[@]}" "$@")"
echo "$output"
cpu="$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | sed 's/^ *//' || true)"
{
  [ -f BENCHMARKS.md ] || printf '# Benchmarks\n'
  printf '\n## policy — %s\n\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
  printf 'Command: `%s` (release build, one thread%s)  \n' "$cmd" "${cpu:+, $cpu}"
  printf 'Targets: >= 1,000,000 L4 decisions/s on one core and >= 100x the naive evaluator.\n\n'
  printf '```\n%s\n```\n' "$output"
} >> BENCHMARKS.md
