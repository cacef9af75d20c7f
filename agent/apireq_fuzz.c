/* Fuzz target: the control API's request bodies. The first byte picks the endpoint (mode,
 * token bucket, targets, JIT regions, data regions); the rest is the body. Accepted bodies must
 * yield values within the documented bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "apireq.h"
#include "loop.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const char *body = (const char *)data + 1;
	size_t len = size - 1;
	struct apireq_err err;
	switch (data[0] % 5) {
	case 0: {
		struct apireq_mode m;
		if (apireq_mode(body, len, &m, &err) == 0 &&
		    (m.mode < LOOP_MODE_SENTINEL || m.mode > LOOP_MODE_AUTO || m.ttl_ms > APIREQ_MAX_TTL_S * 1000))
			abort();
		break;
	}
	case 1: {
		struct apireq_budgets b;
		if (apireq_budgets(body, len, &b, &err) == 0 &&
		    (!b.set || b.sentinel > APIREQ_MAX_BUDGET || b.diagnostic > APIREQ_MAX_BUDGET ||
		     b.hard_drop_ns > APIREQ_MAX_HARD_DROP_NS))
			abort();
		break;
	}
	case 2: {
		struct targets_entry e[TARGETS_MAX];
		int n = apireq_targets(body, len, e, TARGETS_MAX, &err);
		if (n > TARGETS_MAX)
			abort();
		for (int i = 0; i < n; i++) {
			char text[TARGETS_TEXT_MAX];
			if (targets_format(&e[i], text, sizeof(text)) < 0)
				abort();
		}
		break;
	}
	default: {
		struct apireq_region r[8];
		uint32_t pid;
		int n = apireq_regions(body, len, data[0] % 5 == 3, &pid, r, 8, &err);
		for (int i = 0; i < n; i++)
			if (!r[i].size || r[i].start + r[i].size < r[i].start || !r[i].name[0] || !pid)
				abort();
		break;
	}
	}
	return 0;
}
