/* status: the coordinator's HTTP surface on its metrics port: GET /metrics (Prometheus text,
 * SPEC §13 names), GET /healthz and GET /api/v1/agents (the registry as JSON). Other modules
 * (ClickHouse writer, correlator) append their own metrics through status_add_source. It is
 * not the operator API (gRPC). Thread-safety: renders run on httpd threads and only read
 * thread-safe sources; status_add_source from one thread, also after status_register (a source
 * must outlive the httpd). */
#ifndef MS_STATUS_H
#define MS_STATUS_H

#include <stdint.h>

#include "strbuf.h"

struct ingest;
struct registry;
struct winstore;
struct httpd;
struct status;

#define STATUS_MAX_SOURCES 8

struct status_opts {
	struct ingest *ingest;     /* required */
	struct registry *reg;      /* required */
	struct winstore *store;    /* may be NULL */
	uint64_t coordinator_id;
	const char *version;
};

int status_new(const struct status_opts *opts, struct status **ret);
struct status *status_free(struct status *s);
/* Appends render(arg, sb) output to every /metrics page. -ENOSPC past STATUS_MAX_SOURCES. */
int status_add_source(struct status *s, int (*render)(void *arg, struct strbuf *sb), void *arg);
int status_register(struct status *s, struct httpd *h);
/* The /metrics text (exposed for tests). */
int status_render_metrics(struct status *s, struct strbuf *sb);

#endif
