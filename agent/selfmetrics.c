/* selfmetrics: see selfmetrics.h. */
#include "selfmetrics.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>

#include "httpd_metrics.h"

struct selfmetrics {
	pthread_mutex_t mu; /* held by a render while it uses the pointers */
	struct loop *loop;
	struct httpd *http[2];
};

int selfmetrics_new(struct selfmetrics **ret)
{
	struct selfmetrics *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->mu, NULL);
	*ret = s;
	return 0;
}

struct selfmetrics *selfmetrics_free(struct selfmetrics *s)
{
	if (s) {
		pthread_mutex_destroy(&s->mu);
		free(s);
	}
	return NULL;
}

void selfmetrics_set_loop(struct selfmetrics *s, struct loop *l)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	s->loop = l;
	pthread_mutex_unlock(&s->mu);
}

void selfmetrics_set_http(struct selfmetrics *s, int which, struct httpd *h)
{
	if (!s || which < 0 || which > 1)
		return;
	pthread_mutex_lock(&s->mu);
	s->http[which] = h;
	pthread_mutex_unlock(&s->mu);
}

void selfmetrics_clear(struct selfmetrics *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	s->loop = NULL;
	s->http[0] = s->http[1] = NULL;
	pthread_mutex_unlock(&s->mu);
}

int selfmetrics_render(void *arg, struct strbuf *sb)
{
	struct selfmetrics *s = arg;
	pthread_mutex_lock(&s->mu);
	if (s->loop) {
		struct loop_stats ls;
		loop_get_stats(s->loop, &ls);
		strbuf_appendf(sb, "# HELP ms_agent_windows_dropped_total Closed windows dropped because the export queue "
			       "was full (their samples are lost).\n# TYPE ms_agent_windows_dropped_total counter\n"
			       "ms_agent_windows_dropped_total %" PRIu64 "\n", ls.windows_dropped);
		strbuf_appendf(sb, "# HELP ms_agent_windows_stretched_total Window closes put off because the export "
			       "worker was a window behind (the window grows; nothing is lost).\n"
			       "# TYPE ms_agent_windows_stretched_total counter\n"
			       "ms_agent_windows_stretched_total %" PRIu64 "\n", ls.windows_stretched);
	}
	const struct httpd_metrics_server srv[2] = { { "metrics", s->http[0] }, { "control", s->http[1] } };
	int r = s->http[0] || s->http[1] ? httpd_metrics_render("ms_agent", srv, 2, sb) : strbuf_error(sb);
	pthread_mutex_unlock(&s->mu);
	return r;
}
