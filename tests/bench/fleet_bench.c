/* fleet_bench: windows per second a running coordinator accepts from many simulated agents,
 * and bytes on the wire per rollup row (SPEC §9, issue "Fleet wire").
 *
 *   fleet_bench URL [--agents=100] [--seconds=10] [--rows=2000] [--flows=64] [--funcs=32]
 *               [--contexts=4] [--rate=0] [--token=T] [--id-prefix=bench]
 *
 * Each simulated agent is what the real uplink is on the wire: its own nng REQ socket (own
 * connection) with `contexts` requests in flight, a Hello, then Windows with increasing seqs
 * and a low water, built with the same codec (wire.h) as the agent. Window content is shaped
 * like the synthetic source's: `rows` rollup rows over `flows` flows x `funcs` functions, one
 * event; it is encoded once per agent and only the seq is rewritten in place per window (the
 * seq is a fixed-width 9-byte varint), so the client's CPU goes to the transport, not to
 * encoding. --rate=N paces every agent at N windows/s (0 = as fast as acks come back).
 * Prints two lines of key=value figures; windows_per_s counts ACK_OK replies only; the second
 * line has the send -> ack latency percentiles and each agent's lag (age of its newest ack at
 * the end: an agent the coordinator starves shows a large max_ack_age_ms). */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bus.h"
#include "wire.h"

#define SEQ_BASE (1ull << 62) /* 9-byte varint for every seq the bench can reach */

struct sim {
	struct bus_req *bus;
	char id[64];
	uint8_t *win;            /* encoded window, seq patched in place */
	size_t win_len, seq_off; /* seq_off: first byte of the seq varint */
	uint64_t next_seq, acked, errors, other;
	uint64_t inflight[64];   /* seqs in flight (0 = free slot) */
	double sent_at[64];      /* when each in-flight seq was sent */
	double last_ack;         /* when the last ACK_OK came back (0: none yet) */
	bool hello_ok, hello_sent;
	double next_send;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static const char *token = "";

/* Ack latencies (send -> ACK) of the measured run: a bounded sample, the first LAT_MAX acks;
 * at 1,000 agents x 1 window/s that is over 4 minutes of run. */
#define LAT_MAX (1u << 18)
static float lat_ms[LAT_MAX];
static uint32_t nlat;
static bool measuring;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_reply(void *arg, uint64_t tag, int err, const void *reply, size_t len)
{
	struct sim *s = arg;
	struct wire_ack a;
	pthread_mutex_lock(&mu);
	if (tag == 0) {
		s->hello_sent = false;
		s->hello_ok = !err && wire_decode_ack(reply, len, &a) == 0 && a.status == WIRE_ACK_OK;
	} else {
		double sent = 0;
		for (int i = 0; i < 64; i++)
			if (s->inflight[i] == tag) {
				s->inflight[i] = 0;
				sent = s->sent_at[i];
			}
		if (err)
			s->errors++;
		else if (wire_decode_ack(reply, len, &a) == 0 && (a.status == WIRE_ACK_OK || a.status == WIRE_ACK_DUPLICATE)) {
			s->acked++;
			s->last_ack = now_s();
			if (measuring && sent > 0 && nlat < LAT_MAX)
				lat_ms[nlat++] = (float)((s->last_ack - sent) * 1e3);
		} else
			s->other++;
	}
	pthread_cond_signal(&cv);
	pthread_mutex_unlock(&mu);
}

static int cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;
	return (x > y) - (x < y);
}

static void patch_seq(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 9; i++) {
		p[i] = (uint8_t)(v & 0x7f) | (i < 8 ? 0x80 : 0);
		v >>= 7;
	}
}

static int build_window(struct sim *s, uint32_t rows, uint32_t flows, uint32_t funcs)
{
	struct wire_window *w;
	int r = wire_window_new(rows, flows, funcs, 2, &w);
	if (r < 0)
		return r;
	snprintf(w->agent_id, sizeof(w->agent_id), "%s", s->id);
	w->seq = SEQ_BASE;
	w->start_ns = (uint64_t)time(NULL) * 1000000000ull;
	w->end_ns = w->start_ns + 1000000000ull;
	w->nevents = 1;
	snprintf(w->events[0].name, sizeof(w->events[0].name), "cpu-clock");
	w->events[0].source = 1;
	w->ncpu = 2;
	w->nflows = flows;
	for (uint32_t i = 0; i < flows; i++) {
		struct ms_flow_tuple *t = &w->flows[i].tuple;
		t->saddr[10] = t->saddr[11] = t->daddr[10] = t->daddr[11] = 0xff;
		t->saddr[12] = 10, t->saddr[14] = (uint8_t)(i >> 8), t->saddr[15] = (uint8_t)i;
		t->daddr[12] = 10, t->daddr[13] = 1, t->daddr[15] = 1;
		t->sport = (uint16_t)(30000 + i);
		t->dport = 443;
		t->family = MS_FAMILY_V4;
		t->proto = 6;
		t->dir = 1 + (i & 1);
		w->flows[i].flow_id = ms_flow_hash(t);
		w->flows[i].has_tuple = true;
	}
	w->nfuncs = funcs;
	for (uint32_t i = 0; i < funcs; i++) {
		w->funcs[i].func_id = 0x1000 + i;
		snprintf(w->funcs[i].name, sizeof(w->funcs[i].name), "synth_func_%02u", i);
		snprintf(w->funcs[i].module, sizeof(w->funcs[i].module), "[synthetic]");
	}
	w->nrows = rows;
	for (uint32_t i = 0; i < rows; i++) {
		struct wire_row *x = &w->rows[i];
		x->flow_id = w->flows[i % flows].flow_id;
		x->func_id = w->funcs[(i / flows) % funcs].func_id;
		x->stack_id = WIRE_NO_STACK;
		x->pid = 4242;
		x->dir = 1;
		x->user_mode = 1;
		x->numa_node = -1;
		x->samples = 1 + (i * 7) % 5;
		x->norm_cost = (double)x->samples * 1001001.0;
	}
	r = wire_encode_window(w, &s->win, &s->win_len);
	wire_window_free(w);
	if (r < 0)
		return r;
	/* Window: field 1 (agent id, length-delimited) comes first, then field 2 (seq) */
	size_t off = 2 + strlen(s->id);
	if (s->win[0] != 0x0a || s->win[off] != 0x10)
		return -EPROTO;
	s->seq_off = off + 1;
	return 0;
}

int main(int argc, char **argv)
{
	const char *url = NULL, *prefix = "bench";
	uint32_t agents = 100, seconds = 10, rows = 2000, flows = 64, funcs = 32, contexts = 4;
	double rate = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strncmp(a, "--agents=", 9)) agents = (uint32_t)atoi(a + 9);
		else if (!strncmp(a, "--seconds=", 10)) seconds = (uint32_t)atoi(a + 10);
		else if (!strncmp(a, "--rows=", 7)) rows = (uint32_t)atoi(a + 7);
		else if (!strncmp(a, "--flows=", 8)) flows = (uint32_t)atoi(a + 8);
		else if (!strncmp(a, "--funcs=", 8)) funcs = (uint32_t)atoi(a + 8);
		else if (!strncmp(a, "--contexts=", 11)) contexts = (uint32_t)atoi(a + 11);
		else if (!strncmp(a, "--rate=", 7)) rate = atof(a + 7);
		else if (!strncmp(a, "--token=", 8)) token = a + 8;
		else if (!strncmp(a, "--id-prefix=", 12)) prefix = a + 12;
		else if (a[0] != '-') url = a;
		else { fprintf(stderr, "unknown option %s\n", a); return 2; }
	}
	if (!url || !agents || !rows || !flows || !funcs || contexts < 1 || contexts > 63) {
		fprintf(stderr, "usage: fleet_bench URL [--agents=N] [--seconds=S] [--rows=R] [--flows=F] [--funcs=F]"
				" [--contexts=C<64] [--rate=W/s] [--token=T]\n");
		return 2;
	}
	struct sim *sims = calloc(agents, sizeof(*sims));
	uint64_t run = (uint64_t)time(NULL);
	for (uint32_t i = 0; i < agents; i++) {
		struct sim *s = &sims[i];
		snprintf(s->id, sizeof(s->id), "%s-%" PRIu64 "-%u", prefix, run, i);
		s->next_seq = SEQ_BASE + 1;
		int r = build_window(s, rows, flows, funcs);
		struct bus_req_opts o = { .url = url, .contexts = contexts + 1, .timeout_ms = 10000 };
		if (r == 0)
			r = bus_req_new(&o, on_reply, s, &s->bus);
		if (r < 0) {
			fprintf(stderr, "agent %u: %s\n", i, strerror(-r));
			return 1;
		}
	}
	/* Hellos, then the measured run */
	double t0 = now_s(), t_end = t0 + 10;
	uint32_t ready = 0;
	while (ready < agents && now_s() < t_end) {
		ready = 0;
		for (uint32_t i = 0; i < agents; i++) {
			struct sim *s = &sims[i];
			pthread_mutex_lock(&mu);
			bool ok = s->hello_ok, sent = s->hello_sent;
			if (!ok && !sent)
				s->hello_sent = true;
			pthread_mutex_unlock(&mu);
			if (ok) {
				ready++;
				continue;
			}
			if (!sent) {
				struct wire_hello h;
				memset(&h, 0, sizeof(h));
				snprintf(h.agent_id, sizeof(h.agent_id), "%s", s->id);
				h.next_seq = SEQ_BASE + 1;
				uint8_t *req;
				size_t len;
				if (wire_request_hello(token, SEQ_BASE + 1, &h, &req, &len) == 0) {
					bus_req_send(s->bus, 0, req, len);
					free(req);
				}
			}
		}
		usleep(10000);
	}
	if (ready < agents) {
		fprintf(stderr, "only %u of %u agents registered\n", ready, agents);
		return 1;
	}
	uint64_t sent = 0, bytes = 0;
	double start = now_s(), stop = start + seconds, period = rate > 0 ? 1.0 / rate : 0;
	for (uint32_t i = 0; i < agents; i++)
		sims[i].next_send = start + period * i / agents;
	pthread_mutex_lock(&mu);
	measuring = true;
	pthread_mutex_unlock(&mu);
	while (now_s() < stop) {
		bool any = false;
		double now = now_s();
		for (uint32_t i = 0; i < agents; i++) {
			struct sim *s = &sims[i];
			if (period && now < s->next_send)
				continue;
			pthread_mutex_lock(&mu);
			int slot = -1;
			uint64_t low = s->next_seq;
			for (uint32_t k = 0; k < contexts; k++) {
				if (!s->inflight[k])
					slot = slot < 0 ? (int)k : slot;
				else if (s->inflight[k] < low)
					low = s->inflight[k];
			}
			uint64_t seq = s->next_seq;
			if (slot >= 0) {
				s->inflight[slot] = seq;
				s->sent_at[slot] = now_s();
			}
			pthread_mutex_unlock(&mu);
			if (slot < 0)
				continue;
			patch_seq(s->win + s->seq_off, seq);
			uint8_t *req;
			size_t len;
			if (wire_request_window(token, low, s->win, s->win_len, &req, &len) < 0 ||
			    bus_req_send(s->bus, seq, req, len) < 0) {
				pthread_mutex_lock(&mu);
				s->inflight[slot] = 0;
				pthread_mutex_unlock(&mu);
			} else {
				s->next_seq++;
				sent++;
				bytes += len;
				any = true;
				if (period)
					s->next_send += period;
			}
			free(req);
		}
		if (!any) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 1000000;
			if (ts.tv_nsec >= 1000000000L)
				ts.tv_sec++, ts.tv_nsec -= 1000000000L;
			pthread_mutex_lock(&mu);
			pthread_cond_timedwait(&cv, &mu, &ts);
			pthread_mutex_unlock(&mu);
		}
	}
	double elapsed = now_s() - start;
	uint64_t acked = 0, errors = 0, other = 0, min_acked = UINT64_MAX;
	double end = now_s(), max_age = 0;
	pthread_mutex_lock(&mu);
	measuring = false;
	for (uint32_t i = 0; i < agents; i++) {
		acked += sims[i].acked;
		errors += sims[i].errors;
		other += sims[i].other;
		min_acked = sims[i].acked < min_acked ? sims[i].acked : min_acked;
		/* lag of an agent: how long ago its newest window was acked (never: the whole run) */
		double age = sims[i].last_ack > 0 ? end - sims[i].last_ack : end - start;
		max_age = age > max_age ? age : max_age;
	}
	qsort(lat_ms, nlat, sizeof(lat_ms[0]), cmp_float);
	double p50 = nlat ? lat_ms[nlat / 2] : 0, p99 = nlat ? lat_ms[(size_t)(nlat * 0.99)] : 0,
	       pmax = nlat ? lat_ms[nlat - 1] : 0;
	pthread_mutex_unlock(&mu);
	printf("agents=%u contexts=%u rows_per_window=%u window_bytes=%zu request_bytes=%" PRIu64
	       " bytes_per_row=%.2f seconds=%.1f sent=%" PRIu64 " acked=%" PRIu64 " not_acked=%" PRIu64
	       " errors=%" PRIu64 " windows_per_s=%.0f rows_per_s=%.0f MB_per_s=%.1f\n",
	       agents, contexts, rows, sims[0].win_len, sent ? bytes / sent : 0, (double)sims[0].win_len / rows, elapsed,
	       sent, acked, other, errors, acked / elapsed, acked * (double)rows / elapsed, bytes / elapsed / 1e6);
	printf("ack_latency_ms_p50=%.1f ack_latency_ms_p99=%.1f ack_latency_ms_max=%.1f max_ack_age_ms=%.0f"
	       " min_acked_per_agent=%" PRIu64 "\n", p50, p99, pmax, max_age * 1e3, min_acked);
	for (uint32_t i = 0; i < agents; i++) {
		bus_req_free(sims[i].bus);
		free(sims[i].win);
	}
	free(sims);
	return errors || other ? 1 : 0;
}
