/* Fuzz target: target specs ("kind:value") from the config file, the API and the coordinator.
 * Every accepted spec must format, re-parse to the same entry and build into a set. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char spec[512];
	if (size >= sizeof(spec))
		size = sizeof(spec) - 1;
	memcpy(spec, data, size);
	spec[size] = 0;
	struct targets_entry e, e2;
	char err[256];
	if (targets_parse_spec(spec, &e, err, sizeof(err)) < 0)
		return 0;
	char text[TARGETS_TEXT_MAX];
	if (targets_format(&e, text, sizeof(text)) < 0)
		abort();
	if (targets_parse_spec(text, &e2, err, sizeof(err)) < 0)
		abort();
	char text2[TARGETS_TEXT_MAX];
	if (targets_format(&e2, text2, sizeof(text2)) < 0 || strcmp(text, text2) != 0)
		abort();
	if (e.kind != TARGETS_CGROUP && e.kind != TARGETS_IFINDEX) {
		struct targets *t;
		if (targets_new(&e, 1, NULL, &t, err, sizeof(err)) < 0)
			abort();
		struct ms_sample s;
		memset(&s, 0, sizeof(s));
		s.flow_id = 1;
		(void)targets_match(t, &s);
		targets_free(t);
	}
	return 0;
}
