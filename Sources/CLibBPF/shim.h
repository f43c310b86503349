#ifndef SWIFT_MESH_CLIBBPF_SHIM_H
#define SWIFT_MESH_CLIBBPF_SHIM_H
/*
 * CLibBPF: the system-library target over libbpf (Debian: libbpf-dev).
 * Besides libbpf's own headers it defines a few static inline helpers that
 * keep C-only constructs (option structs with zero-width bitfields, va_list
 * formatting) on the C side of the boundary.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/vfs.h>

/* setns(2) without requiring _GNU_SOURCE in the importing module. */
extern int setns(int fd, int nstype);
#define SWIFTMESH_CLONE_NEWNET 0x40000000

/* Enters the network namespace open at `fd` (calling thread only). */
static inline int swiftmesh_setns_net(int fd)
{
	return setns(fd, SWIFTMESH_CLONE_NEWNET) == 0 ? 0 : -errno;
}

/* 1 when `path` is on a BPF file system (BPF_FS_MAGIC), 0 when not, -errno on error. */
static inline int swiftmesh_is_bpffs(const char *path)
{
	struct statfs st;
	if (statfs(path, &st) != 0)
		return -errno;
	return st.f_type == 0xcafe4a11;
}

/* Creates the clsact qdisc on `ifindex` unless it is already there (EEXIST)
 * and attaches `prog_fd` at ingress or egress. */
static inline int swiftmesh_tc_attach(int ifindex, int egress, int prog_fd,
				      __u32 handle, __u32 priority)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
		    .attach_point = egress ? BPF_TC_EGRESS : BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = prog_fd, .handle = handle,
		    .priority = priority);
	int err = bpf_tc_hook_create(&hook);
	if (err && err != -EEXIST)
		return err;
	return bpf_tc_attach(&hook, &opts);
}

/* Removes the filter (handle, priority) that swiftmesh_tc_attach installed. */
static inline int swiftmesh_tc_detach(int ifindex, int egress, __u32 handle, __u32 priority)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
		    .attach_point = egress ? BPF_TC_EGRESS : BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = handle, .priority = priority);
	return bpf_tc_detach(&hook, &opts);
}

/* Returns the program id of the filter (handle, priority), or a negative errno. */
static inline int swiftmesh_tc_query(int ifindex, int egress, __u32 handle, __u32 priority)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
		    .attach_point = egress ? BPF_TC_EGRESS : BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = handle, .priority = priority);
	int err = bpf_tc_query(&hook, &opts);
	return err ? err : (int)opts.prog_id;
}

/* Formats a libbpf log line (libbpf hands its print callback a va_list). */
static inline int swiftmesh_vformat(char *buffer, size_t size, const char *format, va_list args)
{
	return vsnprintf(buffer, size, format, args);
}

/* Opens an object file with an optional pin root for LIBBPF_PIN_BY_NAME maps. */
static inline struct bpf_object *swiftmesh_object_open(const char *path, const char *pin_root)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = pin_root);
	return bpf_object__open_file(path, &opts);
}

/* Creates a map (opts hidden from Swift). */
static inline int swiftmesh_map_create(__u32 type, const char *name, __u32 key_size,
				       __u32 value_size, __u32 max_entries, __u32 flags)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = flags);
	return bpf_map_create((enum bpf_map_type)type, name, key_size, value_size,
			      max_entries, &opts);
}

/* Batch helpers: elem_flags / flags as in bpf_map_batch_opts. */
static inline int swiftmesh_lookup_batch(int fd, void *in_batch, void *out_batch, void *keys,
					 void *values, __u32 *count)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	return bpf_map_lookup_batch(fd, in_batch, out_batch, keys, values, count, &opts);
}

static inline int swiftmesh_update_batch(int fd, const void *keys, const void *values,
					 __u32 *count, __u64 elem_flags)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = elem_flags);
	return bpf_map_update_batch(fd, keys, values, count, &opts);
}

static inline int swiftmesh_delete_batch(int fd, const void *keys, __u32 *count)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	return bpf_map_delete_batch(fd, keys, count, &opts);
}

/* Runs a program once (or `repeat` times) on `data` (BPF_PROG_TEST_RUN). */
static inline int swiftmesh_test_run(int prog_fd, const void *data, __u32 size, void *out,
				     __u32 *out_size, int repeat, __u32 *retval, __u32 *duration)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = data, .data_size_in = size,
		    .data_out = out, .data_size_out = *out_size, .repeat = repeat);
	int err = bpf_prog_test_run_opts(prog_fd, &opts);
	if (err)
		return err;
	*retval = opts.retval;
	*out_size = opts.data_size_out;
	*duration = opts.duration;
	return 0;
}

/* bpf_map_info fields the Swift side needs (avoids importing the whole struct by value). */
struct swiftmesh_map_info {
	__u32 type, id, key_size, value_size, max_entries, map_flags;
	char name[16];
};

static inline int swiftmesh_map_info(int fd, struct swiftmesh_map_info *out)
{
	struct bpf_map_info info;
	__u32 len = sizeof(info);
	memset(&info, 0, sizeof(info));
	int err = bpf_obj_get_info_by_fd(fd, &info, &len);
	if (err)
		return err;
	out->type = info.type;
	out->id = info.id;
	out->key_size = info.key_size;
	out->value_size = info.value_size;
	out->max_entries = info.max_entries;
	out->map_flags = info.map_flags;
	memcpy(out->name, info.name, sizeof(out->name));
	return 0;
}

struct swiftmesh_prog_info {
	__u32 type, id;
	char name[16];
};

static inline int swiftmesh_prog_info(int fd, struct swiftmesh_prog_info *out)
{
	struct bpf_prog_info info;
	__u32 len = sizeof(info);
	memset(&info, 0, sizeof(info));
	int err = bpf_obj_get_info_by_fd(fd, &info, &len);
	if (err)
		return err;
	out->type = info.type;
	out->id = info.id;
	memcpy(out->name, info.name, sizeof(out->name));
	return 0;
}
#endif
