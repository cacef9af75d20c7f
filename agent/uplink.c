/* uplink: see uplink.h.
 *
 * Every window is appended to the spool first (record = u64 LE seq + encoded Window), so the
 * spool is the single truth of what is unacked, including across restarts. A bounded ring in
 * memory mirrors the newest records so they can be sent N at a time without reading the disk.
 * The ring always holds consecutive pending records: once a record does not fit, newer ones go
 * to disk only until the ring has drained (mem_tail_ok). So when the spool's head record is in
 * the ring, every ring record may be in flight at once; when it is not (a backlog on disk),
 * only the head is sent, read back with spool_peek, until the backlog is gone.
 * Acks may arrive out of order; the spool is consumed strictly in order (spool_ack of the head
 * while the head is acked). Any failure re-arms the lowest unacked record, so re-sends keep
 * id order. All of this state is guarded by mu and driven by one thread; nng callbacks only
 * queue their outcome and signal. */
#include "uplink.h"

#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "log.h"
#include "seqstore.h"
#include "spool.h"
#include "window.h"

#define TAG_HELLO UINT64_MAX
#define TAG_HEARTBEAT (UINT64_MAX - 1)
#define ENVELOPE_SLACK 1024u /* token, low water and tags around a spooled window */
#define BACKOFF_MIN_MS 100u
#define LIMBO_MAX 66u /* windows in flight at most: 64 contexts + the disk head, and slack */

struct rec {
	uint64_t id, seq;
	uint8_t *buf; /* the encoded Window */
	size_t len;
	uint32_t attempts;
	bool inflight, acked, from_disk;
};

struct event {
	uint64_t tag;
	int err;
	struct wire_ack ack;
};

struct uplink {
	struct uplink_opts o;
	struct wire_hello hello;
	char token[WIRE_TOKEN_MAX];
	struct bus_req *bus;
	struct spool *sp;
	pthread_t thr;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	/* records */
	struct rec *ring;       /* UPLINK_MEM_RECORDS slots, ring[(r0 + i) % cap] */
	uint32_t r0, rn;
	size_t ring_bytes;
	bool mem_tail_ok;
	struct rec disk;        /* the head read back from disk (valid when disk.buf) */
	bool head_valid;
	uint64_t head_id, head_seq; /* oldest pending record; head_id 0 = none */
	/* protocol state */
	bool hello_ok, hello_inflight, was_connected, spool_full;
	uint64_t next_hb_ms, backoff_until_ms;
	uint32_t backoff_ms;
	uint64_t max_msg;
	struct event *ev;       /* at most one per context + hello + heartbeat */
	uint32_t nev, ev_cap;
	uint64_t last_dropped_oldest; /* spool drops already seen */
	/* Spool-policy drops are counted once refresh_head knows which records went: a record
	 * that was in flight when the spool deleted it may still reach the coordinator (nng
	 * re-sends a request on a new pipe), so its reply decides whether it was lost (limbo);
	 * one already acked was delivered. Without this, emitted == stored + dropped would not
	 * hold after a coordinator outage under drop_oldest (the fault suite checks it). */
	uint64_t drop_pending;        /* spool drops not yet settled into st.dropped */
	uint64_t limbo[LIMBO_MAX];    /* ids of dropped records whose request is still out */
	uint32_t nlimbo;
	uint64_t ev_dropped_oldest;   /* spool drops already reported by an event */
	struct uplink_stats st;
};

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void emit(struct uplink *u, enum uplink_event ev, const char *detail)
{
	if (u->o.on_event)
		u->o.on_event(u->o.event_arg, ev, detail);
}

static struct rec *ring_at(struct uplink *u, uint32_t i)
{
	return &u->ring[(u->r0 + i) % UPLINK_MEM_RECORDS];
}

static void ring_pop(struct uplink *u)
{
	struct rec *r = ring_at(u, 0);
	u->ring_bytes -= r->len;
	free(r->buf);
	memset(r, 0, sizeof(*r));
	u->r0 = (u->r0 + 1) % UPLINK_MEM_RECORDS;
	if (--u->rn == 0)
		u->mem_tail_ok = true; /* nothing in memory: the next record may start a new run */
}

static struct rec *find_rec(struct uplink *u, uint64_t id)
{
	if (u->disk.buf && u->disk.id == id)
		return &u->disk;
	if (!u->rn || id < ring_at(u, 0)->id)
		return NULL;
	/* ring ids are consecutive pending records but spool ids may jump between runs:
	 * search (bounded by UPLINK_MEM_RECORDS, at ack rate) */
	for (uint32_t i = 0; i < u->rn; i++)
		if (ring_at(u, i)->id == id)
			return ring_at(u, i);
	return NULL;
}

static void disk_clear(struct uplink *u)
{
	free(u->disk.buf);
	memset(&u->disk, 0, sizeof(u->disk));
}

/* How a record the spool policy deleted counts: 1 when it is not (yet) a loss. */
static uint64_t dropped_rec(struct uplink *u, const struct rec *r)
{
	if (r->acked)
		return 1; /* delivered before the policy deleted it */
	if (r->inflight && u->nlimbo < LIMBO_MAX) {
		u->limbo[u->nlimbo++] = r->id; /* its reply decides */
		return 1;
	}
	return 0;
}

/* Forgets the records below head (deleted by the spool policy) and moves the pending drop
 * count into st.dropped, less those delivered or still in flight. */
static void settle_drops(struct uplink *u, uint64_t head)
{
	uint64_t undo = 0;
	while (u->rn && ring_at(u, 0)->id < head) {
		undo += dropped_rec(u, ring_at(u, 0));
		ring_pop(u);
	}
	if (u->disk.buf && u->disk.id < head) {
		undo += dropped_rec(u, &u->disk);
		disk_clear(u);
	}
	u->st.dropped += u->drop_pending > undo ? u->drop_pending - undo : 0;
	u->drop_pending = 0;
}

/* The reply to a request whose record the spool policy deleted while it was out. */
static void limbo_reply(struct uplink *u, const struct event *e)
{
	for (uint32_t i = 0; i < u->nlimbo; i++) {
		if (u->limbo[i] != e->tag)
			continue;
		u->limbo[i] = u->limbo[--u->nlimbo];
		if (!e->err && (e->ack.status == WIRE_ACK_OK || e->ack.status == WIRE_ACK_DUPLICATE))
			u->st.acked++;
		else
			u->st.dropped++;
		return;
	}
}

/* Learns the spool's head, drops ring entries the spool policy deleted, and reads the head
 * back from disk when it is not in the ring. Consumes acked heads. */
static void refresh_head(struct uplink *u)
{
	for (;;) {
		if (!u->head_valid) {
			const void *buf;
			size_t len;
			uint64_t id;
			int r = spool_peek(u->sp, &buf, &len, &id);
			u->head_valid = true;
			u->head_id = 0;
			if (r == -ENOENT)
				settle_drops(u, UINT64_MAX);
			if (r < 0) /* -ENOENT: empty; a read error was counted by the spool */
				return;
			settle_drops(u, id);
			uint64_t seq = 0;
			if (len >= 8) {
				memcpy(&seq, buf, 8);
				seq = le64toh(seq);
			}
			u->head_id = id;
			u->head_seq = seq;
			if (u->disk.buf && u->disk.id != id)
				disk_clear(u);
			if ((!u->rn || ring_at(u, 0)->id != id) && !u->disk.buf && len >= 8) {
				u->disk.buf = malloc(len - 8);
				if (u->disk.buf) {
					memcpy(u->disk.buf, (const uint8_t *)buf + 8, len - 8);
					u->disk.len = len - 8;
					u->disk.id = id;
					u->disk.seq = seq;
					u->disk.from_disk = true;
				}
			} else if (len < 8) {
				spool_ack(u->sp, id); /* not ours: never sendable */
				u->st.dropped++;
				u->head_valid = false;
				continue;
			}
		}
		struct rec *h = u->head_id ? find_rec(u, u->head_id) : NULL;
		if (!h || !h->acked)
			return;
		spool_ack(u->sp, u->head_id);
		if (h == &u->disk)
			disk_clear(u);
		else
			ring_pop(u);
		u->head_valid = false;
	}
}

static uint64_t low_water(struct uplink *u)
{
	if (u->head_id)
		return u->head_seq;
	return u->st.last_seq ? u->st.last_seq + 1 : u->st.first_seq;
}

static void backoff(struct uplink *u)
{
	u->backoff_ms = u->backoff_ms ? u->backoff_ms * 2 : BACKOFF_MIN_MS;
	if (u->backoff_ms > u->o.backoff_max_ms)
		u->backoff_ms = u->o.backoff_max_ms;
	u->backoff_until_ms = now_ms() + u->backoff_ms;
}

static void transport_failed(struct uplink *u, int err)
{
	if (u->was_connected) {
		char d[64];
		snprintf(d, sizeof(d), "%s", strerror(-err));
		emit(u, UPLINK_EV_DISCONNECTED, d);
		u->was_connected = false;
	}
	u->hello_ok = false; /* the coordinator may have restarted: announce again */
	backoff(u);
}

static void on_hello_ack(struct uplink *u, const struct event *e)
{
	u->hello_inflight = false;
	if (e->err) {
		transport_failed(u, e->err);
		return;
	}
	char d[128];
	switch (e->ack.status) {
	case WIRE_ACK_SEQ_REGRESSION:
		snprintf(d, sizeof(d), "coordinator has seen seqs up to %llu",
			 (unsigned long long)(e->ack.resume_seq ? e->ack.resume_seq - 1 : 0));
		emit(u, UPLINK_EV_SEQ_REGRESSION, d);
		if (u->o.seqs && e->ack.resume_seq)
			seqstore_advance(u->o.seqs, e->ack.resume_seq);
		/* the agent is registered anyway */
		__attribute__((fallthrough));
	case WIRE_ACK_OK:
	case WIRE_ACK_DUPLICATE:
		u->hello_ok = true;
		u->st.hellos++;
		u->backoff_ms = 0;
		if (e->ack.max_message_bytes && e->ack.max_message_bytes < u->max_msg)
			u->max_msg = e->ack.max_message_bytes;
		if (!u->was_connected) {
			snprintf(d, sizeof(d), "coordinator %016llx", (unsigned long long)e->ack.coordinator_id);
			emit(u, UPLINK_EV_CONNECTED, d);
			u->was_connected = true;
		}
		break;
	case WIRE_ACK_UNAUTHENTICATED:
		emit(u, UPLINK_EV_UNAUTHENTICATED, e->ack.reason);
		u->backoff_ms = u->o.backoff_max_ms;
		u->backoff_until_ms = now_ms() + u->backoff_ms;
		break;
	default:
		emit(u, UPLINK_EV_REJECTED, e->ack.reason);
		backoff(u);
		break;
	}
}

static void on_window_ack(struct uplink *u, const struct event *e)
{
	struct rec *r = find_rec(u, e->tag);
	if (!r) { /* dropped by the spool policy while in flight */
		limbo_reply(u, e);
		return;
	}
	r->inflight = false;
	if (e->err) {
		r->attempts++;
		transport_failed(u, e->err);
		return;
	}
	switch (e->ack.status) {
	case WIRE_ACK_OK:
	case WIRE_ACK_DUPLICATE:
		r->acked = true;
		u->st.acked++;
		u->st.duplicates += e->ack.status == WIRE_ACK_DUPLICATE;
		u->st.replayed += r->attempts > 0 || r->from_disk;
		u->backoff_ms = 0;
		break;
	case WIRE_ACK_INVALID:
		r->acked = true; /* will never be accepted: give it up */
		u->st.dropped++;
		u->st.rejected++;
		emit(u, UPLINK_EV_REJECTED, e->ack.reason);
		break;
	case WIRE_ACK_UNKNOWN_AGENT:
		r->attempts++;
		u->hello_ok = false;
		break;
	case WIRE_ACK_UNAUTHENTICATED:
		r->attempts++;
		u->hello_ok = false;
		emit(u, UPLINK_EV_UNAUTHENTICATED, e->ack.reason);
		u->backoff_ms = u->o.backoff_max_ms;
		u->backoff_until_ms = now_ms() + u->backoff_ms;
		break;
	default: /* RETRY and anything unexpected: later */
		r->attempts++;
		backoff(u);
		break;
	}
}

static void on_reply(void *arg, uint64_t tag, int err, const void *reply, size_t len)
{
	struct uplink *u = arg;
	struct event e = { .tag = tag, .err = err };
	if (!err && wire_decode_ack(reply, len, &e.ack) < 0)
		e.err = -EBADMSG;
	pthread_mutex_lock(&u->mu);
	if (u->nev < u->ev_cap)
		u->ev[u->nev++] = e;
	pthread_cond_signal(&u->cv);
	pthread_mutex_unlock(&u->mu);
}

static int send_req(struct uplink *u, uint64_t tag, uint8_t *req, size_t len)
{
	int r = bus_req_send(u->bus, tag, req, len);
	free(req);
	return r;
}

/* The next record to send, or NULL. */
static struct rec *next_rec(struct uplink *u)
{
	if (u->disk.buf)
		return !u->disk.inflight && !u->disk.acked ? &u->disk : NULL;
	if (!u->head_id || !u->rn || ring_at(u, 0)->id != u->head_id)
		return NULL;
	for (uint32_t i = 0; i < u->rn; i++) {
		struct rec *r = ring_at(u, i);
		if (!r->inflight && !r->acked)
			return r;
	}
	return NULL;
}

static void pump(struct uplink *u)
{
	uint64_t now = now_ms();
	if (now < u->backoff_until_ms)
		return;
	if (!u->hello_ok) {
		if (!u->hello_inflight && bus_req_idle(u->bus) > 0) {
			uint8_t *req;
			size_t len;
			u->hello.spool_windows = u->st.spool_windows;
			u->hello.next_seq = u->st.last_seq ? u->st.last_seq + 1 : u->st.first_seq;
			if (wire_request_hello(u->token, low_water(u), &u->hello, &req, &len) == 0 &&
			    send_req(u, TAG_HELLO, req, len) == 0)
				u->hello_inflight = true;
		}
		return;
	}
	bool sent = false;
	while (bus_req_idle(u->bus) > 0) {
		struct rec *r = next_rec(u);
		if (!r)
			break;
		uint8_t *req;
		size_t len;
		if (wire_request_window(u->token, low_water(u), r->buf, r->len, &req, &len) < 0 ||
		    send_req(u, r->id, req, len) < 0)
			break;
		r->inflight = true;
		u->st.sent++;
		sent = true;
	}
	if (sent) {
		u->next_hb_ms = now + u->o.heartbeat_ms;
	} else if (now >= u->next_hb_ms && bus_req_idle(u->bus) > 0) {
		struct wire_heartbeat hb = { .next_seq = u->st.last_seq + 1, .spool_windows = u->st.spool_windows };
		snprintf(hb.agent_id, sizeof(hb.agent_id), "%s", u->hello.agent_id);
		uint8_t *req;
		size_t len;
		if (wire_request_heartbeat(u->token, low_water(u), &hb, &req, &len) == 0)
			send_req(u, TAG_HEARTBEAT, req, len);
		u->next_hb_ms = now + u->o.heartbeat_ms;
	}
}

static void refresh_stats(struct uplink *u)
{
	struct spool_stats ss;
	spool_stats(u->sp, &ss);
	u->st.spool_windows = ss.records;
	u->st.spool_bytes = ss.bytes;
	u->st.spool_corrupt = ss.corrupt_truncations;
	if (ss.dropped_oldest > u->last_dropped_oldest) {
		u->drop_pending += ss.dropped_oldest - u->last_dropped_oldest;
		u->last_dropped_oldest = ss.dropped_oldest;
		u->head_valid = false;
	}
	u->st.connected = u->hello_ok && bus_req_connected(u->bus);
}

static void *worker(void *arg)
{
	struct uplink *u = arg;
	pthread_mutex_lock(&u->mu);
	while (!u->stop) {
		for (uint32_t i = 0; i < u->nev; i++) {
			if (u->ev[i].tag == TAG_HELLO)
				on_hello_ack(u, &u->ev[i]);
			else if (u->ev[i].tag == TAG_HEARTBEAT) {
				if (!u->ev[i].err && u->ev[i].ack.status == WIRE_ACK_UNKNOWN_AGENT)
					u->hello_ok = false;
			} else
				on_window_ack(u, &u->ev[i]);
		}
		u->nev = 0;
		refresh_stats(u);
		refresh_head(u);
		pump(u);
		refresh_stats(u);
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 50 * 1000000L; /* backoff and heartbeat timers are checked at this pace */
		if (ts.tv_nsec >= 1000000000L)
			ts.tv_sec++, ts.tv_nsec -= 1000000000L;
		if (!u->nev && !u->stop)
			pthread_cond_timedwait(&u->cv, &u->mu, &ts);
	}
	pthread_mutex_unlock(&u->mu);
	return NULL;
}

int uplink_submit(struct uplink *u, uint64_t seq, const uint8_t *win, size_t len)
{
	if (len + 8 + ENVELOPE_SLACK > u->max_msg) {
		pthread_mutex_lock(&u->mu);
		u->st.dropped++;
		u->st.oversize++;
		pthread_mutex_unlock(&u->mu);
		emit(u, UPLINK_EV_OVERSIZE, "window over the message size limit");
		return -EMSGSIZE;
	}
	uint8_t *rec = malloc(len + 8);
	if (!rec)
		return -ENOMEM;
	uint64_t le = htole64(seq);
	memcpy(rec, &le, 8);
	memcpy(rec + 8, win, len);
	if (u->o.seqs)
		seqstore_advance(u->o.seqs, seq);
	pthread_mutex_lock(&u->mu);
	if (!u->st.first_seq)
		u->st.first_seq = seq;
	u->st.last_seq = seq;
	uint64_t id;
	int r = spool_append(u->sp, rec, len + 8, &id);
	enum uplink_event ev = 0;
	if (r < 0) {
		u->st.dropped++;
		if (r == -ENOSPC && !u->spool_full) {
			u->spool_full = true;
			ev = UPLINK_EV_SPOOL_FULL;
		} else if (r != -ENOSPC) {
			ev = UPLINK_EV_SPOOL_ERROR;
		}
		free(rec);
	} else {
		u->spool_full = false;
		if (u->mem_tail_ok && u->rn < UPLINK_MEM_RECORDS && u->ring_bytes + len <= UPLINK_MEM_BYTES) {
			struct rec *m = ring_at(u, u->rn++);
			memset(m, 0, sizeof(*m));
			memmove(rec, rec + 8, len); /* keep only the window bytes */
			m->buf = rec;
			m->len = len;
			m->id = id;
			m->seq = seq;
			u->ring_bytes += len;
		} else {
			u->mem_tail_ok = false;
			free(rec);
		}
		u->head_valid = false;
		/* a drop-oldest append may have deleted older records (counted by refresh_stats);
		 * report the first such append after one that dropped nothing */
		struct spool_stats ss;
		spool_stats(u->sp, &ss);
		if (ss.dropped_oldest > u->ev_dropped_oldest) {
			u->ev_dropped_oldest = ss.dropped_oldest;
			if (!u->spool_full)
				ev = UPLINK_EV_SPOOL_FULL;
			u->spool_full = true;
		}
	}
	pthread_cond_signal(&u->cv);
	pthread_mutex_unlock(&u->mu);
	if (ev)
		emit(u, ev, r < 0 ? strerror(-r) : "oldest windows dropped");
	return r;
}

int uplink_forward(void *arg, struct window *w)
{
	struct uplink *u = arg;
	uint8_t *buf;
	size_t len;
	uint64_t seq = w->seq;
	int r = uplink_encode_window(w, u->hello.agent_id, &buf, &len);
	window_free(w);
	if (r < 0) {
		pthread_mutex_lock(&u->mu);
		u->st.dropped++;
		pthread_mutex_unlock(&u->mu);
		emit(u, UPLINK_EV_REJECTED, "window could not be encoded");
		return 0;
	}
	uplink_submit(u, seq, buf, len);
	free(buf);
	return 0;
}

void uplink_stats(struct uplink *u, struct uplink_stats *ret)
{
	pthread_mutex_lock(&u->mu);
	refresh_stats(u);
	*ret = u->st;
	/* not settled yet, or still in doubt: counted as given up until a reply says otherwise */
	ret->dropped += u->drop_pending + u->nlimbo;
	pthread_mutex_unlock(&u->mu);
}

static int read_token(const char *tok, char *out, size_t cap)
{
	size_t n = tok ? strlen(tok) : 0;
	if (n >= cap)
		return -EINVAL;
	memcpy(out, tok ? tok : "", n + 1);
	return 0;
}

int uplink_new(const struct uplink_opts *opts, struct uplink **ret)
{
	if (!opts || !opts->url || !opts->spool_dir || !opts->hello || !wire_valid_agent_id(opts->hello->agent_id))
		return -EINVAL;
	struct uplink *u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->o = *opts;
	u->hello = *opts->hello;
	u->o.hello = &u->hello;
	u->o.contexts = u->o.contexts ? u->o.contexts : BUS_DEFAULT_CONTEXTS;
	u->o.heartbeat_ms = u->o.heartbeat_ms ? u->o.heartbeat_ms : 5000;
	u->o.backoff_max_ms = u->o.backoff_max_ms ? u->o.backoff_max_ms : 5000;
	u->max_msg = u->o.max_message_bytes ? u->o.max_message_bytes : BUS_DEFAULT_MAX_MSG;
	u->mem_tail_ok = true;
	pthread_mutex_init(&u->mu, NULL);
	pthread_cond_init(&u->cv, NULL);
	int r = read_token(opts->token, u->token, sizeof(u->token));
	u->ring = calloc(UPLINK_MEM_RECORDS, sizeof(*u->ring));
	u->ev_cap = u->o.contexts + 2;
	u->ev = calloc(u->ev_cap, sizeof(*u->ev));
	if (r == 0 && (!u->ring || !u->ev))
		r = -ENOMEM;
	if (r < 0)
		goto fail;
	struct spool_opts so = { .max_bytes = u->o.spool_max_bytes, .policy = (enum spool_full_policy)u->o.spool_policy };
	if ((r = spool_open(u->o.spool_dir, &so, &u->sp)) < 0)
		goto fail;
	struct spool_stats ss;
	spool_stats(u->sp, &ss);
	u->last_dropped_oldest = u->ev_dropped_oldest = ss.dropped_oldest;
	if (ss.corrupt_truncations) {
		char d[128];
		snprintf(d, sizeof(d), "%llu segments cut, %llu bytes; %llu windows kept",
			 (unsigned long long)ss.corrupt_truncations, (unsigned long long)ss.corrupt_bytes,
			 (unsigned long long)ss.records);
		emit(u, UPLINK_EV_SPOOL_REPAIRED, d);
	}
	u->st.first_seq = u->o.seqs ? seqstore_first(u->o.seqs) : 0;
	struct bus_req_opts bo = {
		.url = u->o.url,
		.contexts = u->o.contexts,
		.timeout_ms = u->o.timeout_ms,
		.reconnect_max_ms = u->o.backoff_max_ms,
		.max_send_bytes = u->max_msg,
		.tls = u->o.tls,
	};
	if ((r = bus_req_new(&bo, on_reply, u, &u->bus)) < 0)
		goto fail;
	if ((r = -pthread_create(&u->thr, NULL, worker, u)) < 0)
		goto fail;
	u->started = true;
	*ret = u;
	return 0;
fail:
	uplink_free(u, 0);
	return r;
}

uint64_t uplink_drain(struct uplink *u, uint32_t drain_ms)
{
	uint64_t end = now_ms() + drain_ms;
	pthread_mutex_lock(&u->mu);
	refresh_stats(u); /* the spool itself: a window appended a moment ago counts too */
	while (u->started && !u->stop && u->st.spool_windows > 0 && u->hello_ok && now_ms() < end) {
		pthread_mutex_unlock(&u->mu);
		struct timespec ts = { 0, 10 * 1000000L };
		nanosleep(&ts, NULL);
		pthread_mutex_lock(&u->mu);
		refresh_stats(u);
	}
	uint64_t left = u->st.spool_windows;
	pthread_mutex_unlock(&u->mu);
	return left;
}

struct uplink *uplink_free(struct uplink *u, uint32_t drain_ms)
{
	if (!u)
		return NULL;
	if (u->started) {
		uplink_drain(u, drain_ms);
		pthread_mutex_lock(&u->mu);
		u->stop = true;
		pthread_cond_signal(&u->cv);
		pthread_mutex_unlock(&u->mu);
		pthread_join(u->thr, NULL);
	}
	/* cancels what is in flight; the callbacks queue into ev (bounded, nobody reads it) */
	bus_req_free(u->bus);
	spool_free(u->sp);
	for (uint32_t i = 0; u->ring && i < u->rn; i++)
		free(ring_at(u, i)->buf);
	free(u->ring);
	free(u->disk.buf);
	free(u->ev);
	pthread_cond_destroy(&u->cv);
	pthread_mutex_destroy(&u->mu);
	free(u);
	return NULL;
}
