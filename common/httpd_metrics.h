/* httpd_metrics: the Prometheus text of httpd servers' counters (httpd_stats): one family per
 * counter, a `server` label per server, so a process with several HTTP surfaces (the agent's
 * control API and its /metrics port) renders them without duplicate HELP/TYPE lines. Families:
 * <prefix>_http_requests_total{server,class="2xx".."5xx"}, _http_auth_failures_total,
 * _http_timeouts_total, _http_busy_rejects_total, _http_conn_rejects_total,
 * _http_idle_closes_total, _http_late_replies_total (every request the server refused or
 * dropped is in one of them) and the gauges _http_connections, _http_pending_calls.
 * It is not the server. Thread-safety: as httpd_stats (any thread). */
#ifndef MS_HTTPD_METRICS_H
#define MS_HTTPD_METRICS_H

#include <stddef.h>

#include "httpd.h"
#include "strbuf.h"

#define HTTPD_METRICS_MAX_SERVERS 8

struct httpd_metrics_server {
	const char *name;        /* the server label, e.g. "control" */
	const struct httpd *h;   /* NULL: skipped (a surface that is off) */
};

/* Appends the families for servers[0..n) (n <= HTTPD_METRICS_MAX_SERVERS) to sb.
 * 0, -EINVAL, or sb's error (-ENOSPC). */
int httpd_metrics_render(const char *prefix, const struct httpd_metrics_server *servers, size_t n,
			 struct strbuf *sb);

#endif
