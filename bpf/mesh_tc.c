// SPDX-License-Identifier: (Apache-2.0 OR GPL-2.0-only)
/*
 * swift-mesh: identity-based L3/L4 enforcement with mutual-auth signalling,
 * attached with tc (clsact) to a workload's interface.
 *
 *   mesh_tc_ingress: packets delivered to the workload (remote = source)
 *   mesh_tc_egress:  packets sent by the workload (remote = destination)
 *
 * For each packet that is not the reply of an allowed flow:
 *   remote IP --ipcache LPM--> (identity, node, incarnation)   (none: world)
 *   policy: e = longest protocol/port prefix entry for the exact identity,
 *           w = the same for identity 0; a deny in e or w -> drop; else e or w
 *           allows; neither -> drop when the direction is in default deny
 *   allow entry with auth_type != 0: the auth map must hold an entry for
 *           (local id, remote id, remote node, auth type, incarnation) that
 *           has not expired (boot-time ns), else drop + ring-buffer event.
 * Not enforced: non-IP packets and IPv6 neighbour discovery.
 * Verdicts are counted per CPU in mesh_counters. Layouts: include/mesh_maps.h.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "mesh_maps.h"

/* Shared by every endpoint on the node: pinned by name under the pin root. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct mesh_ipcache_key);
	__type(value, struct mesh_ipcache_value);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mesh_ipcache SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct mesh_auth_key);
	__type(value, struct mesh_auth_value);
	__uint(max_entries, 65536);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mesh_auth SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mesh_events SEC(".maps");

/* Per endpoint (one loaded object per workload interface). */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct mesh_policy_key);
	__type(value, struct mesh_policy_value);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} mesh_policy SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct mesh_endpoint_config);
	__uint(max_entries, 1);
} mesh_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct mesh_counter);
	__uint(max_entries, MESH_VERDICT_MAX);
} mesh_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct mesh_ct_key);
	__type(value, struct mesh_ct_value);
	__uint(max_entries, 65536);
} mesh_ct SEC(".maps");

struct flow {
	__u8 family;
	__u8 protocol;
	__be16 sport;    /* policy ports (0 for protocols without ports) */
	__be16 dport;
	__be16 ct_sport; /* conntrack ports: the ports, or the ICMP echo id */
	__be16 ct_dport;
	__u8 saddr[16];
	__u8 daddr[16];
};

static __always_inline int count(struct __sk_buff *skb, __u32 verdict, int action)
{
	struct mesh_counter *c = bpf_map_lookup_elem(&mesh_counters, &verdict);

	if (c) {
		c->packets += 1;
		c->bytes += skb->len;
	}
	return action;
}

static __always_inline int parse_ports(void *l4, void *data_end, struct flow *f)
{
	if (f->protocol == IPPROTO_ICMP || f->protocol == IPPROTO_ICMPV6) {
		/* Echo requests and replies are tracked by their identifier, as a
		 * (request: source, reply: destination) port, so that only the reply
		 * to an allowed request counts as a reply. Policy sees port 0. */
		__u8 *icmp = l4;

		if (l4 + 8 > data_end)
			return 0;
		__u8 request = f->protocol == IPPROTO_ICMP ? 8 : 128;
		__u8 reply = f->protocol == IPPROTO_ICMP ? 0 : 129;
		if (icmp[0] == request)
			__builtin_memcpy(&f->ct_sport, icmp + 4, 2);
		else if (icmp[0] == reply)
			__builtin_memcpy(&f->ct_dport, icmp + 4, 2);
		return 0;
	}
	/* TCP, UDP and SCTP all start with source and destination port. */
	if (f->protocol != IPPROTO_TCP && f->protocol != IPPROTO_UDP &&
	    f->protocol != IPPROTO_SCTP)
		return 0;
	if (l4 + 4 > data_end)
		return -1;
	__builtin_memcpy(&f->sport, l4, 2);
	__builtin_memcpy(&f->dport, l4 + 2, 2);
	f->ct_sport = f->sport;
	f->ct_dport = f->dport;
	return 0;
}

static __always_inline int parse(struct __sk_buff *skb, struct flow *f)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return -1;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > data_end || ip->ihl < 5)
			return -1;
		f->family = MESH_FAMILY_IPV4;
		f->protocol = ip->protocol;
		__builtin_memcpy(f->saddr, &ip->saddr, 4);
		__builtin_memcpy(f->daddr, &ip->daddr, 4);
		/* Non-first fragments carry no ports: they are matched with port 0. */
		if (ip->frag_off & bpf_htons(0x1fff))
			return 0;
		return parse_ports((void *)ip + ip->ihl * 4, data_end, f);
	}
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end)
			return -1;
		f->family = MESH_FAMILY_IPV6;
		f->protocol = ip6->nexthdr; /* extension headers: matched with port 0 */
		__builtin_memcpy(f->saddr, &ip6->saddr, 16);
		__builtin_memcpy(f->daddr, &ip6->daddr, 16);
		if (f->protocol == IPPROTO_ICMPV6) {
			__u8 *type = (void *)(ip6 + 1);

			if ((void *)(type + 1) > data_end)
				return -1;
			/* Router/neighbour discovery (133-137) is never policy-enforced. */
			if (*type >= 133 && *type <= 137)
				return -1;
		}
		return parse_ports(ip6 + 1, data_end, f);
	}
	return -1;
}

static __always_inline struct mesh_policy_value *
policy_lookup(__u32 identity, __u8 direction, const struct flow *f)
{
	struct mesh_policy_key k = {
		.prefixlen = MESH_POLICY_FULL_PREFIX,
		.identity = identity,
		.direction = direction,
		.protocol = f->protocol,
		.dport_be = f->dport,
	};

	return bpf_map_lookup_elem(&mesh_policy, &k);
}

static __always_inline void emit_auth_event(struct __sk_buff *skb, const struct flow *f,
					    const struct mesh_auth_key *ak, __u8 direction)
{
	struct mesh_auth_event ev = {
		.type = MESH_EVENT_AUTH_REQUIRED,
		.local_identity = ak->local_identity,
		.remote_identity = ak->remote_identity,
		.remote_node_id = ak->remote_node_id,
		.remote_incarnation = ak->remote_incarnation,
		.timestamp_ns = bpf_ktime_get_boot_ns(),
		.auth_type = ak->auth_type,
		.direction = direction,
		.protocol = f->protocol,
		.family = f->family,
		.sport_be = f->sport,
		.dport_be = f->dport,
	};

	__builtin_memcpy(ev.saddr, f->saddr, 16);
	__builtin_memcpy(ev.daddr, f->daddr, 16);
	if (bpf_ringbuf_output(&mesh_events, &ev, sizeof(ev), 0) != 0)
		count(skb, MESH_VERDICT_EVENT_LOST, 0);
}

/* Passes a packet and records its flow so that replies pass the other direction. */
static __always_inline int pass_flow(struct __sk_buff *skb, const struct flow *f, __u8 direction,
				     __u32 verdict)
{
	struct mesh_ct_key fk = {
		.sport_be = f->ct_sport,
		.dport_be = f->ct_dport,
		.protocol = f->protocol,
		.family = f->family,
	};
	__builtin_memcpy(fk.saddr, f->saddr, 16);
	__builtin_memcpy(fk.daddr, f->daddr, 16);
	struct mesh_ct_value cv = {
		.last_seen_ns = bpf_ktime_get_boot_ns(),
		.direction = direction,
	};
	bpf_map_update_elem(&mesh_ct, &fk, &cv, BPF_ANY);
	return count(skb, verdict, TC_ACT_OK);
}

static __always_inline int enforce(struct __sk_buff *skb, __u8 direction)
{
	__u32 zero = 0;
	struct mesh_endpoint_config *cfg = bpf_map_lookup_elem(&mesh_config, &zero);
	struct flow f = {};
	__u32 flag = direction == MESH_DIR_INGRESS ? MESH_CONFIG_ENFORCE_INGRESS
						   : MESH_CONFIG_ENFORCE_EGRESS;

	if (!cfg || parse(skb, &f) < 0)
		return count(skb, MESH_VERDICT_NOT_ENFORCED, TC_ACT_OK);

	/* Reply of a flow allowed in the other direction? */
	struct mesh_ct_key ck = {
		.sport_be = f.ct_dport,
		.dport_be = f.ct_sport,
		.protocol = f.protocol,
		.family = f.family,
	};
	__builtin_memcpy(ck.saddr, f.daddr, 16);
	__builtin_memcpy(ck.daddr, f.saddr, 16);
	struct mesh_ct_value *ct = bpf_map_lookup_elem(&mesh_ct, &ck);
	if (ct && ct->direction != direction) {
		ct->last_seen_ns = bpf_ktime_get_boot_ns();
		return count(skb, MESH_VERDICT_REPLY, TC_ACT_OK);
	}

	/* Remote address -> identity. */
	struct mesh_ipcache_key ik = {
		.prefixlen = MESH_IPCACHE_STATIC_PREFIX + (f.family == MESH_FAMILY_IPV4 ? 32 : 128),
		.family = f.family,
	};
	__builtin_memcpy(ik.addr, direction == MESH_DIR_INGRESS ? f.saddr : f.daddr, 16);
	struct mesh_ipcache_value *remote = bpf_map_lookup_elem(&mesh_ipcache, &ik);
	__u32 identity = remote ? remote->identity : MESH_IDENTITY_WORLD;

	struct mesh_policy_value *exact = policy_lookup(identity, direction, &f);
	struct mesh_policy_value *wild = identity == MESH_IDENTITY_WILDCARD
		? NULL : policy_lookup(MESH_IDENTITY_WILDCARD, direction, &f);
	if ((exact && exact->deny) || (wild && wild->deny))
		return count(skb, MESH_VERDICT_DROP_DENY, TC_ACT_SHOT);

	struct mesh_policy_value *allow = exact ? exact : wild;
	if (!allow) {
		if (cfg->flags & flag)
			return count(skb, MESH_VERDICT_DROP_NO_RULE, TC_ACT_SHOT);
		return pass_flow(skb, &f, direction, MESH_VERDICT_NOT_ENFORCED);
	}

	if (allow->auth_type != MESH_AUTH_NONE) {
		struct mesh_auth_key ak = {
			.local_identity = cfg->local_identity,
			.remote_identity = identity,
			.remote_node_id = remote ? remote->node_id : 0,
			.auth_type = allow->auth_type,
			.remote_incarnation = remote ? remote->incarnation : 0,
		};
		struct mesh_auth_value *av = bpf_map_lookup_elem(&mesh_auth, &ak);

		if (!av || av->expiration_ns <= bpf_ktime_get_boot_ns()) {
			emit_auth_event(skb, &f, &ak, direction);
			return count(skb, MESH_VERDICT_DROP_AUTH, TC_ACT_SHOT);
		}
	}

	return pass_flow(skb, &f, direction, MESH_VERDICT_ALLOW);
}

SEC("tc")
int mesh_tc_ingress(struct __sk_buff *skb)
{
	return enforce(skb, MESH_DIR_INGRESS);
}

SEC("tc")
int mesh_tc_egress(struct __sk_buff *skb)
{
	return enforce(skb, MESH_DIR_EGRESS);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
