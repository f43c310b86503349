// Baseline for `scripts/bench bpf`: the same map operations as bench-bpf,
// calling libbpf directly. Built by scripts/bench.d/bpf.sh with gcc -O2 -lbpf.
//
// Usage: bpf_baseline TYPE [FLAGS]
//   TYPE: hash | lru_hash | array | percpu_array   FLAGS: 0 or 1 (BPF_F_NO_PREALLOC)
// One round per run (bench-bpf interleaves C and Swift rounds): a fresh map of
// ENTRIES UInt32 -> UInt64 entries, filled once untimed, then
//   update_single  REPEAT x ENTRIES bpf_map_update_elem(BPF_ANY) (overwrites)
//   lookup_single  REPEAT x ENTRIES bpf_map_lookup_elem
//   update_batch   REPEAT x one bpf_map_update_batch of all ENTRIES
//   lookup_batch   REPEAT x bpf_map_lookup_batch until ENOENT or the capacity is read
// (LRU hash: capacity ENTRIES + 25%, since a full LRU map evicts.)
// Output: one "name nanoseconds-per-element" line per measurement, plus
// "update_batch_calls" / "lookup_batch_calls" (system calls per batch) and
// "null_syscall" (ns of getppid(2) through syscall(2): the floor of any call).
// Per-CPU values are one 8-byte slot per possible CPU, as the kernel requires.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define ENTRIES 10000
#define REPEAT 10

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: bpf_baseline hash|lru_hash|array|percpu_array [no_prealloc 0|1]\n");
		return 2;
	}
	enum bpf_map_type type;
	if (!strcmp(argv[1], "hash")) type = BPF_MAP_TYPE_HASH;
	else if (!strcmp(argv[1], "lru_hash")) type = BPF_MAP_TYPE_LRU_HASH;
	else if (!strcmp(argv[1], "array")) type = BPF_MAP_TYPE_ARRAY;
	else if (!strcmp(argv[1], "percpu_array")) type = BPF_MAP_TYPE_PERCPU_ARRAY;
	else { fprintf(stderr, "bpf_baseline: unknown map type %s\n", argv[1]); return 2; }
	int percpu = type == BPF_MAP_TYPE_PERCPU_ARRAY;
	int ncpus = percpu ? libbpf_num_possible_cpus() : 1;
	if (ncpus < 1) { fprintf(stderr, "libbpf_num_possible_cpus: %d\n", ncpus); return 1; }

	LIBBPF_OPTS(bpf_map_create_opts, copts, .map_flags = (argc > 2 && atoi(argv[2])) ? BPF_F_NO_PREALLOC : 0);
	/* An LRU hash full to the brim evicts (its free lists are per CPU): 25% headroom,
	 * which keeps 16384 buckets as for the hash map. */
	uint32_t capacity = type == BPF_MAP_TYPE_LRU_HASH ? ENTRIES + ENTRIES / 4 : ENTRIES;
	int fd = bpf_map_create(type, "bench_c", 4, 8, capacity, &copts);
	if (fd < 0) {
		fprintf(stderr, "bpf_map_create: %d (needs root / CAP_BPF)\n", fd);
		return 1;
	}
	size_t vsize = 8 * (size_t)ncpus; /* bytes of one element's value(s) */
	uint32_t *keys = malloc(sizeof(uint32_t) * ENTRIES), *okeys = malloc(sizeof(uint32_t) * ENTRIES);
	uint64_t *values = malloc(vsize * ENTRIES), *ovalues = malloc(vsize * ENTRIES);
	uint64_t *v = malloc(vsize);
	if (!keys || !okeys || !values || !ovalues || !v) { perror("malloc"); return 1; }
	for (uint32_t i = 0; i < ENTRIES; i++) {
		keys[i] = i;
		for (int c = 0; c < ncpus; c++) values[(size_t)i * ncpus + c] = (uint64_t)i << 32;
	}
	for (uint32_t k = 0; k < ENTRIES; k++) /* fill: every timed update is an overwrite */
		if (bpf_map_update_elem(fd, &k, values + (size_t)k * ncpus, BPF_ANY)) { perror("fill"); return 1; }

	uint64_t sink = 0;
	double t0 = now_ns();
	for (int r = 0; r < REPEAT; r++)
		for (uint32_t k = 0; k < ENTRIES; k++) {
			for (int c = 0; c < ncpus; c++) v[c] = k + r;
			if (bpf_map_update_elem(fd, &k, v, BPF_ANY)) { perror("update"); return 1; }
		}
	double t1 = now_ns();
	for (int r = 0; r < REPEAT; r++)
		for (uint32_t k = 0; k < ENTRIES; k++) {
			if (bpf_map_lookup_elem(fd, &k, v)) { perror("lookup"); return 1; }
			for (int c = 0; c < ncpus; c++) sink += v[c];
		}
	double t2 = now_ns();
	int ucalls = 0, lcalls = 0;
	for (int r = 0; r < REPEAT; r++) {
		LIBBPF_OPTS(bpf_map_batch_opts, bopts, .elem_flags = BPF_ANY);
		uint32_t count = ENTRIES;
		if (bpf_map_update_batch(fd, keys, values, &count, &bopts)) { perror("update_batch"); return 1; }
		ucalls++;
	}
	double t3 = now_ns();
	for (int r = 0; r < REPEAT; r++) {
		LIBBPF_OPTS(bpf_map_batch_opts, bopts);
		uint64_t in_token = 0, out_token = 0;
		uint32_t total = 0;
		int first = 1;
		for (;;) {
			uint32_t count = ENTRIES - total; /* buffers hold ENTRIES: ENOSPC if the map had more */
			int err = bpf_map_lookup_batch(fd, first ? NULL : &in_token, &out_token, okeys + total,
						       (char *)ovalues + vsize * total, &count, &bopts);
			lcalls++;
			total += count;
			if (err && errno == ENOENT) break;
			if (err) { perror("lookup_batch"); return 1; }
			if (total >= capacity) break; /* the map cannot hold more */
			in_token = out_token;
			first = 0;
		}
		if (total != ENTRIES) { fprintf(stderr, "lookup_batch: %u of %u entries\n", total, ENTRIES); return 1; }
		sink += okeys[total - 1] + ovalues[0];
	}
	double t4 = now_ns();
	for (int r = 0; r < REPEAT * ENTRIES; r++)
		sink += syscall(SYS_getppid);
	double t5 = now_ns();
	double ops = (double)REPEAT * ENTRIES;
	printf("update_single %.1f\nlookup_single %.1f\nupdate_batch %.1f\nlookup_batch %.1f\n"
	       "update_batch_calls %.1f\nlookup_batch_calls %.1f\nnull_syscall %.1f\nsink %llu\n",
	       (t1 - t0) / ops, (t2 - t1) / ops, (t3 - t2) / ops, (t4 - t3) / ops,
	       (double)ucalls / REPEAT, (double)lcalls / REPEAT, (t5 - t4) / ops, (unsigned long long)(sink & 1));
	return 0;
}
