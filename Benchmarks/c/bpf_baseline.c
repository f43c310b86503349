// Baseline for `scripts/bench bpf`: the same map operations as bench-bpf,
// calling libbpf directly. Built by scripts/bench.d/bpf.sh with gcc -O2 -lbpf.
// Output: one "name nanoseconds-per-operation" line per measurement (best of ROUNDS).
#include <bpf/bpf.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define ENTRIES 10000
#define REPEAT 20
#define ROUNDS 5

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(void)
{
	LIBBPF_OPTS(bpf_map_create_opts, copts);
	int fd = bpf_map_create(BPF_MAP_TYPE_HASH, "bench_c", 4, 8, ENTRIES, &copts);
	if (fd < 0) {
		fprintf(stderr, "bpf_map_create: %d (needs root / CAP_BPF)\n", fd);
		return 1;
	}
	static uint32_t keys[ENTRIES];
	static uint64_t values[ENTRIES];
	for (uint32_t i = 0; i < ENTRIES; i++) { keys[i] = i; values[i] = (uint64_t)i << 32; }

	double best_update = 1e18, best_lookup = 1e18, best_bupdate = 1e18, best_blookup = 1e18;
	uint64_t sink = 0;
	for (int round = 0; round < ROUNDS; round++) {
		double t0 = now_ns();
		for (int r = 0; r < REPEAT; r++)
			for (uint32_t k = 0; k < ENTRIES; k++) {
				uint64_t v = k + r;
				if (bpf_map_update_elem(fd, &k, &v, BPF_ANY)) { perror("update"); return 1; }
			}
		double t1 = now_ns();
		for (int r = 0; r < REPEAT; r++)
			for (uint32_t k = 0; k < ENTRIES; k++) {
				uint64_t v;
				if (bpf_map_lookup_elem(fd, &k, &v)) { perror("lookup"); return 1; }
				sink += v;
			}
		double t2 = now_ns();
		for (int r = 0; r < REPEAT; r++) {
			LIBBPF_OPTS(bpf_map_batch_opts, bopts, .elem_flags = BPF_ANY);
			uint32_t count = ENTRIES;
			if (bpf_map_update_batch(fd, keys, values, &count, &bopts)) { perror("update_batch"); return 1; }
		}
		double t3 = now_ns();
		static uint32_t okeys[ENTRIES];
		static uint64_t ovalues[ENTRIES];
		for (int r = 0; r < REPEAT; r++) {
			LIBBPF_OPTS(bpf_map_batch_opts, bopts);
			uint64_t token = 0;
			uint32_t total = 0;
			void *in = NULL;
			for (;;) {
				uint32_t count = ENTRIES - total;
				int err = bpf_map_lookup_batch(fd, in, &token, okeys + total, ovalues + total, &count, &bopts);
				total += count;
				if (err && errno == ENOENT) break;
				if (err) { perror("lookup_batch"); return 1; }
				in = &token;
				if (total >= ENTRIES) break;
			}
			sink += total;
		}
		double t4 = now_ns();
		double ops = (double)REPEAT * ENTRIES;
		if ((t1 - t0) / ops < best_update) best_update = (t1 - t0) / ops;
		if ((t2 - t1) / ops < best_lookup) best_lookup = (t2 - t1) / ops;
		if ((t3 - t2) / ops < best_bupdate) best_bupdate = (t3 - t2) / ops;
		if ((t4 - t3) / ops < best_blookup) best_blookup = (t4 - t3) / ops;
	}
	printf("update_single %.1f\nlookup_single %.1f\nupdate_batch %.1f\nlookup_batch %.1f\nsink %llu\n",
	       best_update, best_lookup, best_bupdate, best_blookup, (unsigned long long)(sink & 1));
	return 0;
}
