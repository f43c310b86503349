// SPDX-License-Identifier: (Apache-2.0 OR GPL-2.0-only)
/*
 * swift-mesh: socket-level programs attached to a cgroup (v2).
 *
 *   mesh_connect4 / mesh_connect6 (cgroup/connect4, cgroup/connect6):
 *     rewrite a connect() to a service VIP:port into one of its backends from
 *     mesh_services (kube-proxy replacement at the socket layer, as Cilium's
 *     socket LB). Connects to anything else are left untouched.
 *   mesh_sockops (sockops): counts established TCP connections.
 *
 * Layouts: include/mesh_maps.h.
 */
#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "mesh_maps.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct mesh_service_key);
	__type(value, struct mesh_service_value);
	__uint(max_entries, 65536);
} mesh_services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, MESH_SOCK_MAX);
} mesh_sock_stats SEC(".maps");

static __always_inline void bump(__u32 index)
{
	__u64 *v = bpf_map_lookup_elem(&mesh_sock_stats, &index);

	if (v)
		*v += 1;
}

SEC("cgroup/connect4")
int mesh_connect4(struct bpf_sock_addr *ctx)
{
	struct mesh_service_key k = {
		.port_be = (__be16)ctx->user_port,
		.family = MESH_FAMILY_IPV4,
		.protocol = (__u8)ctx->protocol,
	};
	__u32 ip4 = ctx->user_ip4;

	__builtin_memcpy(k.vip, &ip4, 4);
	struct mesh_service_value *v = bpf_map_lookup_elem(&mesh_services, &k);
	if (!v)
		return 1;
	__builtin_memcpy(&ip4, v->backend, 4);
	ctx->user_ip4 = ip4;
	ctx->user_port = v->port_be;
	bump(MESH_SOCK_REWRITE4);
	return 1;
}

SEC("cgroup/connect6")
int mesh_connect6(struct bpf_sock_addr *ctx)
{
	struct mesh_service_key k = {
		.port_be = (__be16)ctx->user_port,
		.family = MESH_FAMILY_IPV6,
		.protocol = (__u8)ctx->protocol,
	};
	__u32 w;

	w = ctx->user_ip6[0]; __builtin_memcpy(&k.vip[0], &w, 4);
	w = ctx->user_ip6[1]; __builtin_memcpy(&k.vip[4], &w, 4);
	w = ctx->user_ip6[2]; __builtin_memcpy(&k.vip[8], &w, 4);
	w = ctx->user_ip6[3]; __builtin_memcpy(&k.vip[12], &w, 4);
	struct mesh_service_value *v = bpf_map_lookup_elem(&mesh_services, &k);
	if (!v)
		return 1;
	__builtin_memcpy(&w, &v->backend[0], 4); ctx->user_ip6[0] = w;
	__builtin_memcpy(&w, &v->backend[4], 4); ctx->user_ip6[1] = w;
	__builtin_memcpy(&w, &v->backend[8], 4); ctx->user_ip6[2] = w;
	__builtin_memcpy(&w, &v->backend[12], 4); ctx->user_ip6[3] = w;
	ctx->user_port = v->port_be;
	bump(MESH_SOCK_REWRITE6);
	return 1;
}

SEC("sockops")
int mesh_sockops(struct bpf_sock_ops *skops)
{
	switch (skops->op) {
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		bump(MESH_SOCK_ACTIVE_ESTABLISHED);
		break;
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		bump(MESH_SOCK_PASSIVE_ESTABLISHED);
		break;
	default:
		break;
	}
	return 1;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
