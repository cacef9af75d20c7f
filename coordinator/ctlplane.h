/* ctlplane: the coordinator's control plane assembled — the gRPC server (rpc.h) carrying the
 * operator API (opapi.h), the agents' Watch/Report (watch.h) and the fleet event and anomaly
 * logs (evlog.h). main.c creates it after the registry and ingest and frees it first. It adds
 * no behaviour of its own. Thread-safety: new/free from one thread. */
#ifndef MS_CTLPLANE_H
#define MS_CTLPLANE_H

#include <stdint.h>

struct registry;
struct ingest;
struct watch;
struct evlog;

#define CTLPLANE_EVENTS 10000   /* fleet events kept in memory */
#define CTLPLANE_ANOMALIES 10000

struct ctlplane_opts {
	const char *address;
	uint16_t port;               /* 0 = ephemeral */
	const char *token;           /* NULL/"": none */
	const char *tls_cert_file, *tls_key_file, *tls_ca_file;
	uint32_t max_agents;
	struct registry *reg;
	struct ingest *ingest;
};

struct ctlplane;

/* -EADDRINUSE, -ENOENT (TLS files), -ENOMEM, -EINVAL. */
int ctlplane_new(const struct ctlplane_opts *o, struct ctlplane **ret);
uint16_t ctlplane_port(const struct ctlplane *c);
struct watch *ctlplane_watch(struct ctlplane *c);
struct evlog *ctlplane_events(struct ctlplane *c);
struct evlog *ctlplane_anomalies(struct ctlplane *c);
/* Ends every stream (agents see UNAVAILABLE and reconnect elsewhere or later), frees.
 * NULL-safe; returns NULL. */
struct ctlplane *ctlplane_free(struct ctlplane *c);

#endif
