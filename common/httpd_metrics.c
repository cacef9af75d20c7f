/* httpd_metrics: see httpd_metrics.h. */
#include "httpd_metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>

struct family {
	const char *name, *type, *help;
	size_t off; /* of the uint64_t counter in struct httpd_stats; SIZE_MAX: a uint32_t gauge below */
};

#define CNT(f) offsetof(struct httpd_stats, f)

static const struct family families[] = {
	{ "http_auth_failures_total", "counter", "Requests refused with 401 (missing or wrong token).", CNT(auth_failures) },
	{ "http_timeouts_total", "counter", "Requests answered 503 (handler too slow) or 408 (body too slow).", CNT(timeouts) },
	{ "http_busy_rejects_total", "counter", "Requests answered 503 because max_pending calls were waiting.", CNT(busy_rejects) },
	{ "http_conn_rejects_total", "counter", "Connections refused over max_conns.", CNT(conn_rejects) },
	{ "http_idle_closes_total", "counter", "Connections closed by the idle or head read timeout.", CNT(idle_closes) },
	{ "http_late_replies_total", "counter", "Replies discarded because they came after a timeout.", CNT(late_replies) },
};

int httpd_metrics_render(const char *prefix, const struct httpd_metrics_server *servers, size_t n,
			 struct strbuf *sb)
{
	if (!prefix || !sb || (n && !servers) || n > HTTPD_METRICS_MAX_SERVERS)
		return -EINVAL;
	struct httpd_stats st[HTTPD_METRICS_MAX_SERVERS];
	for (size_t i = 0; i < n; i++)
		if (servers[i].h)
			httpd_stats(servers[i].h, &st[i]);
	static const char *const class_name[] = { "", "1xx", "2xx", "3xx", "4xx", "5xx" };
	strbuf_appendf(sb, "# HELP %s_http_requests_total HTTP responses sent, by status class.\n"
		       "# TYPE %s_http_requests_total counter\n", prefix, prefix);
	for (size_t i = 0; i < n; i++)
		for (int c = 2; servers[i].h && c <= 5; c++)
			strbuf_appendf(sb, "%s_http_requests_total{server=\"%s\",class=\"%s\"} %" PRIu64 "\n", prefix,
				       servers[i].name, class_name[c], st[i].by_class[c]);
	for (size_t f = 0; f < sizeof(families) / sizeof(families[0]); f++) {
		strbuf_appendf(sb, "# HELP %s_%s %s\n# TYPE %s_%s %s\n", prefix, families[f].name, families[f].help, prefix,
			       families[f].name, families[f].type);
		for (size_t i = 0; i < n; i++)
			if (servers[i].h)
				strbuf_appendf(sb, "%s_%s{server=\"%s\"} %" PRIu64 "\n", prefix, families[f].name,
					       servers[i].name, *(const uint64_t *)((const char *)&st[i] + families[f].off));
	}
	strbuf_appendf(sb, "# HELP %s_http_connections Open HTTP connections.\n# TYPE %s_http_connections gauge\n",
		       prefix, prefix);
	for (size_t i = 0; i < n; i++)
		if (servers[i].h)
			strbuf_appendf(sb, "%s_http_connections{server=\"%s\"} %" PRIu32 "\n", prefix, servers[i].name,
				       st[i].conns);
	strbuf_appendf(sb, "# HELP %s_http_pending_calls Requests awaiting their handler's reply.\n"
		       "# TYPE %s_http_pending_calls gauge\n", prefix, prefix);
	for (size_t i = 0; i < n; i++)
		if (servers[i].h)
			strbuf_appendf(sb, "%s_http_pending_calls{server=\"%s\"} %" PRIu32 "\n", prefix, servers[i].name,
				       st[i].pending);
	return strbuf_error(sb);
}
