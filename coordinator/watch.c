/* watch: see watch.h. Entries are a flat array searched linearly: a push to N agents of a
 * fleet of M costs N*M string compares (10^6 for 1,000 x 1,000, about a millisecond), which
 * keeps the code simple at the sizes one coordinator serves. */
#include "watch.h"

#include <errno.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fleet.pb-c.h"

/* A command kept for an agent that is not connected: its packed bytes as pushed. */
struct pending {
	uint8_t *buf;                /* NULL: slot empty */
	size_t len;
	uint64_t id;
	uint64_t queued_ns, expires_ns; /* CLOCK_REALTIME */
	bool has_ttl;                /* ttl_ms is rewritten to what is left at delivery */
};

struct entry {
	struct watch_agent a;
	bool await_sentinel;         /* a pin of ours ended: its diagnostic is ours until sentinel */
	struct rpc_stream *stream;   /* ours (one reference) while connected */
	struct pending pend[WATCH_PENDING_KINDS];
};

struct watch {
	pthread_mutex_t mu;
	struct entry **e;
	uint32_t n, cap;
	watch_event_fn on_event;
	void *arg;
	uint64_t pending_max_ns;     /* 0: off */
	struct watch_stats st;
};

static uint64_t real_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static struct entry *find(struct watch *w, const char *id)
{
	for (uint32_t i = 0; i < w->n; i++)
		if (strcmp(w->e[i]->a.agent_id, id) == 0)
			return w->e[i];
	return NULL;
}

static void event(struct watch *w, const char *kind, const char *id, const char *detail, uint64_t cmd)
{
	if (w->on_event)
		w->on_event(w->arg, kind, id, detail, cmd);
}

static int kind_of(const Ms__V1__Command *cmd)
{
	switch (cmd->body_case) {
	case MS__V1__COMMAND__BODY_MODE:
		return 0;
	case MS__V1__COMMAND__BODY_BUDGETS:
		return 1;
	case MS__V1__COMMAND__BODY_TARGETS:
		return 2;
	case MS__V1__COMMAND__BODY_PMU:
		return 3;
	default:
		return -1;
	}
}

/* Under w->mu. */
static void record_pin(struct entry *e, int mode, uint64_t ttl_ms)
{
	if (e->a.pin)
		e->await_sentinel = true;
	e->a.pin = mode == MS__V1__MODE_REQUEST__MODE_REQUEST_AUTO ? 0 : mode;
	e->a.pin_expires_ns = ttl_ms && e->a.pin ? real_ns() + ttl_ms * 1000000u : 0;
}

/* Under w->mu. */
static void pending_drop(struct watch *w, struct entry *e, int k)
{
	struct pending *p = &e->pend[k];
	if (!p->buf)
		return;
	w->st.pending--;
	w->st.pending_bytes -= p->len;
	e->a.npending--;
	free(p->buf);
	memset(p, 0, sizeof(*p));
}

/* Under w->mu: keeps buf (taken on success) as e's pending command of its kind. */
static int pending_put(struct watch *w, struct entry *e, const Ms__V1__Command *cmd, uint8_t **buf, size_t len)
{
	int k = kind_of(cmd);
	if (k < 0)
		return -EINVAL;
	uint64_t old = e->pend[k].buf ? e->pend[k].len : 0;
	if (w->st.pending_bytes - old + len > WATCH_PENDING_MAX_BYTES) {
		w->st.refused++;
		return -ENOSPC;
	}
	pending_drop(w, e, k); /* the newer command of the kind wins */
	uint64_t now = real_ns();
	e->pend[k] = (struct pending){ .buf = *buf, .len = len, .id = cmd->id, .queued_ns = now,
				       .expires_ns = now + (cmd->ttl_ms ? cmd->ttl_ms * 1000000u : w->pending_max_ns),
				       .has_ttl = cmd->ttl_ms != 0 };
	*buf = NULL;
	w->st.pending++;
	w->st.pending_bytes += len;
	w->st.pended++;
	e->a.npending++;
	return WATCH_PENDED;
}

/* A pending command as it goes out now: its TTL is what is left. Returns a malloc'd message
 * and fills mode (-1 when not a mode command) and ttl for the pin. */
static uint8_t *pending_out(struct pending *p, uint64_t now, size_t *ret_len, int *mode, uint64_t *ttl)
{
	Ms__V1__Command *c = ms__v1__command__unpack(NULL, p->len, p->buf);
	if (!c)
		return NULL;
	if (p->has_ttl)
		c->ttl_ms = (p->expires_ns - now) / 1000000u ? (p->expires_ns - now) / 1000000u : 1;
	*mode = c->body_case == MS__V1__COMMAND__BODY_MODE ? (int)c->mode : -1;
	*ttl = c->ttl_ms;
	size_t n = ms__v1__command__get_packed_size(c);
	uint8_t *out = malloc(n ? n : 1);
	if (out)
		ms__v1__command__pack(c, out);
	ms__v1__command__free_unpacked(c, NULL);
	*ret_len = n;
	return out;
}

/* Sends e's pending commands on its new stream s (oldest first); expired ones are dropped.
 * Events are raised after the lock is released. */
static void pending_deliver(struct watch *w, const char *id, struct rpc_stream *s)
{
	struct pending out[WATCH_PENDING_KINDS];
	uint32_t n = 0;
	pthread_mutex_lock(&w->mu);
	struct entry *e = find(w, id);
	for (int k = 0; e && k < WATCH_PENDING_KINDS; k++) {
		if (!e->pend[k].buf)
			continue;
		out[n] = e->pend[k];
		e->pend[k].buf = NULL;       /* handed to out[] */
		w->st.pending--;
		w->st.pending_bytes -= out[n].len;
		e->a.npending--;
		memset(&e->pend[k], 0, sizeof(e->pend[k]));
		n++;
	}
	pthread_mutex_unlock(&w->mu);
	for (uint32_t i = 1; i < n; i++) /* oldest first: at most 4, insertion sort */
		for (uint32_t j = i; j > 0 && out[j].queued_ns < out[j - 1].queued_ns; j--) {
			struct pending t = out[j];
			out[j] = out[j - 1];
			out[j - 1] = t;
		}
	uint64_t now = real_ns();
	for (uint32_t i = 0; i < n; i++) {
		char detail[96];
		if (out[i].expires_ns <= now) {
			snprintf(detail, sizeof(detail), "kept %llu ms; its time ran out before the agent came back",
				 (unsigned long long)((now - out[i].queued_ns) / 1000000u));
			pthread_mutex_lock(&w->mu);
			w->st.expired++;
			pthread_mutex_unlock(&w->mu);
			event(w, "command_expired", id, detail, out[i].id);
			free(out[i].buf);
			continue;
		}
		size_t len = 0;
		int mode = -1;
		uint64_t ttl = 0;
		uint8_t *msg = pending_out(&out[i], now, &len, &mode, &ttl);
		pthread_mutex_lock(&w->mu);
		struct entry *e2 = find(w, id);
		if (msg && e2 && mode >= 0) /* before the send, as in watch_push */
			record_pin(e2, mode, ttl);
		pthread_mutex_unlock(&w->mu);
		int r = msg ? rpc_stream_send(s, msg, len) : -ENOMEM;
		free(msg);
		free(out[i].buf);
		pthread_mutex_lock(&w->mu);
		if (r == 0)
			w->st.delivered++;
		pthread_mutex_unlock(&w->mu);
		snprintf(detail, sizeof(detail), "%s after %llu ms pending%s", r == 0 ? "delivered" : "lost",
			 (unsigned long long)((now - out[i].queued_ns) / 1000000u), r == 0 ? "" : " (stream full or gone)");
		event(w, r == 0 ? "command_delivered" : "command_failed", id, detail, out[i].id);
	}
}

static void on_watch(void *arg, struct rpc_stream *s, const uint8_t *req, size_t len, struct rpc_reply *rep)
{
	struct watch *w = arg;
	Ms__V1__WatchRequest *wr = ms__v1__watch_request__unpack(NULL, len, req);
	if (!wr) {
		rep->code = RPC_INVALID_ARGUMENT;
		snprintf(rep->detail, sizeof(rep->detail), "WatchRequest: not a valid protobuf message");
		return;
	}
	const char *bad = NULL;
	if (!wire_valid_agent_id(wr->agent_id))
		bad = "agent_id: 1..127 printable bytes without space, quote or backslash";
	else if (wr->n_labels > WIRE_MAX_LABELS)
		bad = "labels: at most 32";
	else if (strlen(wr->host) >= sizeof(((struct watch_agent *)0)->host) ||
		 strlen(wr->version) >= sizeof(((struct watch_agent *)0)->version))
		bad = "host or version too long";
	for (size_t i = 0; !bad && i < wr->n_labels; i++)
		if (!wr->labels[i]->key[0] || strlen(wr->labels[i]->key) >= 64 || strlen(wr->labels[i]->value) >= 128)
			bad = "labels: key 1..63 bytes, value up to 127 bytes";
	if (bad) {
		rep->code = RPC_INVALID_ARGUMENT;
		snprintf(rep->detail, sizeof(rep->detail), "%s", bad);
		ms__v1__watch_request__free_unpacked(wr, NULL);
		return;
	}
	struct rpc_stream *old = NULL;
	pthread_mutex_lock(&w->mu);
	struct entry *e = find(w, wr->agent_id);
	if (!e && w->n < w->cap && (e = calloc(1, sizeof(*e))) != NULL) {
		snprintf(e->a.agent_id, sizeof(e->a.agent_id), "%s", wr->agent_id);
		w->e[w->n++] = e;
	}
	if (!e) {
		pthread_mutex_unlock(&w->mu);
		rep->code = RPC_RESOURCE_EXHAUSTED;
		snprintf(rep->detail, sizeof(rep->detail), "too many agents");
		ms__v1__watch_request__free_unpacked(wr, NULL);
		return;
	}
	old = e->stream;
	rpc_stream_ref(s);
	e->stream = s;
	e->a.connected = true;
	e->a.connects++;
	e->a.instance = wr->instance;
	e->a.last_change_ns = real_ns();
	snprintf(e->a.host, sizeof(e->a.host), "%s", wr->host);
	snprintf(e->a.version, sizeof(e->a.version), "%s", wr->version);
	rpc_stream_peer(s, e->a.peer, sizeof(e->a.peer));
	e->a.nlabels = (uint32_t)wr->n_labels;
	for (size_t i = 0; i < wr->n_labels; i++) {
		snprintf(e->a.labels[i].key, sizeof(e->a.labels[i].key), "%s", wr->labels[i]->key);
		snprintf(e->a.labels[i].value, sizeof(e->a.labels[i].value), "%s", wr->labels[i]->value);
	}
	pthread_mutex_unlock(&w->mu);
	if (old) {
		rpc_stream_finish(old, RPC_CANCELLED, "replaced by a newer Watch of the same agent");
		rpc_stream_unref(old);
	}
	event(w, "agent_connected", wr->agent_id, e->a.peer, 0);
	pending_deliver(w, wr->agent_id, s);
	ms__v1__watch_request__free_unpacked(wr, NULL);
}

static void on_close(void *arg, struct rpc_stream *s)
{
	struct watch *w = arg;
	char id[WIRE_ID_MAX] = "";
	pthread_mutex_lock(&w->mu);
	for (uint32_t i = 0; i < w->n; i++) {
		if (w->e[i]->stream == s) {
			w->e[i]->stream = NULL;
			w->e[i]->a.connected = false;
			w->e[i]->a.last_change_ns = real_ns();
			snprintf(id, sizeof(id), "%s", w->e[i]->a.agent_id);
			rpc_stream_unref(s);
			break;
		}
	}
	pthread_mutex_unlock(&w->mu);
	if (id[0])
		event(w, "agent_disconnected", id, "", 0);
}

static void on_report(void *arg, const uint8_t *req, size_t len, struct rpc_reply *rep)
{
	struct watch *w = arg;
	Ms__V1__CommandResult *r = ms__v1__command_result__unpack(NULL, len, req);
	if (!r) {
		rep->code = RPC_INVALID_ARGUMENT;
		snprintf(rep->detail, sizeof(rep->detail), "CommandResult: not a valid protobuf message");
		return;
	}
	if (!wire_valid_agent_id(r->agent_id) || r->command_id == 0) {
		rep->code = RPC_INVALID_ARGUMENT;
		snprintf(rep->detail, sizeof(rep->detail), "CommandResult: agent_id and command_id are required");
		ms__v1__command_result__free_unpacked(r, NULL);
		return;
	}
	pthread_mutex_lock(&w->mu);
	struct entry *e = find(w, r->agent_id);
	if (e) {
		e->a.last_cmd_id = r->command_id;
		e->a.last_ok = r->ok;
		snprintf(e->a.last_error, sizeof(e->a.last_error), "%s", r->error);
		e->a.results++;
	}
	pthread_mutex_unlock(&w->mu);
	if (!e) {
		rep->code = RPC_NOT_FOUND;
		snprintf(rep->detail, sizeof(rep->detail), "agent %s has no Watch stream", r->agent_id);
	} else if (!r->ok) {
		event(w, "command_failed", r->agent_id, r->error, r->command_id);
	}
	ms__v1__command_result__free_unpacked(r, NULL);
}

int watch_new(uint32_t max_agents, watch_event_fn on_event, void *arg, struct watch **ret)
{
	if (!max_agents)
		return -EINVAL;
	struct watch *w = calloc(1, sizeof(*w));
	if (!w || !(w->e = calloc(max_agents, sizeof(*w->e)))) {
		free(w);
		return -ENOMEM;
	}
	pthread_mutex_init(&w->mu, NULL);
	w->cap = max_agents;
	w->on_event = on_event;
	w->arg = arg;
	*ret = w;
	return 0;
}

struct watch *watch_free(struct watch *w)
{
	if (!w)
		return NULL;
	for (uint32_t i = 0; i < w->n; i++) {
		rpc_stream_unref(w->e[i]->stream);
		for (int k = 0; k < WATCH_PENDING_KINDS; k++)
			free(w->e[i]->pend[k].buf);
		free(w->e[i]);
	}
	free(w->e);
	pthread_mutex_destroy(&w->mu);
	free(w);
	return NULL;
}

void watch_methods(struct watch *w, struct rpc_method out[2])
{
	out[0] = (struct rpc_method){ .name = WATCH_METHOD_WATCH, .stream = on_watch, .close = on_close, .arg = w };
	out[1] = (struct rpc_method){ .name = WATCH_METHOD_REPORT, .unary = on_report, .arg = w };
}

void watch_set_pending(struct watch *w, uint64_t max_ms)
{
	pthread_mutex_lock(&w->mu);
	w->pending_max_ns = max_ms * 1000000u;
	pthread_mutex_unlock(&w->mu);
}

int watch_push(struct watch *w, const char *agent_id, const struct Ms__V1__Command *cmd)
{
	size_t n = ms__v1__command__get_packed_size(cmd);
	uint8_t *buf = malloc(n ? n : 1);
	if (!buf)
		return -ENOMEM;
	ms__v1__command__pack(cmd, buf);
	bool mode = cmd->body_case == MS__V1__COMMAND__BODY_MODE;
	pthread_mutex_lock(&w->mu);
	struct entry *e = find(w, agent_id);
	struct rpc_stream *s = e ? e->stream : NULL;
	int old_pin = e ? e->a.pin : 0;
	uint64_t old_exp = e ? e->a.pin_expires_ns : 0;
	if (s) {
		rpc_stream_ref(s);
		if (mode) /* before the send: the agent may act on it before we get the lock back */
			record_pin(e, (int)cmd->mode, cmd->ttl_ms);
	}
	pthread_mutex_unlock(&w->mu);
	int r = s ? rpc_stream_send(s, buf, n) : -ENOENT;
	rpc_stream_unref(s);
	pthread_mutex_lock(&w->mu);
	e = find(w, agent_id); /* entries are never removed: still valid */
	if (r == 0 && e && kind_of(cmd) >= 0) {
		pending_drop(w, e, kind_of(cmd)); /* superseded by what was just sent */
	} else if (r < 0 && e) {
		if (s && mode) {
			e->a.pin = old_pin;
			e->a.pin_expires_ns = old_exp;
		}
		if ((r == -ENOENT || r == -EPIPE) && w->pending_max_ns)
			r = pending_put(w, e, cmd, &buf, n);
	}
	pthread_mutex_unlock(&w->mu);
	if (r == -EPIPE)
		r = -ENOENT;
	free(buf);
	return r;
}

void watch_sweep(struct watch *w)
{
	uint64_t now = real_ns();
	for (uint32_t i = 0;; i++) {
		char id[WIRE_ID_MAX], detail[96];
		uint64_t cmd = 0;
		pthread_mutex_lock(&w->mu);
		if (i >= w->n) {
			pthread_mutex_unlock(&w->mu);
			break;
		}
		struct entry *e = w->e[i];
		for (int k = 0; k < WATCH_PENDING_KINDS && !cmd; k++) {
			struct pending *p = &e->pend[k];
			if (p->buf && p->expires_ns <= now) {
				cmd = p->id;
				snprintf(detail, sizeof(detail), "kept %llu ms; the agent did not come back in time",
					 (unsigned long long)((now - p->queued_ns) / 1000000u));
				pending_drop(w, e, k);
				w->st.expired++;
				snprintf(id, sizeof(id), "%s", e->a.agent_id);
			}
		}
		pthread_mutex_unlock(&w->mu);
		if (cmd) {
			event(w, "command_expired", id, detail, cmd);
			i--; /* look at this agent again: it may hold more */
		}
	}
}

void watch_get_stats(struct watch *w, struct watch_stats *ret)
{
	pthread_mutex_lock(&w->mu);
	*ret = w->st;
	pthread_mutex_unlock(&w->mu);
}

static void copy_out(struct entry *e, struct watch_agent *ret)
{
	*ret = e->a;
	if (ret->pin && ret->pin_expires_ns && ret->pin_expires_ns <= real_ns()) {
		ret->pin = 0; /* the agent's own TTL has ended it */
		ret->pin_expires_ns = 0;
	}
}

int watch_get(struct watch *w, const char *agent_id, struct watch_agent *ret)
{
	pthread_mutex_lock(&w->mu);
	struct entry *e = find(w, agent_id);
	if (e)
		copy_out(e, ret);
	pthread_mutex_unlock(&w->mu);
	return e ? 0 : -ENOENT;
}

bool watch_own_diagnostic(struct watch *w, const char *agent_id, int mode)
{
	pthread_mutex_lock(&w->mu);
	struct entry *e = find(w, agent_id);
	bool own = mode == 1;
	if (e) {
		if (e->a.pin && e->a.pin_expires_ns && e->a.pin_expires_ns <= real_ns()) {
			e->a.pin = 0; /* its TTL ended on the agent */
			e->a.pin_expires_ns = 0;
			e->await_sentinel = true;
		}
		if (mode == 0)
			e->await_sentinel = false;
		own = mode == 1 && !e->a.pin && !e->await_sentinel;
	}
	pthread_mutex_unlock(&w->mu);
	return own;
}

uint32_t watch_count(struct watch *w)
{
	pthread_mutex_lock(&w->mu);
	uint32_t n = w->n;
	pthread_mutex_unlock(&w->mu);
	return n;
}

int watch_get_at(struct watch *w, uint32_t i, struct watch_agent *ret)
{
	pthread_mutex_lock(&w->mu);
	int r = i < w->n ? 0 : -ENOENT;
	if (!r)
		copy_out(w->e[i], ret);
	pthread_mutex_unlock(&w->mu);
	return r;
}
