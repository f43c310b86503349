/* SPDX-License-Identifier: (Apache-2.0 OR GPL-2.0-only) */
/*
 * swift-mesh: layouts of the keys and values of every map that the eBPF
 * programs in bpf/ share with user space.
 *
 * This header is the single definition of those layouts. The programs
 * (bpf/NAME.c) include it, and Swift imports it through the `CMeshBPF` C target
 * (Package.swift, "MARK: BPF"), so the two sides cannot drift apart.
 *
 * Rules for every struct in this file:
 *   - no implicit padding: every byte is a named field (padding fields are
 *     named `pad*` and must be zero), so that hash keys compare byte-wise;
 *   - sizes are checked with _Static_assert below;
 *   - multi-byte fields are in host byte order unless the name ends in `_be`
 *     (network byte order, as on the wire).
 *
 * Reserved security identities (as Cilium): 0 = wildcard in policy keys /
 * unknown in the ipcache, 1 = host, 2 = world, 6 = remote-node; cluster
 * identities start at 256. PolicyEngine allocates them; BPF only stores them.
 */
#ifndef SWIFT_MESH_BPF_MESH_MAPS_H
#define SWIFT_MESH_BPF_MESH_MAPS_H

#if defined(__bpf__) || defined(__linux__)
#include <linux/types.h>
#else
#include <stdint.h>
typedef uint8_t __u8;
typedef uint16_t __u16;
typedef uint32_t __u32;
typedef uint64_t __u64;
typedef uint16_t __be16;
typedef uint32_t __be32;
#endif

/* ---- reserved identities ------------------------------------------------ */
#define MESH_IDENTITY_WILDCARD    0u
#define MESH_IDENTITY_HOST        1u
#define MESH_IDENTITY_WORLD       2u
#define MESH_IDENTITY_REMOTE_NODE 6u
#define MESH_IDENTITY_CLUSTER_MIN 256u

/* ---- address families used in keys ------------------------------------- */
#define MESH_FAMILY_IPV4 4
#define MESH_FAMILY_IPV6 6

/* ---- ipcache: LPM trie, CIDR -> security identity ------------------------
 *
 * Key: `prefixlen` counts bits starting at `family` (the LPM trie compares
 * the bytes after prefixlen). The first MESH_IPCACHE_STATIC_PREFIX bits
 * (family + pad) are always part of the prefix, so an IPv4 /24 is stored
 * with prefixlen = 32 + 24 and an IPv6 /64 with prefixlen = 32 + 64.
 * IPv4 addresses occupy addr[0..3] (network byte order), addr[4..15] zero.
 */
#define MESH_IPCACHE_STATIC_PREFIX 32
struct mesh_ipcache_key {
	__u32 prefixlen;
	__u8 family;   /* MESH_FAMILY_IPV4 or MESH_FAMILY_IPV6 */
	__u8 pad0;
	__u16 pad1;
	__u8 addr[16]; /* network byte order */
};

/* Value: what the node agent knows about the workload(s) behind the prefix. */
struct mesh_ipcache_value {
	__u32 identity; /* numeric security identity (see reserved values above) */
	__u32 node_id;  /* node hosting the prefix; 0 = this node */
	/*
	 * Incarnation of the workload that owns this address. The node agent
	 * gives every (re)assignment of an address to a workload a new,
	 * never-reused number (e.g. a 64-bit counter split in two halves kept
	 * monotonic across restarts, or the lower 64 bits of the workload UID
	 * hash). Mutual-auth entries are keyed on it, so that a workload
	 * reusing the address can never inherit the authentication of the
	 * previous one (see docs/bpf.md, "IP reuse").
	 */
	__u64 incarnation;
};

/* ---- per-endpoint policy: LPM trie ---------------------------------------
 *
 * One policy map per workload (endpoint); the layout of Cilium's policy map
 * and of PolicyEngine's compiled `PolicyEntry`. Key fields in prefix order:
 * identity (32 bits), direction (8), pad (16), protocol (8), dport (16).
 * The first MESH_POLICY_STATIC_PREFIX bits (identity, direction, pad) are
 * always matched exactly; then the protocol (8 bits; protocol 0 with
 * prefixlen 56 = any protocol and any port) and then `port_prefix` bits of
 * the destination port:
 *   prefixlen = MESH_POLICY_STATIC_PREFIX + (protocol == 0 ? 0 : 8 + port_prefix)
 * where port_prefix 16 = exactly dport, 0 = any port, and a range aligned to
 * a power of two is one prefix (8080/13 = 8080-8087).
 *
 * Lookup in the datapath (PolicyEngine's `EndpointPolicyMap.lookup`):
 *   e = longest-prefix entry for the exact remote identity
 *   w = longest-prefix entry for identity 0 (wildcard)
 *   e or w is a deny entry      -> DROP (deny first)
 *   else e, else w              -> allowed with that entry's proxy port / auth type
 *   neither                     -> DROP if the direction is in default deny
 *                                  (MESH_CONFIG_ENFORCE_*), else pass
 * As in Cilium, the policy compiler resolves deny precedence between entries
 * of one identity (a deny covering a narrower allow replaces that allow).
 */
#define MESH_POLICY_STATIC_PREFIX 56
#define MESH_POLICY_FULL_PREFIX   80 /* MESH_POLICY_STATIC_PREFIX + 8 (protocol) + 16 (port) */
#define MESH_DIR_INGRESS 0
#define MESH_DIR_EGRESS  1
struct mesh_policy_key {
	__u32 prefixlen;
	__u32 identity;    /* remote identity (always matched exactly); 0 = any */
	__u8 direction;    /* MESH_DIR_INGRESS or MESH_DIR_EGRESS */
	__u8 pad0;         /* zero; part of the static prefix */
	__u8 pad1;         /* zero; part of the static prefix */
	__u8 protocol;     /* IPPROTO_TCP (6), IPPROTO_UDP (17), IPPROTO_SCTP (132); 0 = any */
	__be16 dport_be;   /* destination port, network byte order (prefix bits from the top) */
	__u16 pad2;        /* zero; never part of a prefix */
};

/* Auth types (as Cilium's `authentication.mode`). */
#define MESH_AUTH_NONE   0
#define MESH_AUTH_SPIRE  1 /* mTLS with SPIFFE identities ("required") */
#define MESH_AUTH_ALWAYS_FAIL 2 /* for tests: never satisfiable */

struct mesh_policy_value {
	__u16 proxy_port_be; /* L7 proxy port (network byte order); 0 = none (stored for the
	                        proxy redirect of a later issue; not acted on yet) */
	__u8 auth_type;      /* MESH_AUTH_*; non-zero requires an auth map entry (allow only) */
	__u8 deny;           /* 1 = deny entry, 0 = allow entry */
	__u32 rule_id;       /* opaque id of the rule that produced the entry (for events) */
};

/* ---- mutual auth: hash, (local id, remote id, remote node, type, incarnation) -> expiry
 *
 * Written by the node agent after a successful mTLS handshake with the
 * remote workload (a later issue), read by the datapath on every packet that
 * hits a policy entry with auth_type != 0. `remote_incarnation` is copied
 * from the ipcache entry of the remote address at handshake time: an address
 * reused by another workload gets a new incarnation (and usually a new
 * identity), so it can never match an entry created for its predecessor.
 */
struct mesh_auth_key {
	__u32 local_identity;
	__u32 remote_identity;
	__u32 remote_node_id; /* 0 = this node */
	__u8 auth_type;       /* MESH_AUTH_* */
	__u8 pad0;
	__u16 pad1;
	__u64 remote_incarnation;
};

struct mesh_auth_value {
	__u64 expiration_ns; /* CLOCK_BOOTTIME ns (bpf_ktime_get_boot_ns); 0 = expired */
};

/* ---- per-endpoint configuration: array with one element -------------------- */
/* Default deny per direction: a packet matching no policy entry is dropped
 * in an enforced direction and passed otherwise (deny entries always apply). */
#define MESH_CONFIG_ENFORCE_INGRESS 1
#define MESH_CONFIG_ENFORCE_EGRESS  2
struct mesh_endpoint_config {
	__u32 local_identity; /* identity of the workload behind the interface */
	__u32 flags;          /* MESH_CONFIG_* */
};

/* ---- verdict counters: per-CPU array indexed by MESH_VERDICT_* ----------- */
#define MESH_VERDICT_ALLOW        0 /* allowed by an allow entry */
#define MESH_VERDICT_DROP_NO_RULE 1 /* default deny: no entry matched in an enforced direction */
#define MESH_VERDICT_DROP_DENY    2 /* matched a deny entry */
#define MESH_VERDICT_DROP_AUTH    3 /* auth required, entry missing or expired */
#define MESH_VERDICT_REPLY        4 /* reply of an allowed flow (conntrack) */
#define MESH_VERDICT_NOT_ENFORCED 5 /* no entry in a direction without default deny, no config, or not IP */
#define MESH_VERDICT_EVENT_LOST   6 /* ring buffer full, event dropped */
#define MESH_VERDICT_MAX          7
struct mesh_counter {
	__u64 packets;
	__u64 bytes;
};

/* ---- events: ring buffer records ------------------------------------------ */
#define MESH_EVENT_AUTH_REQUIRED 1
struct mesh_auth_event {
	__u32 type;            /* MESH_EVENT_AUTH_REQUIRED */
	__u32 local_identity;
	__u32 remote_identity;
	__u32 remote_node_id;
	__u64 remote_incarnation;
	__u64 timestamp_ns;    /* bpf_ktime_get_boot_ns at the drop */
	__u8 auth_type;
	__u8 direction;        /* MESH_DIR_* */
	__u8 protocol;
	__u8 family;
	__be16 sport_be;
	__be16 dport_be;
	__u8 saddr[16];
	__u8 daddr[16];
};

/* ---- minimal conntrack for replies: LRU hash ------------------------------ */
struct mesh_ct_key {
	__u8 saddr[16]; /* originator address */
	__u8 daddr[16];
	__be16 sport_be;
	__be16 dport_be;
	__u8 protocol;
	__u8 family;
	__u16 pad0;
};
struct mesh_ct_value {
	__u64 last_seen_ns;
	__u8 direction; /* MESH_DIR_* the flow was allowed in */
	__u8 pad0[7];
};

/* ---- services (cgroup connect4/6 VIP rewrite): hash ----------------------- */
struct mesh_service_key {
	__u8 vip[16];     /* network byte order; IPv4 in vip[0..3] */
	__be16 port_be;
	__u8 family;      /* MESH_FAMILY_* */
	__u8 protocol;    /* IPPROTO_TCP / IPPROTO_UDP */
};
struct mesh_service_value {
	__u8 backend[16]; /* network byte order; IPv4 in backend[0..3] */
	__be16 port_be;
	__u16 pad0;
	__u32 pad1;
};

/* ---- socket statistics: per-CPU array of __u64 indexed by MESH_SOCK_* ---- */
#define MESH_SOCK_REWRITE4           0 /* connect4 rewritten to a backend */
#define MESH_SOCK_REWRITE6           1 /* connect6 rewritten to a backend */
#define MESH_SOCK_ACTIVE_ESTABLISHED 2 /* sock_ops: outbound TCP established */
#define MESH_SOCK_PASSIVE_ESTABLISHED 3 /* sock_ops: inbound TCP established */
#define MESH_SOCK_MAX                4

#ifndef __bpf__
_Static_assert(sizeof(struct mesh_ipcache_key) == 24, "ipcache key");
_Static_assert(sizeof(struct mesh_ipcache_value) == 16, "ipcache value");
_Static_assert(sizeof(struct mesh_policy_key) == 16, "policy key");
_Static_assert(sizeof(struct mesh_policy_value) == 8, "policy value");
_Static_assert(sizeof(struct mesh_auth_key) == 24, "auth key");
_Static_assert(sizeof(struct mesh_auth_value) == 8, "auth value");
_Static_assert(sizeof(struct mesh_endpoint_config) == 8, "config");
_Static_assert(sizeof(struct mesh_counter) == 16, "counter");
_Static_assert(sizeof(struct mesh_auth_event) == 72, "auth event");
_Static_assert(sizeof(struct mesh_ct_key) == 40, "ct key");
_Static_assert(sizeof(struct mesh_ct_value) == 16, "ct value");
_Static_assert(sizeof(struct mesh_service_key) == 20, "service key");
_Static_assert(sizeof(struct mesh_service_value) == 24, "service value");
_Static_assert(MESH_POLICY_FULL_PREFIX == MESH_POLICY_STATIC_PREFIX + 8 + 16, "policy prefix");
#endif

#endif /* SWIFT_MESH_BPF_MESH_MAPS_H */
