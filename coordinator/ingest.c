/* ingest: see ingest.h. Request path: nng callback -> bounded queue -> worker: size check,
 * decode, authenticate, then by kind: Hello (register, check for a seq regression),
 * Heartbeat (touch), Window (known agent? dedup verdict -> sink -> done: dedup journal ->
 * registry -> ack). Acks for windows are sent from the sink's done callback. */
#include "ingest.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bqueue.h"
#include "dedup.h"
#include "registry.h"

struct item {
	struct bus_call *call;
	const uint8_t *data;
	size_t len;
};

/* A window handed to the sink, waiting for done. */
struct pending {
	struct ingest *g;
	struct bus_call *call;
	char agent[WIRE_ID_MAX];
	char peer[64];
	uint64_t seq, samples, end_ns;
	uint32_t rows;
	uint8_t mode;
};

struct ingest {
	struct ingest_opts o;
	char token[WIRE_TOKEN_MAX];
	struct bus_rep *bus;
	struct bqueue *q;
	pthread_t *thr;
	uint32_t nthr;
	pthread_mutex_t mu;      /* stats and the pending count */
	pthread_cond_t cv;
	struct ingest_stats st;
};

const char *ingest_reason_name(enum ingest_reason r)
{
	static const char *const names[INGEST_R__N] = {
		"decode", "invalid", "oversize", "protocol", "unauthenticated", "unknown_agent",
		"seq_regression", "store", "busy", "too_many_agents",
	};
	return (unsigned)r < INGEST_R__N ? names[r] : "unknown";
}

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t real_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void reply(struct ingest *g, struct bus_call *call, enum wire_ack_status st, const char *agent, uint64_t seq,
		  const char *reason, uint64_t resume)
{
	struct wire_ack a = {
		.status = st,
		.seq = seq,
		.resume_seq = resume,
		.coordinator_id = g->o.coordinator_id,
		.heartbeat_ms = g->o.heartbeat_ms,
		.max_message_bytes = g->o.max_message_bytes,
	};
	snprintf(a.agent_id, sizeof(a.agent_id), "%s", agent ? agent : "");
	snprintf(a.reason, sizeof(a.reason), "%s", reason ? reason : "");
	uint8_t buf[WIRE_ACK_MAX];
	size_t n;
	if (wire_encode_ack(&a, buf, sizeof(buf), &n) == 0)
		bus_call_reply(call, buf, n);
	else
		bus_call_drop(call);
}

static void reject(struct ingest *g, struct bus_call *call, enum ingest_reason why, enum wire_ack_status st,
		   const char *agent, uint64_t seq, const char *peer, const char *detail)
{
	pthread_mutex_lock(&g->mu);
	g->st.rejected[why]++;
	pthread_mutex_unlock(&g->mu);
	if (g->o.on_reject)
		g->o.on_reject(g->o.reject_arg, why, agent ? agent : "", peer ? peer : "", detail);
	reply(g, call, st, agent, seq, detail, 0);
}

/* Constant-time comparison: the time does not depend on where the strings differ. */
static bool token_ok(const char *want, const char *got)
{
	size_t a = strlen(want), b = strlen(got);
	unsigned char diff = a != b;
	for (size_t i = 0; i < a; i++)
		diff |= (unsigned char)want[i] ^ (unsigned char)(i < b ? got[i] : 0);
	return diff == 0;
}

static void store_done(void *arg, int status)
{
	struct pending *p = arg;
	struct ingest *g = p->g;
	int r = status;
	if (r >= 0)
		r = dedup_commit(g->o.dedup, p->agent, p->seq, p->samples, p->rows);
	else
		dedup_abort(g->o.dedup, p->agent, p->seq);
	if (r >= 0) {
		struct wire_window w = { .seq = p->seq, .end_ns = p->end_ns, .mode = p->mode };
		snprintf(w.agent_id, sizeof(w.agent_id), "%s", p->agent);
		registry_window(g->o.reg, &w, false, mono_ms(), real_ns());
		reply(g, p->call, WIRE_ACK_OK, p->agent, p->seq, NULL, 0);
	} else {
		char d[96];
		snprintf(d, sizeof(d), "window not stored: %s", strerror(-r));
		reject(g, p->call, INGEST_R_STORE, WIRE_ACK_RETRY, p->agent, p->seq, p->peer, d);
	}
	pthread_mutex_lock(&g->mu);
	if (r >= 0) {
		g->st.accepted++;
		g->st.samples += p->samples;
		g->st.rows += p->rows;
	}
	g->st.in_store--;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
	free(p);
}

static void on_window(struct ingest *g, struct bus_call *call, struct wire_request *rq, const char *peer)
{
	struct wire_window *w = rq->window;
	if (!registry_known(g->o.reg, w->agent_id)) {
		reject(g, call, INGEST_R_UNKNOWN_AGENT, WIRE_ACK_UNKNOWN_AGENT, w->agent_id, w->seq, peer,
		       "no Hello from this agent since the coordinator started");
		return;
	}
	uint64_t low = rq->low_water < w->seq ? rq->low_water : w->seq;
	dedup_low_water(g->o.dedup, w->agent_id, low);
	int v = dedup_begin(g->o.dedup, w->agent_id, w->seq);
	if (v == DEDUP_DUPLICATE) {
		registry_window(g->o.reg, w, true, mono_ms(), real_ns());
		pthread_mutex_lock(&g->mu);
		g->st.duplicate++;
		pthread_mutex_unlock(&g->mu);
		reply(g, call, WIRE_ACK_DUPLICATE, w->agent_id, w->seq, NULL, 0);
		return;
	}
	if (v != DEDUP_NEW) {
		reject(g, call, v == -ENOSPC ? INGEST_R_TOO_MANY_AGENTS : INGEST_R_BUSY, WIRE_ACK_RETRY, w->agent_id,
		       w->seq, peer, v == DEDUP_BUSY ? "window already in progress" : "dedup table full");
		return;
	}
	struct pending *p = calloc(1, sizeof(*p));
	if (!p) {
		dedup_abort(g->o.dedup, w->agent_id, w->seq);
		reject(g, call, INGEST_R_BUSY, WIRE_ACK_RETRY, w->agent_id, w->seq, peer, "out of memory");
		return;
	}
	*p = (struct pending){ .g = g, .call = call, .seq = w->seq, .samples = w->samples, .end_ns = w->end_ns,
			       .rows = w->nrows, .mode = w->mode };
	snprintf(p->agent, sizeof(p->agent), "%s", w->agent_id);
	snprintf(p->peer, sizeof(p->peer), "%s", peer);
	pthread_mutex_lock(&g->mu);
	g->st.in_store++;
	pthread_mutex_unlock(&g->mu);
	int r = g->o.sink(g->o.sink_arg, w, store_done, p);
	if (r < 0) {
		dedup_abort(g->o.dedup, p->agent, p->seq);
		char d[96];
		snprintf(d, sizeof(d), "store refused the window: %s", strerror(-r));
		reject(g, call, INGEST_R_STORE, WIRE_ACK_RETRY, p->agent, p->seq, peer, d);
		pthread_mutex_lock(&g->mu);
		g->st.in_store--;
		pthread_cond_broadcast(&g->cv);
		pthread_mutex_unlock(&g->mu);
		free(p);
	}
}

static void on_hello(struct ingest *g, struct bus_call *call, struct wire_request *rq, const char *peer)
{
	const struct wire_hello *h = rq->hello;
	int r = registry_hello(g->o.reg, h, mono_ms());
	if (r < 0) {
		reject(g, call, INGEST_R_TOO_MANY_AGENTS, WIRE_ACK_RETRY, h->agent_id, 0, peer, "registry full");
		return;
	}
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	bool unstored = g->o.on_hello &&
			g->o.on_hello(g->o.hello_arg, h, (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec) < 0;
	pthread_mutex_lock(&g->mu);
	g->st.hellos++;
	g->st.hellos_unstored += unstored;
	pthread_mutex_unlock(&g->mu);
	dedup_low_water(g->o.dedup, h->agent_id, rq->low_water);
	uint64_t max = dedup_max_seq(g->o.dedup, h->agent_id);
	if (h->next_seq && h->next_seq <= max) {
		char d[128];
		snprintf(d, sizeof(d), "next_seq %llu is not above %llu, already accepted",
			 (unsigned long long)h->next_seq, (unsigned long long)max);
		pthread_mutex_lock(&g->mu);
		g->st.rejected[INGEST_R_SEQ_REGRESSION]++;
		pthread_mutex_unlock(&g->mu);
		if (g->o.on_reject)
			g->o.on_reject(g->o.reject_arg, INGEST_R_SEQ_REGRESSION, h->agent_id, peer, d);
		reply(g, call, WIRE_ACK_SEQ_REGRESSION, h->agent_id, 0, d, max + 1);
		return;
	}
	reply(g, call, WIRE_ACK_OK, h->agent_id, 0, NULL, 0);
}

static void handle(struct ingest *g, struct item *it)
{
	struct bus_peer peer;
	bus_call_peer(it->call, &peer);
	if (it->len > g->o.max_message_bytes) {
		char d[96];
		snprintf(d, sizeof(d), "message of %zu bytes over the limit of %llu", it->len,
			 (unsigned long long)g->o.max_message_bytes);
		reject(g, it->call, INGEST_R_OVERSIZE, WIRE_ACK_INVALID, NULL, 0, peer.addr, d);
		return;
	}
	struct wire_request rq;
	int r = wire_decode_request(it->data, it->len, &rq);
	if (r < 0) {
		enum ingest_reason why = r == -EBADMSG ? INGEST_R_DECODE : r == -EPROTONOSUPPORT ? INGEST_R_PROTOCOL
											  : INGEST_R_INVALID;
		char d[96];
		snprintf(d, sizeof(d), "%s: %s", ingest_reason_name(why), strerror(-r));
		reject(g, it->call, why, WIRE_ACK_INVALID, NULL, 0, peer.addr, d);
		return;
	}
	const char *agent = rq.kind == WIRE_KIND_HELLO ? rq.hello->agent_id
			    : rq.kind == WIRE_KIND_WINDOW ? rq.window->agent_id : rq.heartbeat.agent_id;
	uint64_t seq = rq.kind == WIRE_KIND_WINDOW ? rq.window->seq : 0;
	if ((g->token[0] && !token_ok(g->token, rq.token)) || (g->o.require_client_cert && !peer.tls_verified)) {
		reject(g, it->call, INGEST_R_UNAUTHENTICATED, WIRE_ACK_UNAUTHENTICATED, agent, seq, peer.addr,
		       g->token[0] && !token_ok(g->token, rq.token) ? "bad token" : "no verified client certificate");
	} else if (rq.kind == WIRE_KIND_HELLO) {
		on_hello(g, it->call, &rq, peer.addr);
	} else if (rq.kind == WIRE_KIND_WINDOW) {
		on_window(g, it->call, &rq, peer.addr);
	} else {
		pthread_mutex_lock(&g->mu);
		g->st.heartbeats++;
		pthread_mutex_unlock(&g->mu);
		if (registry_touch(g->o.reg, agent, mono_ms(), rq.heartbeat.spool_windows, rq.heartbeat.mode) < 0) {
			reply(g, it->call, WIRE_ACK_UNKNOWN_AGENT, agent, 0, "say Hello first", 0);
		} else {
			dedup_low_water(g->o.dedup, agent, rq.low_water);
			reply(g, it->call, WIRE_ACK_OK, agent, 0, NULL, 0);
		}
	}
	wire_request_release(&rq);
}

static void *worker(void *arg)
{
	struct ingest *g = arg;
	void *p;
	while (bqueue_pop(g->q, &p, -1) != -EPIPE) {
		struct item *it = p;
		if (!it)
			continue;
		pthread_mutex_lock(&g->mu);
		g->st.queued--;
		pthread_mutex_unlock(&g->mu);
		handle(g, it);
		free(it);
	}
	return NULL;
}

/* nng thread: queue the request for a worker, or answer "busy" at once. */
static void on_request(void *arg, struct bus_call *call, const void *data, size_t len)
{
	struct ingest *g = arg;
	struct item *it = malloc(sizeof(*it));
	pthread_mutex_lock(&g->mu);
	g->st.bytes += len;
	g->st.queued++;
	pthread_mutex_unlock(&g->mu);
	if (it) {
		*it = (struct item){ call, data, len };
		if (bqueue_push(g->q, it) == 0)
			return;
		free(it);
	}
	pthread_mutex_lock(&g->mu);
	g->st.queued--;
	pthread_mutex_unlock(&g->mu);
	reject(g, call, INGEST_R_BUSY, WIRE_ACK_RETRY, NULL, 0, "", "coordinator busy");
}

int ingest_new(const struct ingest_opts *opts, struct ingest **ret)
{
	if (!opts || !opts->reg || !opts->dedup || !opts->sink)
		return -EINVAL;
	struct ingest *g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->o = *opts;
	g->o.max_message_bytes = g->o.max_message_bytes ? g->o.max_message_bytes : BUS_DEFAULT_MAX_MSG;
	g->o.workers = g->o.workers ? g->o.workers : 2;
	g->o.queue_len = g->o.queue_len ? g->o.queue_len : 4096;
	g->o.heartbeat_ms = g->o.heartbeat_ms ? g->o.heartbeat_ms : 5000;
	g->o.bus.contexts = g->o.bus.contexts ? g->o.bus.contexts : 64;
	/* nng drops (silently, closing the connection) only messages over twice the limit; those
	 * in between get an "oversize" answer the sender can log */
	g->o.bus.max_recv_bytes = 2 * g->o.max_message_bytes;
	pthread_mutex_init(&g->mu, NULL);
	pthread_cond_init(&g->cv, NULL);
	int r = 0;
	if (opts->token && strlen(opts->token) >= sizeof(g->token))
		r = -EINVAL;
	else
		snprintf(g->token, sizeof(g->token), "%s", opts->token ? opts->token : "");
	if (r == 0)
		r = bqueue_new(g->o.queue_len, &g->q);
	if (r == 0 && !(g->thr = calloc(g->o.workers, sizeof(*g->thr))))
		r = -ENOMEM;
	for (uint32_t i = 0; r == 0 && i < g->o.workers; i++) {
		if ((r = -pthread_create(&g->thr[i], NULL, worker, g)) == 0)
			g->nthr++;
	}
	if (r == 0)
		r = bus_rep_new(&g->o.bus, on_request, g, &g->bus);
	if (r < 0) {
		ingest_free(g);
		return r;
	}
	*ret = g;
	return 0;
}

static void drop_item(void *p)
{
	struct item *it = p;
	if (it)
		bus_call_drop(it->call);
	free(it);
}

struct ingest *ingest_free(struct ingest *g)
{
	if (!g)
		return NULL;
	bus_rep_close(g->bus); /* no new requests; queued ones are still answered below */
	if (g->q)
		bqueue_close(g->q);
	for (uint32_t i = 0; i < g->nthr; i++)
		pthread_join(g->thr[i], NULL);
	pthread_mutex_lock(&g->mu);
	while (g->st.in_store > 0)
		pthread_cond_wait(&g->cv, &g->mu);
	pthread_mutex_unlock(&g->mu);
	bqueue_free(g->q, drop_item);
	bus_rep_free(g->bus);
	free(g->thr);
	pthread_cond_destroy(&g->cv);
	pthread_mutex_destroy(&g->mu);
	free(g);
	return NULL;
}

uint16_t ingest_port(struct ingest *g)
{
	return bus_rep_port(g->bus);
}

void ingest_stats(struct ingest *g, struct ingest_stats *ret)
{
	pthread_mutex_lock(&g->mu);
	*ret = g->st;
	pthread_mutex_unlock(&g->mu);
}
