/* Fuzz target for the spool's segment parser: arbitrary bytes as one segment file. Checks the
 * invariants of spool_segment_scan, that the valid prefix it reports rescans as entirely valid,
 * and that spool_open on a directory holding those bytes recovers exactly that prefix. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                      \
	do {                                                                          \
		if (!(c)) {                                                           \
			fprintf(stderr, "spool_fuzz: %s failed (line %d)\n", #c, __LINE__); \
			abort();                                                      \
		}                                                                     \
	} while (0)

static void check_scan(const uint8_t *data, size_t size, uint64_t after)
{
	struct spool_scan a, b;
	CHECK(spool_segment_scan(data, size, 0, after, &a) == 0);
	CHECK(a.good_bytes + a.bad_bytes == size);
	CHECK((a.stop == SPOOL_SCAN_END) == (a.bad_bytes == 0));
	CHECK((a.records == 0) == (a.good_bytes == 0));
	CHECK(a.pending_records <= a.records && a.pending_off <= a.good_bytes);
	CHECK(a.records == 0 || (a.first_id > 0 && a.first_id <= a.last_id));
	CHECK(a.good_bytes >= a.records * SPOOL_HDR_SIZE);
	CHECK(spool_segment_scan(data, (size_t)a.good_bytes, 0, after, &b) == 0);
	CHECK(b.stop == SPOOL_SCAN_END && b.records == a.records && b.last_id == a.last_id &&
	      b.pending_records == a.pending_records && b.pending_off == a.pending_off);
	/* Ids only increase: with min_id at the last id, nothing is valid. */
	if (a.records) {
		CHECK(spool_segment_scan(data, size, a.last_id, 0, &b) == 0);
		CHECK(b.records == 0 && b.stop == SPOOL_SCAN_BAD_ID);
	}
}

/* The same bytes through the real open path: mmap, truncation, replay, append. */
static void check_open(const uint8_t *data, size_t size, uint64_t want_records)
{
	char dir[] = "/tmp/spool_fuzz.XXXXXX", p[64], q[64];
	struct spool *sp;
	if (!mkdtemp(dir))
		return;
	snprintf(p, sizeof(p), "%s/000000000001.seg", dir);
	snprintf(q, sizeof(q), "%s/state", dir);
	FILE *f = fopen(p, "wb");
	if (f && size)
		CHECK(fwrite(data, 1, size, f) == size);
	if (f)
		fclose(f);
	struct spool_opts o = { .max_bytes = 256ull << 20, .segment_bytes = 64ull << 20 };
	CHECK(spool_open(dir, &o, &sp) == 0);
	uint64_t n = 0, id, prev = 0;
	const void *buf;
	size_t len;
	while (spool_peek(sp, &buf, &len, &id) == 0) {
		CHECK(id > prev && len <= SPOOL_RECORD_MAX);
		prev = id;
		CHECK(spool_pop(sp) == 0);
		n++;
	}
	CHECK(n == want_records);
	CHECK(spool_append(sp, "x", 1, &id) == 0 && id > prev);
	spool_free(sp);
	unlink(p);
	unlink(q);
	rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct spool_scan a;
	check_scan(data, size, 0);
	check_scan(data, size, size ? data[0] : 0);
	spool_segment_scan(data, size, 0, 0, &a);
	check_open(data, size, a.records);
	return 0;
}
