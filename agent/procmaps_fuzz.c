/* procmaps_fuzz: parses arbitrary bytes as a maps file; whatever is kept must be sorted,
 * non-overlapping, page aligned, and found again by lookups at both ends of every mapping.
 * Any violation aborts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "procmaps.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct procmaps *m = NULL;
	if (procmaps_parse((const char *)data, size, 512, &m) < 0)
		abort();
	size_t n = procmaps_count(m), idx;
	if (n > 512 || (procmaps_truncated(m) && n != 512))
		abort();
	for (size_t i = 0; i < n; i++) {
		const struct procmaps_entry *e = procmaps_at(m, i);
		if (e->start >= e->end || (e->start & 0xfff) || (e->end & 0xfff) || !e->path ||
		    (i && e->start < procmaps_at(m, i - 1)->end))
			abort();
		if (procmaps_find(m, e->start, &idx) != e || idx != i || procmaps_find(m, e->end - 1, NULL) != e)
			abort();
		if (e->kind == PROCMAPS_FILE && e->path[0] != '/')
			abort();
		if (!procmaps_name(e))
			abort();
		const struct procmaps_entry *f = procmaps_data_file(m, i);
		if (f && f->kind != PROCMAPS_FILE)
			abort();
	}
	if (n && procmaps_find(m, procmaps_at(m, 0)->start - 1, NULL) && procmaps_at(m, 0)->start)
		abort();
	procmaps_free(m);

	/* the line parser alone, on the first line */
	const char *nl = memchr(data, '\n', size);
	struct procmaps_entry e;
	const char *path;
	size_t plen;
	if (procmaps_parse_line((const char *)data, nl ? (size_t)(nl - (const char *)data) : size, &e, &path, &plen) == 0 &&
	    (path < (const char *)data || path + plen > (const char *)data + size))
		abort();
	return 0;
}
