/* evlog: see evlog.h. A ring of malloc'd copies; List walks it under the mutex and writes
 * the reply by hand (tag 0x0a, length, bytes per entry), which is exactly the encoding of a
 * message whose field 1 is `repeated M`, so one code path serves every kind of entry. */
#include "evlog.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet.pb-c.h"

struct ent {
	uint64_t ts;
	uint8_t *buf;
	size_t len;
};

struct evlog {
	pthread_mutex_t mu;
	struct ent *ring;
	uint32_t cap, head, n;
	uint64_t total, drops;
	evlog_tap_fn tap;
	void *tap_arg;
	struct rpc_stream *watchers[EVLOG_MAX_WATCHERS];
};

int evlog_new(uint32_t capacity, struct evlog **ret)
{
	if (!capacity)
		return -EINVAL;
	struct evlog *l = calloc(1, sizeof(*l));
	if (!l || !(l->ring = calloc(capacity, sizeof(*l->ring)))) {
		free(l);
		return -ENOMEM;
	}
	pthread_mutex_init(&l->mu, NULL);
	l->cap = capacity;
	*ret = l;
	return 0;
}

struct evlog *evlog_free(struct evlog *l)
{
	if (!l)
		return NULL;
	for (uint32_t i = 0; i < l->n; i++)
		free(l->ring[(l->head + i) % l->cap].buf);
	for (int i = 0; i < EVLOG_MAX_WATCHERS; i++)
		rpc_stream_unref(l->watchers[i]);
	free(l->ring);
	pthread_mutex_destroy(&l->mu);
	free(l);
	return NULL;
}

int evlog_add(struct evlog *l, uint64_t ts_ns, const uint8_t *msg, size_t len)
{
	uint8_t *c = malloc(len ? len : 1);
	if (!c)
		return -ENOMEM;
	memcpy(c, msg, len);
	pthread_mutex_lock(&l->mu);
	if (l->n == l->cap) {
		free(l->ring[l->head].buf);
		l->head = (l->head + 1) % l->cap;
		l->n--;
	}
	l->ring[(l->head + l->n) % l->cap] = (struct ent){ ts_ns, c, len };
	l->n++;
	l->total++;
	for (int i = 0; i < EVLOG_MAX_WATCHERS; i++)
		if (l->watchers[i] && rpc_stream_send(l->watchers[i], msg, len) == -ENOSPC)
			l->drops++;
	pthread_mutex_unlock(&l->mu);
	if (l->tap)
		l->tap(l->tap_arg, ts_ns, msg, len);
	return 0;
}

void evlog_set_tap(struct evlog *l, evlog_tap_fn tap, void *arg)
{
	l->tap = tap;
	l->tap_arg = arg;
}

uint64_t evlog_total(struct evlog *l)
{
	pthread_mutex_lock(&l->mu);
	uint64_t t = l->total;
	pthread_mutex_unlock(&l->mu);
	return t;
}

uint64_t evlog_watch_drops(struct evlog *l)
{
	pthread_mutex_lock(&l->mu);
	uint64_t t = l->drops;
	pthread_mutex_unlock(&l->mu);
	return t;
}

static size_t put_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;
	do {
		p[n] = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v)
			p[n] |= 0x80;
		n++;
	} while (v);
	return n;
}

static void on_list(void *arg, const uint8_t *req, size_t len, struct rpc_reply *rep)
{
	struct evlog *l = arg;
	Ms__V1__ListEventsRequest *r = ms__v1__list_events_request__unpack(NULL, len, req);
	if (!r) {
		rep->code = RPC_INVALID_ARGUMENT;
		snprintf(rep->detail, sizeof(rep->detail), "not a valid protobuf message");
		return;
	}
	uint32_t limit = r->limit ? r->limit : EVLOG_LIST_DEFAULT;
	uint64_t since = r->since_ns;
	ms__v1__list_events_request__free_unpacked(r, NULL);
	if (limit > EVLOG_LIST_MAX) {
		rep->code = RPC_INVALID_ARGUMENT;
		snprintf(rep->detail, sizeof(rep->detail), "limit: at most %u", EVLOG_LIST_MAX);
		return;
	}
	pthread_mutex_lock(&l->mu);
	/* the newest `limit` entries at or after since, oldest first */
	uint32_t first = l->n, count = 0;
	size_t bytes = 0;
	while (first > 0 && count < limit && l->ring[(l->head + first - 1) % l->cap].ts >= since) {
		first--;
		count++;
		bytes += l->ring[(l->head + first) % l->cap].len + 11;
	}
	uint8_t *out = malloc(bytes ? bytes : 1);
	size_t off = 0;
	for (uint32_t i = 0; out && i < count; i++) {
		struct ent *e = &l->ring[(l->head + first + i) % l->cap];
		out[off++] = 0x0a;
		off += put_varint(out + off, e->len);
		memcpy(out + off, e->buf, e->len);
		off += e->len;
	}
	pthread_mutex_unlock(&l->mu);
	if (!out) {
		rep->code = RPC_RESOURCE_EXHAUSTED;
		snprintf(rep->detail, sizeof(rep->detail), "out of memory");
		return;
	}
	rep->buf = out;
	rep->len = off;
}

static void on_watch(void *arg, struct rpc_stream *s, const uint8_t *req, size_t len, struct rpc_reply *rep)
{
	struct evlog *l = arg;
	Ms__V1__WatchEventsRequest *r = ms__v1__watch_events_request__unpack(NULL, len, req);
	if (!r) {
		rep->code = RPC_INVALID_ARGUMENT;
		snprintf(rep->detail, sizeof(rep->detail), "not a valid protobuf message");
		return;
	}
	uint64_t since = r->since_ns;
	ms__v1__watch_events_request__free_unpacked(r, NULL);
	pthread_mutex_lock(&l->mu);
	int slot = -1;
	for (int i = 0; i < EVLOG_MAX_WATCHERS && slot < 0; i++)
		if (!l->watchers[i])
			slot = i;
	if (slot < 0) {
		pthread_mutex_unlock(&l->mu);
		rep->code = RPC_RESOURCE_EXHAUSTED;
		snprintf(rep->detail, sizeof(rep->detail), "too many watchers (%d)", EVLOG_MAX_WATCHERS);
		return;
	}
	rpc_stream_ref(s);
	l->watchers[slot] = s;
	/* backlog (bounded by the stream queue: a watcher asking for more than it holds gets the
	 * newest entries that fit) */
	uint32_t first = l->n, count = 0;
	while (first > 0 && count < RPC_STREAM_QUEUE / 2 && l->ring[(l->head + first - 1) % l->cap].ts >= since &&
	       since) {
		first--;
		count++;
	}
	for (uint32_t i = 0; i < count; i++) {
		struct ent *e = &l->ring[(l->head + first + i) % l->cap];
		rpc_stream_send(s, e->buf, e->len);
	}
	pthread_mutex_unlock(&l->mu);
}

static void on_close(void *arg, struct rpc_stream *s)
{
	struct evlog *l = arg;
	pthread_mutex_lock(&l->mu);
	for (int i = 0; i < EVLOG_MAX_WATCHERS; i++) {
		if (l->watchers[i] == s) {
			l->watchers[i] = NULL;
			rpc_stream_unref(s);
		}
	}
	pthread_mutex_unlock(&l->mu);
}

void evlog_methods(struct evlog *l, const char *list_name, const char *watch_name, struct rpc_method out[2])
{
	out[0] = (struct rpc_method){ .name = list_name, .unary = on_list, .arg = l };
	out[1] = (struct rpc_method){ .name = watch_name, .stream = on_watch, .close = on_close, .arg = l };
}
