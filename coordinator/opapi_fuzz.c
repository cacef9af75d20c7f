/* opapi_fuzz: the operator API's request validators, reached the way gRPC reaches them: the first
 * byte picks one of opapi's unary methods (ListAgents, DescribeAgent, SetMode, SetBudget,
 * SetTargets, SetPmuConfig, GetFleetStatus, ListEvents, ListAnomalies), the rest is its request
 * message. A registry with two agents (labels role=web / role=db) gives selectors something to
 * match; they have no Watch stream, so accepted commands end in "not connected" after the
 * validators ran. The streaming methods need a live rpc stream and are not fuzzed here. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evlog.h"
#include "opapi.h"
#include "registry.h"
#include "watch.h"
#include "wire.h"

struct fuzz_api {
	struct registry *reg;
	struct watch *watch;
	struct evlog *events, *anomalies;
	struct opapi *api;
	struct rpc_method unary[OPAPI_NMETHODS];
	uint32_t nunary;
};

static void add_agent(struct registry *reg, const char *id, const char *labels)
{
	struct wire_hello *h = calloc(1, sizeof(*h));
	if (!h)
		abort();
	snprintf(h->agent_id, sizeof(h->agent_id), "%s", id);
	snprintf(h->host, sizeof(h->host), "%s", id);
	snprintf(h->version, sizeof(h->version), "0.1.0");
	if (wire_parse_labels(labels, h) < 0 || registry_hello(reg, h, 1000) < 0)
		abort();
	free(h);
}

/* Built once: the handlers keep no per-request state but a command counter and bounded logs. */
static struct fuzz_api *fuzz_api(void)
{
	static struct fuzz_api f;
	if (f.api)
		return &f;
	if (registry_new(16, 60000, &f.reg) < 0 || watch_new(16, NULL, NULL, &f.watch) < 0 ||
	    evlog_new(64, &f.events) < 0 || evlog_new(64, &f.anomalies) < 0)
		abort();
	add_agent(f.reg, "web-1", "role=web,zone=a");
	add_agent(f.reg, "db-1", "role=db");
	struct opapi_opts o = { .reg = f.reg, .watch = f.watch, .events = f.events, .anomalies = f.anomalies };
	if (opapi_new(&o, &f.api) < 0)
		abort();
	struct rpc_method all[OPAPI_NMETHODS];
	opapi_methods(f.api, all);
	for (uint32_t i = 0; i < OPAPI_NMETHODS; i++)
		if (all[i].unary)
			f.unary[f.nunary++] = all[i];
	return &f;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_api *f = fuzz_api();
	if (size < 1 || !f->nunary)
		return 0;
	const struct rpc_method *m = &f->unary[data[0] % f->nunary];
	struct rpc_reply rep = { 0 };
	m->unary(m->arg, data + 1, size - 1, &rep);
	/* the detail goes into a gRPC status: it must be a terminated string */
	if (rep.code != 0 && !memchr(rep.detail, 0, sizeof(rep.detail)))
		abort();
	free(rep.buf);
	return 0;
}
