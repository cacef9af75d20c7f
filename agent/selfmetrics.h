/* selfmetrics: a /metrics source (metrics_add_source) for the agent's own plumbing that the
 * window-driven families do not see: the closed-window queue between the loop and the export
 * worker (windows dropped because it was full — their samples are lost — and closes put off
 * because the worker was behind) and the HTTP servers' counters (ms_agent_http_*, httpd_metrics.h).
 * main() attaches the loop and the servers as they come up and detaches them (selfmetrics_clear)
 * before freeing them; a render never sees a freed object. Thread-safety: one mutex; any thread. */
#ifndef MS_SELFMETRICS_H
#define MS_SELFMETRICS_H

#include "httpd.h"
#include "loop.h"
#include "strbuf.h"

struct selfmetrics;

int selfmetrics_new(struct selfmetrics **ret);
/* NULL-safe; returns NULL. Call after the metrics server that renders it is freed. */
struct selfmetrics *selfmetrics_free(struct selfmetrics *s);
void selfmetrics_set_loop(struct selfmetrics *s, struct loop *l);
/* which: 0 the metrics server, 1 the control API server. */
void selfmetrics_set_http(struct selfmetrics *s, int which, struct httpd *h);
/* Detaches everything: from then on a render shows nothing. */
void selfmetrics_clear(struct selfmetrics *s);
/* metrics_add_source callback; arg is the struct selfmetrics. */
int selfmetrics_render(void *arg, struct strbuf *sb);

#endif
