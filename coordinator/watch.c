/* watch: see watch.h. Entries are a flat array searched linearly: a push to N agents of a
 * fleet of M costs N*M string compares (10^6 for 1,000 x 1,000, about a millisecond), which
 * keeps the code simple at the sizes one coordinator serves. */
#include "watch.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fleet.pb-c.h"

struct entry {
	struct watch_agent a;
	struct rpc_stream *stream;   /* ours (one reference) while connected */
};

struct watch {
	pthread_mutex_t mu;
	struct entry **e;
	uint32_t n, cap;
	watch_event_fn on_event;
	void *arg;
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

int watch_push(struct watch *w, const char *agent_id, const struct Ms__V1__Command *cmd)
{
	size_t n = ms__v1__command__get_packed_size(cmd);
	uint8_t *buf = malloc(n ? n : 1);
	if (!buf)
		return -ENOMEM;
	ms__v1__command__pack(cmd, buf);
	pthread_mutex_lock(&w->mu);
	struct entry *e = find(w, agent_id);
	struct rpc_stream *s = e ? e->stream : NULL;
	if (s) {
		rpc_stream_ref(s);
		if (cmd->body_case == MS__V1__COMMAND__BODY_MODE) {
			e->a.pin = cmd->mode == MS__V1__MODE_REQUEST__MODE_REQUEST_AUTO ? 0 : (int)cmd->mode;
			e->a.pin_expires_ns = cmd->ttl_ms && e->a.pin ? real_ns() + cmd->ttl_ms * 1000000u : 0;
		}
	}
	pthread_mutex_unlock(&w->mu);
	int r = s ? rpc_stream_send(s, buf, n) : -ENOENT;
	if (r == -EPIPE)
		r = -ENOENT;
	rpc_stream_unref(s);
	free(buf);
	return r;
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
