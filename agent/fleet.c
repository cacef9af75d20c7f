/* fleet: see fleet.h. The thread blocks in rpc_cstream_next with a 500 ms wait so it notices
 * fleet_free within half a second even if the cancel races with the stream's opening; while
 * the coordinator is away it sleeps backoff_min_ms doubling to backoff_max_ms between tries
 * (one connection attempt per try: no storm when a thousand agents lose the coordinator). */
#include "fleet.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fleet.pb-c.h"
#include "rpc.h"

struct fleet {
	struct fleet_opts o;
	char target[256], token[300], agent_id[WIRE_ID_MAX], host[128], version[32];
	struct rpc_client *cli;
	uint8_t *watch_req;
	size_t watch_len;
	pthread_t thr;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	struct rpc_cstream *cur;     /* under mu, for the cancel */
	struct fleet_stats st;
};

static void report(struct fleet *f, uint64_t id, int r, const char *err)
{
	Ms__V1__CommandResult cr = MS__V1__COMMAND_RESULT__INIT;
	cr.agent_id = f->agent_id;
	cr.command_id = id;
	cr.ok = r == 0;
	cr.error = (char *)(r == 0 ? "" : err);
	size_t n = ms__v1__command_result__get_packed_size(&cr);
	uint8_t buf[512];
	if (n > sizeof(buf)) {
		cr.error = "error text too long";
		n = ms__v1__command_result__get_packed_size(&cr);
	}
	ms__v1__command_result__pack(&cr, buf);
	uint8_t *out = NULL;
	size_t on = 0;
	int rc = rpc_call(f->cli, "/ms.v1.AgentControl/Report", buf, n, 5000, &out, &on, NULL);
	free(out);
	if (rc != 0) {
		pthread_mutex_lock(&f->mu);
		f->st.reports_failed++;
		pthread_mutex_unlock(&f->mu);
	}
}

static void handle(struct fleet *f, const uint8_t *buf, size_t len)
{
	Ms__V1__Command *c = ms__v1__command__unpack(NULL, len, buf);
	pthread_mutex_lock(&f->mu);
	f->st.commands++;
	if (!c)
		f->st.bad++;
	pthread_mutex_unlock(&f->mu);
	if (!c)
		return;
	char err[192] = "";
	int r = f->o.apply ? f->o.apply(f->o.apply_arg, c, err, sizeof(err)) : -EOPNOTSUPP;
	if (r < 0 && !err[0])
		snprintf(err, sizeof(err), "%s", strerror(-r));
	pthread_mutex_lock(&f->mu);
	if (r == 0)
		f->st.applied++;
	else
		f->st.failed++;
	pthread_mutex_unlock(&f->mu);
	if (c->id)
		report(f, c->id, r, err);
	ms__v1__command__free_unpacked(c, NULL);
}

/* One Watch stream, until it ends or we stop. True if it was ever open. */
static bool watch_once(struct fleet *f)
{
	struct rpc_cstream *s = NULL;
	if (rpc_cstream_open(f->cli, "/ms.v1.AgentControl/Watch", f->watch_req, f->watch_len, 0, &s) < 0)
		return false;
	pthread_mutex_lock(&f->mu);
	bool stop = f->stop;
	f->cur = stop ? NULL : s;
	pthread_mutex_unlock(&f->mu);
	bool open = false;
	while (!stop) {
		uint8_t *buf = NULL;
		size_t len = 0;
		int r = rpc_cstream_next(s, 500, &buf, &len);
		if (r == 0)
			break;
		if (!open && (r == 1 || r == -ETIMEDOUT)) {
			/* a failed connect ends the stream at once; one still open after 500 ms or
			 * carrying a command is established */
			open = true;
			pthread_mutex_lock(&f->mu);
			f->st.connected = true;
			f->st.connects++;
			pthread_mutex_unlock(&f->mu);
		}
		if (r == 1) {
			handle(f, buf, len);
			free(buf);
		}
		pthread_mutex_lock(&f->mu);
		stop = f->stop;
		pthread_mutex_unlock(&f->mu);
	}
	struct rpc_status st = { 0 };
	if (!stop)
		rpc_cstream_status(s, &st);
	pthread_mutex_lock(&f->mu);
	f->cur = NULL;
	if (f->st.connected)
		f->st.disconnects++;
	f->st.connected = false;
	f->st.last_code = st.code;
	snprintf(f->st.last_detail, sizeof(f->st.last_detail), "%s", st.detail);
	pthread_mutex_unlock(&f->mu);
	rpc_cstream_free(s);
	return open;
}

static void *run(void *arg)
{
	struct fleet *f = arg;
	uint32_t backoff = f->o.backoff_min_ms;
	for (;;) {
		pthread_mutex_lock(&f->mu);
		bool stop = f->stop;
		pthread_mutex_unlock(&f->mu);
		if (stop)
			break;
		if (watch_once(f))
			backoff = f->o.backoff_min_ms;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += backoff / 1000;
		ts.tv_nsec += (long)(backoff % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&f->mu);
		while (!f->stop && pthread_cond_timedwait(&f->cv, &f->mu, &ts) != ETIMEDOUT)
			;
		pthread_mutex_unlock(&f->mu);
		backoff = backoff * 2 > f->o.backoff_max_ms ? f->o.backoff_max_ms : backoff * 2;
	}
	return NULL;
}

int fleet_new(const struct fleet_opts *o, struct fleet **ret)
{
	if (!o || !o->target || !o->target[0] || !o->agent_id || !wire_valid_agent_id(o->agent_id) ||
	    o->nlabels > WIRE_MAX_LABELS)
		return -EINVAL;
	struct fleet *f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->o = *o;
	snprintf(f->target, sizeof(f->target), "%s", o->target);
	snprintf(f->token, sizeof(f->token), "%s", o->token ? o->token : "");
	snprintf(f->agent_id, sizeof(f->agent_id), "%s", o->agent_id);
	snprintf(f->host, sizeof(f->host), "%s", o->host ? o->host : "");
	snprintf(f->version, sizeof(f->version), "%s", o->version ? o->version : "");
	if (!f->o.backoff_min_ms)
		f->o.backoff_min_ms = 100;
	if (!f->o.backoff_max_ms)
		f->o.backoff_max_ms = 5000;
	if (f->o.backoff_max_ms < f->o.backoff_min_ms)
		f->o.backoff_max_ms = f->o.backoff_min_ms;
	/* the Watch request is the same for every try: pack it once */
	Ms__V1__WatchRequest wr = MS__V1__WATCH_REQUEST__INIT;
	Ms__V1__Label lab[WIRE_MAX_LABELS], *labp[WIRE_MAX_LABELS];
	for (uint32_t i = 0; i < o->nlabels; i++) {
		ms__v1__label__init(&lab[i]);
		lab[i].key = (char *)o->labels[i].key;
		lab[i].value = (char *)o->labels[i].value;
		labp[i] = &lab[i];
	}
	wr.agent_id = f->agent_id;
	wr.instance = o->instance;
	wr.labels = labp;
	wr.n_labels = o->nlabels;
	wr.host = f->host;
	wr.version = f->version;
	f->watch_len = ms__v1__watch_request__get_packed_size(&wr);
	f->watch_req = malloc(f->watch_len ? f->watch_len : 1);
	if (!f->watch_req) {
		free(f);
		return -ENOMEM;
	}
	ms__v1__watch_request__pack(&wr, f->watch_req);
	struct rpc_client_opts co = {
		.target = f->target,
		.token = f->token,
		.tls_ca_file = o->tls_ca_file,
		.tls_cert_file = o->tls_cert_file,
		.tls_key_file = o->tls_key_file,
	};
	int r = rpc_client_new(&co, &f->cli);
	if (r < 0) {
		free(f->watch_req);
		free(f);
		return r;
	}
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	if (pthread_create(&f->thr, NULL, run, f) != 0) {
		rpc_client_free(f->cli);
		pthread_cond_destroy(&f->cv);
		pthread_mutex_destroy(&f->mu);
		free(f->watch_req);
		free(f);
		return -EAGAIN;
	}
	*ret = f;
	return 0;
}

void fleet_get_stats(struct fleet *f, struct fleet_stats *ret)
{
	pthread_mutex_lock(&f->mu);
	*ret = f->st;
	pthread_mutex_unlock(&f->mu);
}

struct fleet *fleet_free(struct fleet *f)
{
	if (!f)
		return NULL;
	pthread_mutex_lock(&f->mu);
	f->stop = true;
	if (f->cur)
		rpc_cstream_cancel(f->cur);
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
	pthread_join(f->thr, NULL);
	rpc_client_free(f->cli);
	pthread_cond_destroy(&f->cv);
	pthread_mutex_destroy(&f->mu);
	free(f->watch_req);
	free(f);
	return NULL;
}
