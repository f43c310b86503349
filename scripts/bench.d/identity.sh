#!/usr/bin/env bash
# scripts/bench identity [SECONDS]
# Full mTLS handshakes per second: MeshTLS client and server versus openssl
# s_time against openssl s_server (same keys, TLS 1.3, client certificates),
# measured in the same run; plus SVID issuance per second. Appends to BENCHMARKS.md.
set -euo pipefail
source "$(dirname "$0")/../lib/setup.sh"
cd "$ROOT"
ensure_apt_packages openssl
scripts/lib/release-build --package-path Benchmarks --product bench-identity
bin="$(swift build -c release --package-path Benchmarks --show-bin-path)/bench-identity"
output="$("$bin" "$@")"
echo "$output"
cpu="$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | sed 's/^ *//' || true)"
{
  [ -f BENCHMARKS.md ] || printf '# Benchmarks\n'
  printf '\n## identity — %s\n\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
  printf 'Command: `scripts/bench identity%s` (release build, %s cores%s, %s)  \n' "${1:+ $1}" "$(nproc)" "${cpu:+, $cpu}" "$(openssl version)"
  printf 'Target: MeshTLS handshakes >= 0.8x openssl.\n\n'
  printf '```\n%s\n```\n' "$output"
} >> BENCHMARKS.md
