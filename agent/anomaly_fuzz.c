/* Fuzz target: the /proc/net/dev and latency-file parsers of the anomaly monitor, and the
 * evaluation of whatever they accept (two reads of the same text, then of a prefix of it, so
 * counters move both ways). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "anomaly.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	struct anomaly_sample s[8];
	double lat;
	int lok = anomaly_parse_latency(buf, size, &lat) == 0;
	if (lok && (lat < 0 || lat != lat))
		abort();
	int n = anomaly_parse_netdev(buf, size, s, 8);
	if ((n < 0 && n != -EINVAL) || n > 8)
		abort();
	if (n <= 0)
		return 0;
	for (int i = 0; i < n; i++)
		if (!memchr(s[i].name, 0, sizeof(s[i].name)) || !s[i].name[0])
			abort();
	struct anomaly_opts o = { 0 };
	struct anomaly *a;
	if (anomaly_new(&o, &a) < 0)
		return 0;
	anomaly_feed(a, s, (size_t)n, lok ? &lat : NULL, 1000, 1000);
	anomaly_feed(a, s, (size_t)n, NULL, 1500, 1500);
	int m = anomaly_parse_netdev(buf, size / 2, s, 8);
	if (m > 0)
		anomaly_feed(a, s, (size_t)m, NULL, 2000, 2000);
	struct anomaly_view *v = malloc(sizeof(*v));
	if (v) {
		anomaly_view(a, v);
		free(v);
	}
	anomaly_free(a);
	return 0;
}
