#!/usr/bin/env bash
# scripts/bench ambient [SECONDS]
# The ambient mesh in the multi-node lab (mesh-lab, Benchmarks/ambient/manifests): two nodes,
# client pods on node-a, server pods on node-b, every pod and node a network namespace. One run:
#   - iperf3 throughput, 1 and 4 streams (-t SECONDS, default 10), client pod -> server pod, over three paths:
#       plain   the non-ambient pods (bench-plain), plain TCP;
#       stunnel the non-ambient pods through a stunnel pair (TLS 1.3 mTLS, P-256 from openssl): stunnel
#               client in the client pod, stunnel server in the server pod;
#       mesh    the ambient pods (bench-mesh): the client connects to the server pod's IP, iptables in the
#               pod sends it to ztunnel node-a, HBONE (HTTP/2 CONNECT, mTLS) on 15008 to ztunnel node-b.
#   - ping-pong latency p50/p99 over one connection, 1 byte and 1 KiB, the same three paths.
#   - new connections per second (connect, 1 KiB each way, close), mesh vs plain.
#   - ztunnel CPU seconds per GB over the mesh iperf3 runs (both nodes' utime+stime), and ztunnel RSS
#     idle after start and with 1,000 open idle connections through the mesh.
# Waits (up to 20 minutes) until no swift-build/swift-test/swift-frontend runs before measuring.
# Appends the results with ratios and targets to BENCHMARKS.md. Needs root.
# AMBIENT_BENCH_BIN=DIR uses prebuilt release ztunnel, mesh-controlplane and mesh-lab from DIR instead of
# building; AMBIENT_BENCH_DRY=1 prints without appending (AMBIENT_BENCH_PINGPONGS, AMBIENT_BENCH_ROUNDS,
# AMBIENT_BENCH_CONNS, AMBIENT_BENCH_CONN_SECONDS, AMBIENT_BENCH_IDLE_WAIT shrink a trial).
set -euo pipefail
source "$(dirname "$0")/../lib/setup.sh"
cd "$ROOT"
if [ "$(id -u)" -ne 0 ]; then
  echo "bench ambient: needs root (the lab's network namespaces)" >&2
  exit 1
fi
ensure_apt_packages iperf3 stunnel4 python3 procps openssl "${MESH_LAB_APT_PACKAGES[@]}"
seconds="${1:-10}"
pingpongs="${AMBIENT_BENCH_PINGPONGS:-5000}"
rounds="${AMBIENT_BENCH_ROUNDS:-5}"
conns="${AMBIENT_BENCH_CONNS:-1000}"
conn_seconds="${AMBIENT_BENCH_CONN_SECONDS:-5}"
conn_rounds=3
concurrency=8
idle_wait="${AMBIENT_BENCH_IDLE_WAIT:-1200}"
prefix=swb

if [ -n "${AMBIENT_BENCH_BIN:-}" ]; then
  bin="$(cd "$AMBIENT_BENCH_BIN" && pwd)"
else
  log "building ztunnel, mesh-controlplane and mesh-lab (release)"
  for product in ztunnel mesh-controlplane mesh-lab; do
    nice scripts/lib/release-build --product "$product"
  done
  bin="$(swift build -c release --show-bin-path)"
fi
for tool in ztunnel mesh-controlplane mesh-lab; do
  [ -x "$bin/$tool" ] || { echo "bench ambient: no $tool in $bin" >&2; exit 1; }
done
if ip netns list | grep -q "^$prefix-"; then
  echo "bench ambient: network namespaces named $prefix-* exist (another bench ambient runs, or one crashed: MESH_LAB_STATE=... mesh-lab down --prefix $prefix)" >&2
  exit 1
fi
python="$(python3 -c 'import sys; print(sys.executable)')"
hbone_peers="$python $ROOT/Benchmarks/hbone/peers.py"   # echo, iperf, rss
peers="$python $ROOT/Benchmarks/ambient/peers.py"       # pingpong SIZE, connrate, hold, cpu, bytes
manifests="$ROOT/Benchmarks/ambient/manifests"
# The lab's processes (ztunnel among them) inherit this: 1,000 held connections are 1,000 sockets on each side.
ulimit -n "$(ulimit -Hn)"

work="$(mktemp -d)"
state="$(mktemp -d)"
export MESH_LAB_STATE="$state"
pids=()
cleanup() {
  local status=$?
  set +e
  for pid in "${pids[@]:-}"; do [ -n "$pid" ] && kill "$pid" 2>/dev/null; done
  for pid in "${pids[@]:-}"; do [ -n "$pid" ] && wait "$pid" 2>/dev/null; done
  if [ $status -ne 0 ]; then  # before `down`, which removes the state directory and its logs
    for f in "$state"/logs/*.log "$work"/*.log "$work"/*.err; do
      if [ -s "$f" ]; then echo "--- $f" >&2; tail -n 20 "$f" | cut -c1-400 >&2; fi
    done
  fi
  if [ -f "$state/lab.json" ] || ip netns list | grep -q "^$prefix-"; then
    "$bin/mesh-lab" down --state "$state" --prefix "$prefix" >/dev/null 2>&1 || log "mesh-lab down failed"
  fi
  if ip netns list | grep -q "^$prefix-"; then
    log "left behind: $(ip netns list | grep "^$prefix-" | tr '\n' ' ')"
  fi
  rm -rf "$work" "$state"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Measure on an otherwise idle machine: no compiler or build of this (or any) Swift package.
builds() { pgrep -f 'swift-build|swift-test|swift-frontend' || true; }
load_wait="$(cut -d' ' -f1 /proc/loadavg)"
wait_began=$(date +%s)
waited_note=""
while [ -n "$(builds)" ]; do
  waited=$(( $(date +%s) - wait_began ))
  if [ "$waited" -ge "$idle_wait" ]; then
    waited_note=" (gave up: $(builds | wc -l) swift-build/swift-test/swift-frontend processes still running)"
    break
  fi
  log "waiting for the machine to be idle: $(builds | wc -l) swift-build/swift-test/swift-frontend processes (${waited} s so far)"
  sleep 15
done
waited=$(( $(date +%s) - wait_began ))
load_start="$(cut -d' ' -f1 /proc/loadavg)"
idle_line="waited ${waited} s for no swift-build/swift-test/swift-frontend${waited_note}; 1-min load average ${load_wait} when the wait began, ${load_start} at the start of the run"
log "$idle_line"

log "lab: mesh-lab up --prefix $prefix (state $state)"
"$bin/mesh-lab" up --prefix "$prefix" --binaries "$bin" "$manifests" > "$work/up.log" 2>&1 || { cat "$work/up.log" >&2; exit 1; }
"$bin/mesh-lab" status > "$work/status.txt"
pod_ip() { awk -v k="$1" '$1 == k { print $3 }' "$work/status.txt"; }
pod_capture() { awk -v k="$1" '$1 == k { print $4 }' "$work/status.txt"; }
node_ip() { awk -v k="$1" '$1 == k && NF == 4 { print $2 }' "$work/status.txt"; }
mesh_client=$(pod_ip bench-mesh/client) mesh_server=$(pod_ip bench-mesh/server)
plain_client=$(pod_ip bench-plain/client) plain_server=$(pod_ip bench-plain/server)
for pod in bench-mesh/client bench-mesh/server; do
  [ "$(pod_capture "$pod")" = captured ] || { cat "$work/status.txt" >&2; echo "bench ambient: $pod is not captured" >&2; exit 1; }
done
for pod in bench-plain/client bench-plain/server; do
  [ "$(pod_capture "$pod")" = none ] || { cat "$work/status.txt" >&2; echo "bench ambient: $pod should be outside the mesh" >&2; exit 1; }
done
ns_mc="$prefix-pod-bench-mesh-client" ns_ms="$prefix-pod-bench-mesh-server"
ns_pc="$prefix-pod-bench-plain-client" ns_ps="$prefix-pod-bench-plain-server"
za=$(cat "$state/pids/ztunnel-node-a.pid") zb=$(cat "$state/pids/ztunnel-node-b.pid")
for pid in "$za" "$zb"; do
  [ "$(cat "/proc/$pid/comm")" = ztunnel ] || { echo "bench ambient: pid $pid is $(cat "/proc/$pid/comm"), not ztunnel" >&2; exit 1; }
done
mesh_key="$(openssl x509 -in "$state/ca/ca.pem" -noout -text | grep -m1 -E 'ASN1 OID|NIST CURVE' | sed 's/^ *//')"

# Idle RSS first, on fresh ztunnels (up, xDS synced, the two ambient pods enrolled, no traffic yet).
sleep 2
idle_a=$($hbone_peers rss "$za") idle_b=$($hbone_peers rss "$zb")

# The same on every pod, so on every path.
widen_port_range "$ns_mc" "$ns_ms" "$ns_pc" "$ns_ps"

iperf=5201 echo=7000                    # servers, in both server pods
st_iperf_srv=8443 st_echo_srv=8444      # stunnel server (TLS), in the plain server pod
st_iperf_cli=25201 st_echo_cli=27000    # stunnel client (plaintext side, 127.0.0.1), in the plain client pod

log "certificates for the stunnel pair: P-256 CA and two SVIDs (openssl)"
ossl() { openssl "$@" 2>>"$work/openssl.log" >/dev/null; }
ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/ca.key"
ossl req -x509 -new -key "$work/ca.key" -subj "/O=bench ambient/CN=stunnel CA" -days 1 -out "$work/ca.pem" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
for side in client server; do
  ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/$side.key"
  ossl req -new -key "$work/$side.key" -subj "/O=bench ambient" -out "$work/$side.csr"
  printf 'subjectAltName=URI:spiffe://cluster.local/ns/bench-plain/sa/%s\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=critical,CA:FALSE\n' "$side" > "$work/$side.ext"
  ossl x509 -req -in "$work/$side.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial -days 1 -extfile "$work/$side.ext" -out "$work/$side.pem"
done
st_key="$(openssl x509 -in "$work/client.pem" -noout -text | grep -m1 -E 'ASN1 OID|NIST CURVE' | sed 's/^ *//')"
common="$STUNNEL_BENCH_COMMON"
cat > "$work/stunnel-server.conf" <<CONF
$common
cert = $work/server.pem
key = $work/server.key
CAfile = $work/ca.pem
[iperf]
accept = $plain_server:$st_iperf_srv
connect = 127.0.0.1:$iperf
[echo]
accept = $plain_server:$st_echo_srv
connect = 127.0.0.1:$echo
CONF
cat > "$work/stunnel-client.conf" <<CONF
$common
client = yes
cert = $work/client.pem
key = $work/client.key
CAfile = $work/ca.pem
[iperf]
accept = 127.0.0.1:$st_iperf_cli
connect = $plain_server:$st_iperf_srv
[echo]
accept = 127.0.0.1:$st_echo_cli
connect = $plain_server:$st_echo_srv
CONF

log "servers: iperf3 :$iperf and echo :$echo in both server pods; stunnel server in $ns_ps, stunnel client in $ns_pc"
for ns in "$ns_ms" "$ns_ps"; do
  ip netns exec "$ns" iperf3 -s -p "$iperf" > "$work/iperf3-server-$ns.log" 2>&1 &
  pids+=($!)
  ip netns exec "$ns" $hbone_peers echo 0.0.0.0 "$echo" > "$work/echo-$ns.log" 2>&1 &
  pids+=($!)
done
ip netns exec "$ns_ps" stunnel "$work/stunnel-server.conf" > "$work/stunnel-server.log" 2>&1 &
pids+=($!); st_srv=$!
ip netns exec "$ns_pc" stunnel "$work/stunnel-client.conf" > "$work/stunnel-client.log" 2>&1 &
pids+=($!); st_cli=$!

# (ip netns exec execs the command, so each $! is the server's own pid.)
wait_listen() {  # netns port
  for _ in $(seq 1 200); do
    [ -n "$(ip netns exec "$1" ss -Hltn "sport = :$2")" ] && return 0
    sleep 0.05
  done
  echo "bench ambient: nothing listens on :$2 in $1" >&2; exit 1
}
for ns in "$ns_ms" "$ns_ps"; do wait_listen "$ns" "$iperf"; wait_listen "$ns" "$echo"; done
wait_listen "$ns_ps" "$st_iperf_srv"; wait_listen "$ns_ps" "$st_echo_srv"
wait_listen "$ns_pc" "$st_iperf_cli"; wait_listen "$ns_pc" "$st_echo_cli"

results="$work/results.txt"
kib() { awk -v k="$1" 'BEGIN { printf "%.1f MB", k * 1024 / 1e6 }'; }

# 1. ztunnel RSS with $conns open idle connections through the mesh.
log "opening $conns idle connections bench-mesh/client -> bench-mesh/server:$echo through the mesh"
coproc HOLD { exec ip netns exec "$ns_mc" $peers hold "$conns" "$mesh_server" "$echo" 2>"$work/hold.err"; }
pids+=($HOLD_PID)
read -r -u "${HOLD[0]}" opened || { echo "bench ambient: hold failed" >&2; exit 1; }
sleep 2
held_a=$($hbone_peers rss "$za") held_b=$($hbone_peers rss "$zb")
exec {HOLD[1]}>&-
wait "$HOLD_PID" 2>/dev/null || true
sleep 2

# 2. Throughput, with both ztunnels' CPU over the mesh runs and both stunnels' over the stunnel runs.
hz=$(getconf CLK_TCK)
# iperf_run name streams netns host port [PID...]: prints received bits/s; the PIDs' CPU ticks over the run go to
# $work/ticks-NAME-STREAMS. A failed run is recorded (iperf-failures.txt) and run again, twice at most.
iperf_run() {
  local name=$1 streams=$2 ns=$3 host=$4 port=$5; shift 5
  local json="$work/iperf-$name-$streams.json" before=0
  for attempt in 1 2 3; do
    [ $# -gt 0 ] && before=$($peers cpu "$@")
    if ip netns exec "$ns" iperf3 -c "$host" -p "$port" -t "$seconds" -P "$streams" -J > "$json" 2>"$work/iperf-$name-$streams.err" \
      && $hbone_peers iperf "$json" 2>/dev/null; then
      if [ $# -gt 0 ]; then echo $(( $($peers cpu "$@") - before )) > "$work/ticks-$name-$streams"; fi
      return 0
    fi
    local why
    why="$("$python" -c 'import json, sys; print(json.load(open(sys.argv[1])).get("error", "no result"))' "$json" 2>/dev/null || head -c 200 "$work/iperf-$name-$streams.err")"
    echo "$name -P $streams attempt $attempt: ${why:-no result}" >> "$work/iperf-failures.txt"
    log "iperf3 $name -P $streams failed (${why:-no result}); again"
    sleep 1
  done
  echo "bench ambient: iperf3 $name -P $streams failed 3 times" >&2; cat "$json" "$work/iperf-$name-$streams.err" >&2; exit 1
}
declare -A tput
zt_ticks=0 zt_bytes=0 st_ticks=0 st_bytes=0
for streams in 1 4; do
  log "iperf3 -P $streams, $seconds s: plain, stunnel, mesh"
  tput[plain-$streams]=$(iperf_run plain "$streams" "$ns_pc" "$plain_server" "$iperf")
  tput[stunnel-$streams]=$(iperf_run stunnel "$streams" "$ns_pc" 127.0.0.1 "$st_iperf_cli" "$st_srv" "$st_cli")
  st_ticks=$(( st_ticks + $(cat "$work/ticks-stunnel-$streams") ))
  st_bytes=$(( st_bytes + $($peers bytes "$work/iperf-stunnel-$streams.json") ))
  tput[mesh-$streams]=$(iperf_run mesh "$streams" "$ns_mc" "$mesh_server" "$iperf" "$za" "$zb")
  zt_ticks=$(( zt_ticks + $(cat "$work/ticks-mesh-$streams") ))
  zt_bytes=$(( zt_bytes + $($peers bytes "$work/iperf-mesh-$streams.json") ))
done

# 3. Latency: one connection per round and path, interleaved rounds.
log "ping-pong 1 B and 1 KiB x $pingpongs, $rounds interleaved rounds: plain, stunnel, mesh"
declare -A lat
for round in $(seq 1 "$rounds"); do
  for size in 1 1024; do
    lat[plain-$size]+="$(ip netns exec "$ns_pc" $peers pingpong "$pingpongs" "$size" "$plain_server" "$echo");"
    lat[stunnel-$size]+="$(ip netns exec "$ns_pc" $peers pingpong "$pingpongs" "$size" 127.0.0.1 "$st_echo_cli");"
    lat[mesh-$size]+="$(ip netns exec "$ns_mc" $peers pingpong "$pingpongs" "$size" "$mesh_server" "$echo");"
  done
done
median() {  # "a b c;a b c;..." column -> median of that column
  tr ';' '\n' <<<"$1" | awk -v c="$2" 'NF { print $c }' | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

# 4. New connections per second, interleaved rounds.
log "new connections: $concurrency processes, ${conn_seconds} s, $conn_rounds interleaved rounds: plain, mesh"
declare -A crate
for round in $(seq 1 "$conn_rounds"); do
  crate[plain]+="$(ip netns exec "$ns_pc" $peers connrate "$conn_seconds" "$concurrency" "$plain_server" "$echo" 2>>"$work/connrate-plain.err");"
  crate[mesh]+="$(ip netns exec "$ns_mc" $peers connrate "$conn_seconds" "$concurrency" "$mesh_server" "$echo" 2>>"$work/connrate-mesh.err");"
done
failed_sum() { tr ';' '\n' <<<"$1" | awk 'NF { s += $3 } END { print s + 0 }'; }

# The mesh path really was the mesh: ztunnel's own count of mTLS connections between the two pods.
mtls_count() {  # node reporter
  ip netns exec "$prefix-node-$1" curl -sf -m 2 http://127.0.0.1:15020/metrics \
    | awk -v r="reporter=\"$2\"" 'index($0, "istio_tcp_connections_opened_total{") == 1 && index($0, r) && index($0, "source_workload_namespace=\"bench-mesh\"") \
        && index($0, "destination_workload=\"server\"") && index($0, "connection_security_policy=\"mutual_tls\"") { s += $NF } END { print s + 0 }'
}
mtls_a=$(mtls_count node-a source) mtls_b=$(mtls_count node-b destination)
[ "$mtls_a" -gt 0 ] && [ "$mtls_b" -gt 0 ] || { echo "bench ambient: ztunnel reports no mTLS connections bench-mesh/client -> server (a $mtls_a, b $mtls_b)" >&2; exit 1; }
rss_end_a=$($hbone_peers rss "$za") rss_end_b=$($hbone_peers rss "$zb")

# Results.
gbps() { awk -v b="$1" 'BEGIN { printf "%.2f Gbit/s", b / 1e9 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2fx", a / b }'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }
verdict() { if "$@"; then echo MET; else echo MISSED; fi; }
zt_s_per_gb=$(awk -v t="$zt_ticks" -v hz="$hz" -v b="$zt_bytes" 'BEGIN { printf "%.2f", (t / hz) / (b / 1e9) }')
st_s_per_gb=$(awk -v t="$st_ticks" -v hz="$hz" -v b="$st_bytes" 'BEGIN { printf "%.2f", (t / hz) / (b / 1e9) }')
for key in plain stunnel mesh; do for size in 1 1024; do
  printf -v "l50_${key}_$size" '%s' "$(median "${lat[$key-$size]}" 1)"
  printf -v "l99_${key}_$size" '%s' "$(median "${lat[$key-$size]}" 2)"
done; done
for key in plain mesh; do
  for col in 1 4 5; do printf -v "c${col}_$key" '%s' "$(median "${crate[$key]}" "$col")"; done
done
rss_limit_kib=19531   # 20 MB = 20,000,000 bytes
tput_ok() { ge "${tput[mesh-1]}" "$(awk -v s="${tput[stunnel-1]}" 'BEGIN { print 2 * s }')" && ge "${tput[mesh-4]}" "$(awk -v s="${tput[stunnel-4]}" 'BEGIN { print 2 * s }')"; }
lat_ok() { [ $((l50_mesh_1 - l50_plain_1)) -le $((l50_stunnel_1 - l50_plain_1)) ] && [ $((l50_mesh_1024 - l50_plain_1024)) -le $((l50_stunnel_1024 - l50_plain_1024)) ]; }
conn_ok() { ge "$c1_mesh" "$(awk -v p="$c1_plain" 'BEGIN { print 0.5 * p }')"; }
rss_ok() { [ "$idle_a" -le $rss_limit_kib ] && [ "$idle_b" -le $rss_limit_kib ]; }
{
  echo "lab                 mesh-lab, 2 nodes: node-a $(node_ip node-a) (client pods), node-b $(node_ip node-b) (server pods); each node and pod a network namespace"
  echo "                    mesh: bench-mesh/client $mesh_client -> bench-mesh/server $mesh_server (ambient, captured)   plain/stunnel: bench-plain/client $plain_client -> bench-plain/server $plain_server"
  echo "idle machine        $idle_line"
  echo
  echo "throughput (iperf3 -t $seconds, received)   plain TCP        stunnel          mesh             mesh/stunnel     mesh/plain"
  for streams in 1 4; do
    printf '  %-40s %-16s %-16s %-16s %-16s %s\n' "$streams stream(s)" \
      "$(gbps "${tput[plain-$streams]}")" "$(gbps "${tput[stunnel-$streams]}")" "$(gbps "${tput[mesh-$streams]}")" \
      "$(ratio "${tput[mesh-$streams]}" "${tput[stunnel-$streams]}")" "$(ratio "${tput[mesh-$streams]}" "${tput[plain-$streams]}")"
  done
  if [ -s "$work/iperf-failures.txt" ]; then
    printf '  failed iperf3 runs, each run again (not in the numbers above): %s\n' "$(paste -sd ';' "$work/iperf-failures.txt")"
  fi
  printf '  ztunnel CPU (node-a + node-b utime+stime over the mesh runs): %.2f s for %.2f GB -> %s CPU s/GB   (stunnel pair over its runs: %s CPU s/GB)\n' \
    "$(awk -v t="$zt_ticks" -v hz="$hz" 'BEGIN { print t / hz }')" "$(awk -v b="$zt_bytes" 'BEGIN { print b / 1e9 }')" "$zt_s_per_gb" "$st_s_per_gb"
  echo
  echo "ping-pong over one connection x $pingpongs (Python client, asyncio echo; median of $rounds interleaved rounds; added = path - plain)"
  for size in 1 1024; do
    for key in plain stunnel mesh; do printf '  rounds %-7s %4s B (p50 p99 per round): %s\n' "$key" "$size" "${lat[$key-$size]}"; done
  done
  for size in 1 1024; do
    p50p=$(median "${lat[plain-$size]}" 1)
    for key in plain stunnel mesh; do
      p50=$(median "${lat[$key-$size]}" 1) p99=$(median "${lat[$key-$size]}" 2)
      if [ "$key" = plain ]; then
        printf '  %-8s %4s B  p50 %6s us  p99 %6s us\n' "$key" "$size" "$p50" "$p99"
      else
        printf '  %-8s %4s B  p50 %6s us  p99 %6s us  added p50 %s us\n' "$key" "$size" "$p50" "$p99" "$((p50 - p50p))"
      fi
    done
  done
  printf '  added p50 mesh/stunnel: 1 B %s   1 KiB %s\n' "$(ratio $((l50_mesh_1 - l50_plain_1)) $((l50_stunnel_1 - l50_plain_1)))" \
    "$(ratio $((l50_mesh_1024 - l50_plain_1024)) $((l50_stunnel_1024 - l50_plain_1024)))"
  echo
  echo "new connections (connect, 1 KiB each way, close; $concurrency Python processes, ${conn_seconds} s, asyncio echo; median of $conn_rounds interleaved rounds)"
  for key in plain mesh; do printf '  rounds %-6s (conn/s ok failed p50_us p99_us per round): %s\n' "$key" "${crate[$key]}"; done
  printf '  plain  %6s conn/s   per connection p50 %6s us  p99 %6s us   failed %s\n' "$c1_plain" "$c4_plain" "$c5_plain" "$(failed_sum "${crate[plain]}")"
  printf '  mesh   %6s conn/s   per connection p50 %6s us  p99 %6s us   failed %s\n' "$c1_mesh" "$c4_mesh" "$c5_mesh" "$(failed_sum "${crate[mesh]}")"
  printf '  mesh/plain %s\n' "$(ratio "$c1_mesh" "$c1_plain")"
  for key in plain mesh; do
    if [ -s "$work/connrate-$key.err" ]; then
      printf '  %s failures (first error of each client process): %s\n' "$key" "$(sort "$work/connrate-$key.err" | uniq -c | sed 's/^ *//' | paste -sd ';' -)"
    fi
  done
  echo
  echo "ztunnel RSS (VmRSS)"
  printf '  node-a (client side): idle %s KiB (%s), with %s idle connections %s KiB -> %s KiB per connection, at the end %s KiB (peers hold: "%s", each echoed 1 byte)\n' \
    "$idle_a" "$(kib "$idle_a")" "$conns" "$held_a" "$(awk -v a="$idle_a" -v b="$held_a" -v n="$conns" 'BEGIN { printf "%.1f", (b - a) / n }')" "$rss_end_a" "$opened"
  printf '  node-b (server side): idle %s KiB (%s), with %s idle connections %s KiB -> %s KiB per connection, at the end %s KiB\n' \
    "$idle_b" "$(kib "$idle_b")" "$conns" "$held_b" "$(awk -v a="$idle_b" -v b="$held_b" -v n="$conns" 'BEGIN { printf "%.1f", (b - a) / n }')" "$rss_end_b"
  if [ -s "$work/hold.err" ]; then
    printf '  hold failures (replaced): %s\n' "$(sort "$work/hold.err" | uniq -c | sed 's/^ *//' | paste -sd ';' -)"
  fi
  printf '  check: ztunnel metrics count %s connections bench-mesh/client -> server opened with mutual_tls on node-a (source), %s on node-b (destination)\n' "$mtls_a" "$mtls_b"
  echo
  echo "targets"
  printf '  throughput >= 2x the stunnel pair         %-44s %s\n' "1 stream $(ratio "${tput[mesh-1]}" "${tput[stunnel-1]}"), 4 streams $(ratio "${tput[mesh-4]}" "${tput[stunnel-4]}")" "$(verdict tput_ok)"
  printf '  added p50 latency <= the stunnel pair'"'"'s   %-44s %s\n' "1 B $((l50_mesh_1 - l50_plain_1)) vs $((l50_stunnel_1 - l50_plain_1)) us, 1 KiB $((l50_mesh_1024 - l50_plain_1024)) vs $((l50_stunnel_1024 - l50_plain_1024)) us" "$(verdict lat_ok)"
  printf '  connection rate >= 0.5x without the mesh  %-44s %s\n' "$(ratio "$c1_mesh" "$c1_plain") ($c1_mesh vs $c1_plain conn/s)" "$(verdict conn_ok)"
  printf '  idle ztunnel RSS <= 20 MB                 %-44s %s\n' "node-a $(kib "$idle_a"), node-b $(kib "$idle_b")" "$(verdict rss_ok)"
} > "$results"
cat "$results"

[ -n "${AMBIENT_BENCH_DRY:-}" ] && { log "AMBIENT_BENCH_DRY: not appending to BENCHMARKS.md"; exit 0; }
cpu="$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | sed 's/^ *//' || true)"
commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
git diff --quiet HEAD -- Sources Package.swift 2>/dev/null || commit="$commit + uncommitted changes in Sources"
{
  [ -f BENCHMARKS.md ] || printf '# Benchmarks\n'
  printf '\n## ambient — %s\n\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
  printf 'Command: `%sscripts/bench ambient%s` (release ztunnel, mesh-controlplane and mesh-lab; commit %s; %s cores%s, %s, %s, %s)  \n' \
    "${AMBIENT_BENCH_BIN:+AMBIENT_BENCH_BIN=$AMBIENT_BENCH_BIN }" "${1:+ $1}" "$commit" "$(nproc)" "${cpu:+, $cpu}" \
    "$(iperf3 --version | head -1 | cut -d' ' -f1-2)" "$(stunnel -version 2>&1 | grep -m1 -o 'stunnel [0-9.]*')" "$(openssl version | cut -d' ' -f1-2)"
  printf 'Paths: client pod on node-a -> server pod on node-b in the multi-node lab (mesh-lab, Benchmarks/ambient/manifests; pods and nodes are network namespaces joined by veth pairs and a bridge; everything shares the machine): plain = the non-ambient pods, plain TCP; stunnel = the non-ambient pods through a stunnel TLS 1.3 mTLS pair (client in the client pod, server in the server pod; P-256 certificates from openssl, %s); mesh = the ambient pods, the client connecting to the server pod'"'"'s IP, captured by iptables in the pod -> ztunnel node-a -> HBONE (HTTP/2 CONNECT, mTLS on 15008; P-256 workload certificates from mesh-controlplane'"'"'s CA, %s) -> ztunnel node-b -> server.  \n' "$st_key" "$mesh_key"
  printf 'Targets: throughput >= 2x the stunnel pair; added p50 latency <= the stunnel pair'"'"'s; connection rate >= 0.5x without the mesh; idle ztunnel RSS <= 20 MB.\n\n'
  printf '```\n%s\n```\n' "$(cat "$results")"
} >> BENCHMARKS.md
log "appended to BENCHMARKS.md"
