# Shared set-up for scripts/test, scripts/demo and scripts/bench (sourced, not run).
# Everything here is idempotent: it installs only what is missing.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export PATH="/opt/swift/usr/bin:$PATH"

# Debian packages the build, the interop peers and the privileged tests need.
MESH_APT_PACKAGES=(
  pkg-config libbpf-dev bpftool iproute2 openssl python3-venv
  stunnel4 iperf3 nghttp2-client procps
)

# What the lab drives (scripts/lab, scripts/demo, the lab tests).
MESH_LAB_APT_PACKAGES=(iproute2 iptables tcpdump iperf3 curl netcat-openbsd python3 bind9-dnsutils)

# The global section of the stunnel mTLS pair the benchmarks compare against
# (TLS 1.3 only, chain verified, Nagle off), shared by scripts/bench.d/*.sh.
STUNNEL_BENCH_COMMON="foreground = yes
pid =
debug = 3
sslVersionMin = TLSv1.3
sslVersionMax = TLSv1.3
verifyChain = yes
socket = l:TCP_NODELAY=1
socket = r:TCP_NODELAY=1"

log() { printf '==> %s\n' "$*" >&2; }

ensure_apt_packages() {
  local missing=()
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: need root to apt-get install ${missing[*]}" >&2
    return 1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# A Python virtual environment with pinned interop peers (Tests/Interop/requirements.txt).
ensure_venv() {
  local requirements="$ROOT/Tests/Interop/requirements.txt"
  local stamp="$ROOT/.venv/.requirements.sha256"
  local want
  want="$(sha256sum "$requirements" | cut -d' ' -f1)"
  if [ -x "$ROOT/.venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  log "creating .venv with the pinned interop peers"
  python3 -m venv "$ROOT/.venv"
  "$ROOT/.venv/bin/pip" install -q --disable-pip-version-check -r "$requirements"
  echo "$want" > "$stamp"
}

ensure_bpffs() {
  if ! mount | grep -q ' /sys/fs/bpf type bpf'; then
    if [ "$(id -u)" -eq 0 ]; then
      mkdir -p /sys/fs/bpf && mount -t bpf bpf /sys/fs/bpf || log "could not mount bpffs at /sys/fs/bpf"
    fi
  fi
}

# Gives each network namespace named ephemeral ports to spare: thousands of short
# connections a second leave more sockets in TIME_WAIT than a namespace's default
# 28,232 ports (the load's and the ztunnel's connections made inside a pod run out).
widen_port_range() {
  for ns in "$@"; do
    ip netns exec "$ns" sysctl -qw net.ipv4.ip_local_port_range="10000 65000" net.ipv4.tcp_tw_reuse=1
  done
}
