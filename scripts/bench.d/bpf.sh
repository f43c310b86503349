#!/usr/bin/env bash
# scripts/bench bpf [ROUNDS]
# Single lookups and updates through BPFMaps versus a C program calling libbpf
# directly (Benchmarks/c/bpf_baseline.c), and batch versus single operations
# for 10,000 entries, per map type (hash, hash without preallocation, LRU hash,
# array). C and Swift rounds are interleaved (ROUNDS, default 15) and reported
# as medians with min-max spread, so that load from other processes on this
# machine falls on both sides alike. Needs root (CAP_BPF).
# Appends the results, with this command, to BENCHMARKS.md.
set -euo pipefail
source "$(dirname "$0")/../lib/setup.sh"
cd "$ROOT"
ensure_apt_packages libbpf-dev gcc
if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/bench bpf: needs root (CAP_BPF) to create BPF maps" >&2
  exit 1
fi
out_dir="$ROOT/.build/bench"
mkdir -p "$out_dir"
gcc -O2 -Wall -o "$out_dir/bpf_baseline" Benchmarks/c/bpf_baseline.c -lbpf
scripts/lib/release-build --package-path Benchmarks --product bench-bpf
bin="$(swift build -c release --package-path Benchmarks --show-bin-path)/bench-bpf"
output="$("$bin" "$out_dir/bpf_baseline" "$@")"
echo "$output"
cpu="$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | sed 's/^ *//' || true)"
{
  [ -f BENCHMARKS.md ] || printf '# Benchmarks\n'
  printf '\n## bpf — %s\n\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
  printf 'Command: `scripts/bench bpf%s` (release build, %s cores%s, kernel %s, libbpf %s)  \n' \
    "${*:+ $*}" "$(nproc)" "${cpu:+, $cpu}" "$(uname -r)" "$(dpkg-query -W -f='${Version}' libbpf-dev 2>/dev/null || echo '?')"
  printf 'Targets: BPFMaps within 1.1x of C libbpf per operation; batch >= 5x faster than single operations.\n\n'
  printf '```\n%s\n```\n' "$output"
} >> BENCHMARKS.md
