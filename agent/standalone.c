/* standalone: see standalone.h. */
#include "standalone.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chbatch.h"
#include "chrows.h"
#include "log.h"
#include "uplink.h"
#include "window.h"

struct standalone {
	char agent_id[WIRE_ID_MAX];
	struct chwriter_table tables[CHROWS__N];
	char rollup[CHBATCH_MAX_NAME + 1], raw[CHBATCH_MAX_NAME + 1];
	struct chwriter *w;
	uint32_t submit_wait_ms;
	pthread_mutex_t mu; /* guards the counters below (done runs on the writer thread) */
	uint64_t windows, durable, dropped;
};

static void on_done(void *arg, int status)
{
	struct standalone *s = arg;
	pthread_mutex_lock(&s->mu);
	if (status >= 0)
		s->durable++;
	else
		s->dropped++;
	pthread_mutex_unlock(&s->mu);
}

static void count_drop(struct standalone *s)
{
	pthread_mutex_lock(&s->mu);
	s->dropped++;
	pthread_mutex_unlock(&s->mu);
}

/* Submits u, waiting (bounded) while the writer is at its memory bound. Frees u on failure. */
static int submit(struct standalone *s, struct chwriter_unit *u)
{
	int r;
	uint32_t waited = 0;
	while ((r = chwriter_submit(s->w, &u, on_done, s)) == -EAGAIN && waited < s->submit_wait_ms) {
		struct timespec ts = { 0, 10 * 1000000L };
		nanosleep(&ts, NULL);
		waited += 10;
	}
	if (r < 0)
		chwriter_unit_free(u);
	return r;
}

int standalone_new(const struct standalone_opts *o, struct standalone **ret)
{
	if (!o || !o->agent_id || !o->agent_id[0] || strlen(o->agent_id) >= WIRE_ID_MAX || !o->endpoint ||
	    (o->rollup_table && strlen(o->rollup_table) > CHBATCH_MAX_NAME) ||
	    (o->raw_table && strlen(o->raw_table) > CHBATCH_MAX_NAME))
		return -EINVAL;
	struct standalone *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	snprintf(s->agent_id, sizeof(s->agent_id), "%s", o->agent_id);
	snprintf(s->rollup, sizeof(s->rollup), "%s", o->rollup_table ? o->rollup_table : "");
	snprintf(s->raw, sizeof(s->raw), "%s", o->raw_table ? o->raw_table : "");
	chrows_tables_named(s->tables, s->rollup, s->raw);
	s->submit_wait_ms = o->submit_wait_ms ? o->submit_wait_ms : 5000;
	pthread_mutex_init(&s->mu, NULL);
	struct chwriter_opts wo = {
		.endpoint = o->endpoint,
		.user = o->user,
		.password = o->password,
		.database = o->database && o->database[0] ? o->database : "microsentinel",
		.tables = s->tables,
		.ntables = CHROWS__N,
		.batch_rows = o->batch_rows,
		.flush_ms = o->flush_ms,
		.spool_dir = o->spool_dir,
		.spool_max_bytes = o->spool_max_bytes,
	};
	int r = chwriter_new(&wo, &s->w);
	if (r < 0) {
		pthread_mutex_destroy(&s->mu);
		free(s);
		return r;
	}
	if (o->hello) {
		struct chwriter_unit *u;
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		if (chwriter_unit_new(0, &u) == 0) {
			if (chrows_hello(u, o->hello, (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec) < 0 ||
			    chwriter_submit(s->w, &u, NULL, NULL) < 0)
				chwriter_unit_free(u);
		}
	}
	*ret = s;
	return 0;
}

struct standalone *standalone_free(struct standalone *s)
{
	if (!s)
		return NULL;
	chwriter_free(s->w);
	pthread_mutex_destroy(&s->mu);
	free(s);
	return NULL;
}

int standalone_forward(void *arg, struct window *w)
{
	struct standalone *s = arg;
	uint8_t *buf = NULL;
	size_t len = 0;
	struct wire_window *dw = NULL;
	struct chwriter_unit *u = NULL;
	pthread_mutex_lock(&s->mu);
	s->windows++;
	pthread_mutex_unlock(&s->mu);
	/* the round trip through the wire codec gives the coordinator's exact rows (row order,
	 * rounded costs, dictionaries) at the price of one encode+decode per window */
	int r = uplink_encode_window(w, s->agent_id, &buf, &len);
	if (r == 0)
		r = wire_decode_window(buf, len, &dw);
	if (r == 0)
		r = chwriter_unit_take(s->w, &u);
	if (r == 0 && (r = chrows_window(u, dw)) < 0)
		u = chwriter_unit_free(u);
	if (r == 0)
		r = submit(s, u);
	if (r < 0) {
		ms_debug("CH-STANDALONE", "window %" PRIu64 " not written: %s", w->seq, strerror(-r));
		count_drop(s);
	}
	wire_window_free(dw);
	free(buf);
	window_free(w);
	return 0;
}

void standalone_stats(struct standalone *s, struct standalone_stats *ret)
{
	pthread_mutex_lock(&s->mu);
	ret->windows = s->windows;
	ret->windows_durable = s->durable;
	ret->windows_dropped = s->dropped;
	pthread_mutex_unlock(&s->mu);
	chwriter_stats(s->w, &ret->ch);
}

int standalone_metrics(struct standalone *s, struct strbuf *sb)
{
	struct standalone_stats st;
	standalone_stats(s, &st);
	strbuf_appendf(sb, "# HELP ms_ch_windows_total Windows given to the standalone ClickHouse writer, by outcome.\n"
		       "# TYPE ms_ch_windows_total counter\n"
		       "ms_ch_windows_total{result=\"durable\"} %" PRIu64 "\n"
		       "ms_ch_windows_total{result=\"dropped\"} %" PRIu64 "\n",
		       st.windows_durable, st.windows_dropped);
	return chwriter_metrics(s->w, "ms_ch", sb);
}
