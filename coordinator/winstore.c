/* winstore: see winstore.h. */
#include "winstore.h"

#include <errno.h>
#include <stdlib.h>

struct winstore {
	struct spool *sp;
};

int winstore_open(const char *dir, uint64_t max_bytes, enum spool_fsync fsync, struct winstore **ret)
{
	struct winstore *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	struct spool_opts o = { .max_bytes = max_bytes, .policy = SPOOL_DROP_NEWEST, .fsync = fsync };
	int r = spool_open(dir, &o, &s->sp);
	if (r < 0) {
		free(s);
		return r;
	}
	*ret = s;
	return 0;
}

struct winstore *winstore_free(struct winstore *s)
{
	if (!s)
		return NULL;
	spool_free(s->sp);
	free(s);
	return NULL;
}

int winstore_sink(void *arg, const struct wire_window *w, ingest_done_fn done, void *done_arg)
{
	struct winstore *s = arg;
	uint8_t *buf;
	size_t len;
	int r = wire_encode_window(w, &buf, &len);
	if (r < 0)
		return r;
	r = spool_append(s->sp, buf, len, NULL);
	free(buf);
	if (r < 0)
		return r;
	done(done_arg, 0);
	return 0;
}

void winstore_stats(struct winstore *s, struct spool_stats *ret)
{
	spool_stats(s->sp, ret);
}
