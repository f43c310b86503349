#!/usr/bin/env bash
# scripts/bench hbone [SECONDS]
# One run, same machine, loopback only (127.0.0.0/8):
#   - iperf3 throughput, 1 and 4 streams, over three paths to the same iperf3 server:
#       plain TCP;
#       stunnel client -> TLS 1.3 mTLS (P-256 SVIDs from meshctl) -> stunnel server;
#       iperf3 (proxychains4, SOCKS5) -> ztunnel A -> HBONE (HTTP/2 CONNECT, mTLS) -> ztunnel B.
#   - 1-byte ping-pong latency p50/p99 over the same three paths to an echo server, and over a
#     fourth, diagnostic one: a bench-tls-relay pair (Benchmarks/Sources/bench-tls-relay), the
#     same SwiftNIO + NIOSSL + MeshTLS stack as ztunnel without HTTP/2, which splits ztunnel's
#     added latency into "the NIO/TLS stack" and "HTTP/2 framing on top"; and a second ztunnel
#     pair started with --nio-http2-data-path (NIOHTTP2's stream channels carry the bytes), the
#     baseline for HBONE's own data path.
#   - RSS of ztunnel A and B idle, and with 1,000 open idle tunnels.
# Appends the results with ratios to BENCHMARKS.md.
# HBONE_BENCH_BIN=DIR uses prebuilt release ztunnel and meshctl from DIR instead of building;
# HBONE_BENCH_DRY=1 prints without appending (HBONE_BENCH_TUNNELS, HBONE_BENCH_PINGPONGS, HBONE_BENCH_ROUNDS shrink a trial).
set -euo pipefail
source "$(dirname "$0")/../lib/setup.sh"
cd "$ROOT"
ensure_apt_packages iperf3 stunnel4 proxychains4 python3 procps
seconds="${1:-10}"
pingpongs="${HBONE_BENCH_PINGPONGS:-5000}"
rounds="${HBONE_BENCH_ROUNDS:-5}"
tunnels="${HBONE_BENCH_TUNNELS:-1000}"

if [ -n "${HBONE_BENCH_BIN:-}" ]; then
  bin="$HBONE_BENCH_BIN"
else
  log "building ztunnel and meshctl (release)"
  for product in ztunnel meshctl; do
    nice scripts/lib/release-build --product "$product"
  done
  bin="$(swift build -c release --show-bin-path)"
fi
ztunnel="$bin/ztunnel" meshctl="$bin/meshctl"
log "building bench-tls-relay (release, Benchmarks package)"
nice scripts/lib/release-build --package-path Benchmarks --product bench-tls-relay
relay="$(swift build -c release --package-path Benchmarks --show-bin-path)/bench-tls-relay"
[ -x "$relay" ] || { echo "bench hbone: no bench-tls-relay in Benchmarks" >&2; exit 1; }
[ -x "$ztunnel" ] && [ -x "$meshctl" ] || { echo "bench hbone: no ztunnel/meshctl in $bin" >&2; exit 1; }
peers="python3 $ROOT/Benchmarks/hbone/peers.py"
ulimit -n 16384 2>/dev/null || ulimit -n 4096

work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]:-}"; do [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]:-}"; do [ -n "$pid" ] && wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

td=cluster.local
a_ip=127.0.0.21 b_ip=127.0.0.22           # node-a (client side), node-b (server workloads)
hbone=26008 socks=26080 ready_a=26021 ready_b=26022
hbone_nio=26010 socks_nio=26081 ready_a_nio=26023 ready_b_nio=26024   # the --nio-http2-data-path pair
iperf=26201 echo=26900                      # servers, on $b_ip
st_iperf_srv=26443 st_echo_srv=26444        # stunnel server (TLS), on $b_ip
st_iperf_cli=26202 st_echo_cli=26901        # stunnel client (plaintext side), on $a_ip
relay_srv=26445 relay_cli=26902             # bench-tls-relay server (TLS, on $b_ip) and client (plaintext, on $a_ip)

log "SVIDs (P-256) from meshctl for both nodes, used by ztunnel and stunnel alike"
"$meshctl" ca init --trust-domain "$td" --out "$work/ca" >/dev/null
"$meshctl" svid issue --ca "$work/ca" --id "spiffe://$td/ns/default/sa/client" --ttl 1h --out "$work/node-a" >/dev/null
"$meshctl" svid issue --ca "$work/ca" --id "spiffe://$td/ns/default/sa/server" --ttl 1h --out "$work/node-b" >/dev/null
key_type="$(openssl x509 -in "$work/node-a/svid.pem" -noout -text | grep -m1 -E 'ASN1 OID|NIST CURVE' | sed 's/^ *//')"

cat > "$work/mesh.yaml" <<YAML
workloads:
- uid: bench//v1/Pod/default/client
  name: client
  namespace: default
  serviceAccount: client
  workloadIps: [$a_ip]
  node: node-a
  protocol: HBONE
- uid: bench//v1/Pod/default/server
  name: server
  namespace: default
  serviceAccount: server
  workloadIps: [$b_ip]
  node: node-b
  protocol: HBONE
policies:
- name: client-to-server
  namespace: default
  scope: Namespace
  action: Allow
  rules:
  - - - principals: [$td/ns/default/sa/client]
YAML

log "servers: iperf3 on $b_ip:$iperf, echo on $b_ip:$echo"
iperf3 -s -B "$b_ip" -p "$iperf" > "$work/iperf3-server.log" 2>&1 &
pids+=($!)
$peers echo "$b_ip" "$echo" > "$work/echo.log" 2>&1 &
pids+=($!)

log "stunnel pair (TLS 1.3 only, mutual, chain verified against the same bundle)"
common="$STUNNEL_BENCH_COMMON"
cat > "$work/stunnel-server.conf" <<CONF
$common
cert = $work/node-b/svid.pem
key = $work/node-b/svid.key
CAfile = $work/node-b/bundle.pem
[iperf]
accept = $b_ip:$st_iperf_srv
connect = $b_ip:$iperf
[echo]
accept = $b_ip:$st_echo_srv
connect = $b_ip:$echo
CONF
cat > "$work/stunnel-client.conf" <<CONF
$common
client = yes
cert = $work/node-a/svid.pem
key = $work/node-a/svid.key
CAfile = $work/node-a/bundle.pem
[iperf]
accept = $a_ip:$st_iperf_cli
connect = $b_ip:$st_iperf_srv
[echo]
accept = $a_ip:$st_echo_cli
connect = $b_ip:$st_echo_srv
CONF
stunnel "$work/stunnel-server.conf" > "$work/stunnel-server.log" 2>&1 &
pids+=($!)
stunnel "$work/stunnel-client.conf" > "$work/stunnel-client.log" 2>&1 &
pids+=($!)

log "bench-tls-relay pair (NIO + NIOSSL, same SVIDs, no HTTP/2)"
"$relay" server "$b_ip:$relay_srv" "$b_ip:$echo" "$work/node-b" > "$work/relay-server.log" 2>&1 &
pids+=($!)
"$relay" client "$a_ip:$relay_cli" "$b_ip:$relay_srv" "$work/node-a" > "$work/relay-client.log" 2>&1 &
pids+=($!)

start_ztunnel() {  # node listen-ip hbone-port socks5 readiness log [flags...]; $! is its pid
  local node=$1 ip=$2 port=$3 socks5=$4 readiness=$5 logfile=$6; shift 6
  "$ztunnel" "$@" --config "$work/mesh.yaml" --node "$node" --svid "$work/$node" --log-level warning \
    --hbone-listen "$ip:$port" --hbone-port "$port" --socks5 "$socks5" --readiness "$readiness" --metrics-address 127.0.0.1:0 --admin-address 127.0.0.1:0 > "$work/$logfile" 2>&1 &
}
log "ztunnel node-b (HBONE $b_ip:$hbone) and node-a (HBONE $a_ip:$hbone, SOCKS5 127.0.0.1:$socks)"
start_ztunnel node-b "$b_ip" "$hbone" "127.0.0.1:0" "127.0.0.1:$ready_b" node-b.log; zb=$!; pids+=($zb)
start_ztunnel node-a "$a_ip" "$hbone" "127.0.0.1:$socks" "127.0.0.1:$ready_a" node-a.log; za=$!; pids+=($za)

log "ztunnel pair with --nio-http2-data-path (HBONE $b_ip:$hbone_nio, SOCKS5 127.0.0.1:$socks_nio)"
start_ztunnel node-b "$b_ip" "$hbone_nio" "127.0.0.1:0" "127.0.0.1:$ready_b_nio" node-b-nio.log --nio-http2-data-path; pids+=($!)
start_ztunnel node-a "$a_ip" "$hbone_nio" "127.0.0.1:$socks_nio" "127.0.0.1:$ready_a_nio" node-a-nio.log --nio-http2-data-path; pids+=($!)

wait_port() {  # host port
  for _ in $(seq 1 200); do
    python3 -c "import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 0.2).close()" "$1" "$2" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "bench hbone: nothing listens on $1:$2" >&2; cat "$work"/*.log >&2; exit 1
}
wait_port 127.0.0.1 "$ready_a"; wait_port 127.0.0.1 "$ready_b"; wait_port 127.0.0.1 "$socks"
wait_port 127.0.0.1 "$ready_a_nio"; wait_port 127.0.0.1 "$ready_b_nio"; wait_port 127.0.0.1 "$socks_nio"
wait_port "$b_ip" "$iperf"; wait_port "$b_ip" "$echo"; wait_port "$a_ip" "$st_iperf_cli"; wait_port "$a_ip" "$st_echo_cli"; wait_port "$b_ip" "$relay_srv"; wait_port "$a_ip" "$relay_cli"

cat > "$work/proxychains.conf" <<CONF
strict_chain
quiet_mode
tcp_read_time_out 15000
tcp_connect_time_out 8000
[ProxyList]
socks5 127.0.0.1 $socks
CONF

results="$work/results.txt"

# 1. RSS first, on fresh processes.
sleep 1
idle_a=$($peers rss "$za") idle_b=$($peers rss "$zb")
log "opening $tunnels idle tunnels through ztunnel A"
coproc HOLD { $peers hold "$tunnels" "$b_ip" "$echo" "$socks"; }
read -r -u "${HOLD[0]}" opened || { echo "bench hbone: hold failed" >&2; exit 1; }
sleep 2
held_a=$($peers rss "$za") held_b=$($peers rss "$zb")
exec {HOLD[1]}>&-
wait "$HOLD_PID" 2>/dev/null || true

# 2. Throughput.
iperf_run() {  # name streams [prefix...] -- host port
  local name=$1 streams=$2; shift 2
  local json="$work/iperf-$name-$streams.json"
  "$@" -t "$seconds" -P "$streams" -J > "$json" 2>"$work/iperf-$name-$streams.err" || { echo "bench hbone: iperf3 $name failed" >&2; cat "$json" "$work/iperf-$name-$streams.err" >&2; exit 1; }
  $peers iperf "$json"
}
declare -A tput
for streams in 1 4; do
  log "iperf3 -P $streams, $seconds s: plain, stunnel, ztunnel"
  tput[plain-$streams]=$(iperf_run plain "$streams" iperf3 -c "$b_ip" -p "$iperf" -B "$a_ip")
  tput[stunnel-$streams]=$(iperf_run stunnel "$streams" iperf3 -c "$a_ip" -p "$st_iperf_cli")
  tput[ztunnel-$streams]=$(iperf_run ztunnel "$streams" proxychains4 -q -f "$work/proxychains.conf" iperf3 -c "$b_ip" -p "$iperf")
done

# 3. Latency.
log "1-byte ping-pong x $pingpongs, $rounds interleaved rounds: plain, stunnel, NIO TLS relay, ztunnel (NIOHTTP2 data), ztunnel"
declare -A lat
for round in $(seq 1 "$rounds"); do
  lat[plain]+="$($peers pingpong "$pingpongs" "$b_ip" "$echo");"
  lat[stunnel]+="$($peers pingpong "$pingpongs" "$a_ip" "$st_echo_cli");"
  lat[nio]+="$($peers pingpong "$pingpongs" "$a_ip" "$relay_cli");"
  lat[zt_nio]+="$($peers pingpong "$pingpongs" "$b_ip" "$echo" "$socks_nio");"
  lat[ztunnel]+="$($peers pingpong "$pingpongs" "$b_ip" "$echo" "$socks");"
done
median() {  # "p50 p99;p50 p99;..." column -> median of that column
  tr ';' '\n' <<<"$1" | awk -v c="$2" 'NF { print $c }' | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}
lat_plain_50=$(median "${lat[plain]}" 1) lat_plain_99=$(median "${lat[plain]}" 2)
lat_st_50=$(median "${lat[stunnel]}" 1) lat_st_99=$(median "${lat[stunnel]}" 2)
lat_nio_50=$(median "${lat[nio]}" 1) lat_nio_99=$(median "${lat[nio]}" 2)
lat_zt_50=$(median "${lat[ztunnel]}" 1) lat_zt_99=$(median "${lat[ztunnel]}" 2)
lat_ztn_50=$(median "${lat[zt_nio]}" 1) lat_ztn_99=$(median "${lat[zt_nio]}" 2)

gbps() { awk -v b="$1" 'BEGIN { printf "%.2f Gbit/s", b / 1e9 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }
{
  echo "throughput (iperf3 -t $seconds, received)   plain TCP        stunnel          ztunnel A->B     ztunnel/stunnel  ztunnel/plain"
  for streams in 1 4; do
    printf '  %-40s %-16s %-16s %-16s %-16s %s\n' "$streams stream(s)" \
      "$(gbps "${tput[plain-$streams]}")" "$(gbps "${tput[stunnel-$streams]}")" "$(gbps "${tput[ztunnel-$streams]}")" \
      "$(ratio "${tput[ztunnel-$streams]}" "${tput[stunnel-$streams]}")" "$(ratio "${tput[ztunnel-$streams]}" "${tput[plain-$streams]}")"
  done
  echo
  echo "1-byte ping-pong x $pingpongs (Python client, asyncio echo; median of $rounds interleaved rounds; added = path - plain)"
  for path in plain stunnel nio zt_nio ztunnel; do printf '  rounds %-8s (p50 p99 per round): %s\n' "$path" "${lat[$path]}"; done
  printf '  %-10s p50 %6s us  p99 %6s us\n' plain "$lat_plain_50" "$lat_plain_99"
  printf '  %-10s p50 %6s us  p99 %6s us  added p50 %s us\n' stunnel "$lat_st_50" "$lat_st_99" "$((lat_st_50 - lat_plain_50))"
  printf '  %-10s p50 %6s us  p99 %6s us  added p50 %s us  (diagnostic: NIO + NIOSSL relay pair, no HTTP/2)\n' nio-tls "$lat_nio_50" "$lat_nio_99" "$((lat_nio_50 - lat_plain_50))"
  printf '  %-10s p50 %6s us  p99 %6s us  added p50 %s us  (baseline: ztunnel --nio-http2-data-path, NIOHTTP2 stream channels carry the bytes)\n' zt-nio "$lat_ztn_50" "$lat_ztn_99" "$((lat_ztn_50 - lat_plain_50))"
  printf '  %-10s p50 %6s us  p99 %6s us  added p50 %s us\n' ztunnel "$lat_zt_50" "$lat_zt_99" "$((lat_zt_50 - lat_plain_50))"
  printf '  added p50 ztunnel/stunnel: %s   nio-tls/stunnel: %s   ztunnel/zt-nio: %s\n' "$(ratio "$((lat_zt_50 - lat_plain_50))" "$((lat_st_50 - lat_plain_50))")" \
    "$(ratio "$((lat_nio_50 - lat_plain_50))" "$((lat_st_50 - lat_plain_50))")" "$(ratio "$((lat_zt_50 - lat_plain_50))" "$((lat_ztn_50 - lat_plain_50))")"
  echo
  echo "RSS (VmRSS), fresh processes"
  printf '  ztunnel A (SOCKS5 + HBONE client): idle %s KiB, with %s idle tunnels %s KiB -> %s KiB per tunnel (peers.py hold: "%s", each echoed 1 byte)\n' \
    "$idle_a" "$tunnels" "$held_a" "$(awk -v a="$idle_a" -v b="$held_a" -v n="$tunnels" 'BEGIN { printf "%.1f", (b - a) / n }')" "$opened"
  printf '  ztunnel B (HBONE server + upstream): idle %s KiB, with %s idle tunnels %s KiB -> %s KiB per tunnel\n' \
    "$idle_b" "$tunnels" "$held_b" "$(awk -v a="$idle_b" -v b="$held_b" -v n="$tunnels" 'BEGIN { printf "%.1f", (b - a) / n }')"
} > "$results"
cat "$results"

[ -n "${HBONE_BENCH_DRY:-}" ] && { log "HBONE_BENCH_DRY: not appending to BENCHMARKS.md"; exit 0; }
cpu="$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | sed 's/^ *//' || true)"
{
  [ -f BENCHMARKS.md ] || printf '# Benchmarks\n'
  printf '\n## hbone — %s\n\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
  printf 'Command: `%sscripts/bench hbone%s` (release ztunnel, %s cores%s, %s, %s, %s)  \n' \
    "${HBONE_BENCH_BIN:+HBONE_BENCH_BIN=$HBONE_BENCH_BIN }" "${1:+ $1}" "$(nproc)" "${cpu:+, $cpu}" \
    "$(iperf3 --version | head -1 | cut -d' ' -f1-2)" "$(stunnel -version 2>&1 | grep -m1 -o 'stunnel [0-9.]*')" "$(openssl version | cut -d' ' -f1-2)"
  printf 'Paths: iperf3/echo client -> (plain TCP | stunnel TLS 1.3 mTLS pair | proxychains4 SOCKS5 -> ztunnel A -> HBONE -> ztunnel B) -> server; all on 127.0.0.0/8, all processes share the machine. Keys: P-256 SVIDs from meshctl (%s) for both stunnel and ztunnel.  \n' "$key_type"
  printf 'Targets: throughput >= 1.0x stunnel; added p50 latency <= stunnel'"'"'s; <= 16 KiB per idle tunnel.\n\n'
  printf '```\n%s\n```\n' "$(cat "$results")"
} >> BENCHMARKS.md
