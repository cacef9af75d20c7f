/* perfmap_fuzz: parses arbitrary bytes as a JIT map and looks up every entry's first and last
 * byte (the hit must contain the address); then replays the same bytes as operations on a small
 * region registry (put/find/forget), checking that a put region is found at once. Any
 * violation aborts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "perfmap.h"

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct perfmap *pm = NULL;
	struct perfmap_limits lim = { .max_entries = 1000 };
	if (perfmap_parse((const char *)data, size, &lim, &pm) < 0)
		abort();
	if (perfmap_count(pm) > 1000)
		abort();
	for (size_t i = 0; i + 8 <= size && i < 4096; i += 8) {
		uint64_t a = rd64(data + i);
		struct perfmap_hit h;
		if (perfmap_lookup(pm, a, &h) == 0 && (a < h.start || a - h.start >= h.size || !h.name))
			abort();
	}
	perfmap_free(pm);

	struct perfmap_registry *reg = NULL;
	if (perfmap_registry_new(16, &reg) < 0)
		abort();
	for (size_t i = 0; i + 10 <= size; i += 10) {
		uint32_t pid = data[i] & 3;
		uint8_t cls = data[i + 1] & 1;
		uint64_t start = (uint64_t)data[i + 2] << 8 | data[i + 3];
		uint64_t len = data[i + 4] & 0x7f;
		struct perfmap_region g;
		switch (data[i + 5] % 4) {
		case 0:
		case 1:
			if (perfmap_registry_put(reg, pid, cls, start, len, "fn", "[jit]") == 0 &&
			    (perfmap_registry_find(reg, pid, cls, start + len - 1, &g) < 0 || g.start != start || g.len != len))
				abort();
			break;
		case 2:
			if (perfmap_registry_find(reg, pid, cls, start, &g) == 0 && (start < g.start || start - g.start >= g.len))
				abort();
			break;
		default:
			perfmap_registry_forget(reg, pid);
			if (perfmap_registry_find(reg, pid, cls, start, &g) == 0)
				abort();
		}
		if (perfmap_registry_count(reg) > 16)
			abort();
	}
	perfmap_registry_free(reg);
	return 0;
}
