/* ctlplane: see ctlplane.h. */
#include "ctlplane.h"

#include <errno.h>
#include <stdlib.h>

#include "evlog.h"
#include "opapi.h"
#include "rpc.h"
#include "watch.h"

struct ctlplane {
	struct evlog *events, *anomalies;
	struct watch *watch;
	struct opapi *api;
	struct rpc_server *srv;
};

int ctlplane_new(const struct ctlplane_opts *o, struct ctlplane **ret)
{
	struct ctlplane *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	int r;
	if ((r = evlog_new(CTLPLANE_EVENTS, &c->events)) < 0 || (r = evlog_new(CTLPLANE_ANOMALIES, &c->anomalies)) < 0 ||
	    (r = watch_new(o->max_agents ? o->max_agents : 10000, opapi_on_watch_event, c->events, &c->watch)) < 0)
		goto fail;
	struct opapi_opts ao = { .reg = o->reg, .watch = c->watch, .events = c->events, .anomalies = c->anomalies,
				 .ingest = o->ingest };
	if ((r = opapi_new(&ao, &c->api)) < 0)
		goto fail;
	struct rpc_method m[OPAPI_NMETHODS + 2];
	opapi_methods(c->api, m);
	watch_methods(c->watch, &m[OPAPI_NMETHODS]);
	struct rpc_server_opts so = {
		.address = o->address,
		.port = o->port,
		.token = o->token,
		.tls_cert_file = o->tls_cert_file,
		.tls_key_file = o->tls_key_file,
		.tls_ca_file = o->tls_ca_file,
		.methods = m,
		.nmethods = OPAPI_NMETHODS + 2,
	};
	if ((r = rpc_server_new(&so, &c->srv)) < 0)
		goto fail;
	*ret = c;
	return 0;
fail:
	ctlplane_free(c);
	return r;
}

uint16_t ctlplane_port(const struct ctlplane *c)
{
	return rpc_server_port(c->srv);
}

struct watch *ctlplane_watch(struct ctlplane *c)
{
	return c->watch;
}

struct evlog *ctlplane_events(struct ctlplane *c)
{
	return c->events;
}

struct evlog *ctlplane_anomalies(struct ctlplane *c)
{
	return c->anomalies;
}

struct ctlplane *ctlplane_free(struct ctlplane *c)
{
	if (!c)
		return NULL;
	rpc_server_free(c->srv); /* first: its callbacks use everything below */
	opapi_free(c->api);
	watch_free(c->watch);
	evlog_free(c->events);
	evlog_free(c->anomalies);
	free(c);
	return NULL;
}
