/* log: see log.h. */
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* One word, written once at start-up and read racily afterwards: a stale read only changes
 * whether one debug line is printed. */
static volatile int log_level = MS_LOG_INFO;

static const char *const level_names[] = { "ERROR", "WARN", "INFO", "DEBUG" };

void ms_log_set_level(enum ms_log_level level)
{
	log_level = level;
}

enum ms_log_level ms_log_get_level(void)
{
	return (enum ms_log_level)log_level;
}

int ms_log_parse_level(const char *s)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	for (int i = 0; i < 4; i++)
		if (strcasecmp(s, names[i]) == 0)
			return i;
	return -EINVAL;
}

void ms_logv(enum ms_log_level level, const char *id, const char *fmt, va_list ap)
{
	if ((int)level > log_level)
		return;
	int saved = errno;
	char line[2048];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			 tm.tm_sec, ts.tv_nsec / 1000000,
			 level_names[level <= MS_LOG_DEBUG ? level : MS_LOG_DEBUG], id ? id : "-");
	if (n < 0)
		n = 0;
	if ((size_t)n < sizeof(line)) {
		int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
		if (m > 0)
			n += m;
	}
	if ((size_t)n >= sizeof(line) - 1)
		n = (int)sizeof(line) - 2; /* truncated: keep the newline */
	line[n++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, (size_t)n);
	(void)w;
	errno = saved;
}

void ms_log(enum ms_log_level level, const char *id, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	ms_logv(level, id, fmt, ap);
	va_end(ap);
}
