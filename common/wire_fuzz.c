/* Fuzz target for the fleet wire decoder: arbitrary bytes as a Request, a Window and an Ack.
 * Checks that a window the decoder accepts re-encodes and decodes to the same rows and
 * sample sum (the coordinator may re-encode windows into its own spool). */
#include <stdio.h>
#include <stdlib.h>

#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                     \
	do {                                                                         \
		if (!(c)) {                                                          \
			fprintf(stderr, "wire_fuzz: %s failed (line %d)\n", #c, __LINE__); \
			abort();                                                     \
		}                                                                    \
	} while (0)

static void check_window(const struct wire_window *w)
{
	uint64_t sum = 0;
	for (uint32_t i = 0; i < w->nrows; i++) {
		const struct wire_row *r = &w->rows[i];
		CHECK(r->flow_ix == WIRE_NONE || r->flow_ix < w->nflows);
		CHECK(r->func_ix == WIRE_NONE || r->func_ix < w->nfuncs);
		CHECK(r->object_ix == WIRE_NONE || r->object_ix < w->nobjects);
		CHECK(r->norm_cost >= 0);
		sum += r->samples;
	}
	CHECK(sum == w->samples);
	uint8_t *buf;
	size_t len;
	CHECK(wire_encode_window(w, &buf, &len) == 0);
	struct wire_window *d = NULL;
	CHECK(wire_decode_window(buf, len, &d) == 0);
	CHECK(d->nrows == w->nrows && d->samples == w->samples && d->seq == w->seq);
	wire_window_free(d);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wire_request rq;
	if (wire_decode_request(data, size, &rq) == 0) {
		CHECK(rq.kind != WIRE_KIND_NONE);
		if (rq.window)
			check_window(rq.window);
		wire_request_release(&rq);
	}
	struct wire_window *w = NULL;
	if (wire_decode_window(data, size, &w) == 0)
		check_window(w);
	wire_window_free(w);
	struct wire_ack a;
	(void)wire_decode_ack(data, size, &a);
	return 0;
}
