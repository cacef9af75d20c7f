/* samplelog: see samplelog.h. */
#include "samplelog.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SAMPLELOG_BUF (1u << 20)

struct samplelog {
	FILE *f;
	char *buf;            /* stdio buffer: one write(2) per 16k records */
	uint64_t max_bytes, bytes;
	uint64_t written, dropped;
	int err;              /* first write error: stop writing, keep counting */
};

int samplelog_open(const char *path, uint64_t max_bytes, struct samplelog **ret)
{
	if (!path || !path[0] || max_bytes < 4096)
		return -EINVAL;
	struct samplelog *sl = calloc(1, sizeof(*sl));
	if (!sl)
		return -ENOMEM;
	sl->buf = malloc(SAMPLELOG_BUF);
	sl->f = sl->buf ? fopen(path, "wbe") : NULL;
	if (!sl->f) {
		int e = sl->buf ? -errno : -ENOMEM;
		free(sl->buf);
		free(sl);
		return e;
	}
	setvbuf(sl->f, sl->buf, _IOFBF, SAMPLELOG_BUF);
	struct samplelog_header h;
	memset(&h, 0, sizeof(h));
	memcpy(h.magic, SAMPLELOG_MAGIC, sizeof(h.magic));
	h.rec_size = sizeof(struct samplelog_rec);
	h.version = SAMPLELOG_VERSION;
	if (fwrite(&h, sizeof(h), 1, sl->f) != 1) {
		int e = errno ? -errno : -EIO;
		samplelog_close(sl);
		return e;
	}
	sl->max_bytes = max_bytes;
	sl->bytes = sizeof(h);
	*ret = sl;
	return 0;
}

void samplelog_write(struct samplelog *sl, const struct ms_sample *s)
{
	if (sl->err || sl->bytes + sizeof(struct samplelog_rec) > sl->max_bytes) {
		sl->dropped++;
		return;
	}
	struct samplelog_rec r = {
		.ts_ns = s->ts_ns,
		.flow_id = s->flow_id,
		.ip = s->ip,
		.addr = s->addr,
		.ctx_age_ns = s->ctx_age_ns,
		.period = s->period,
		.cpu = s->cpu,
		.pid = s->pid,
		.tid = s->tid,
		.event = (uint16_t)s->event,
		.attr_rule = s->attr_rule,
		.user_mode = s->user_mode,
	};
	if (fwrite(&r, sizeof(r), 1, sl->f) != 1) {
		sl->err = errno ? errno : EIO;
		sl->dropped++;
		return;
	}
	sl->bytes += sizeof(r);
	sl->written++;
}

uint64_t samplelog_written(const struct samplelog *sl)
{
	return sl ? sl->written : 0;
}

uint64_t samplelog_dropped(const struct samplelog *sl)
{
	return sl ? sl->dropped : 0;
}

struct samplelog *samplelog_close(struct samplelog *sl)
{
	if (!sl)
		return NULL;
	if (sl->f)
		fclose(sl->f);
	free(sl->buf);
	free(sl);
	return NULL;
}
