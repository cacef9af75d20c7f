/* log: leveled, timestamped log lines on stderr, each carrying a stable ID operators can grep
 * for (e.g. "BPF-HOOK-FALLBACK"). Not a tracing facility: the hot path never logs.
 * Thread-safe: one write(2) per line, so lines from different threads never interleave. */
#ifndef MS_LOG_H
#define MS_LOG_H

#include <stdarg.h>

enum ms_log_level {
	MS_LOG_ERROR = 0,
	MS_LOG_WARN = 1,
	MS_LOG_INFO = 2,
	MS_LOG_DEBUG = 3,
};

/* Lines above this level are discarded. Default INFO; set once at start-up. */
void ms_log_set_level(enum ms_log_level level);
enum ms_log_level ms_log_get_level(void);
/* Parses "error|warn|info|debug"; returns the level or -EINVAL. */
int ms_log_parse_level(const char *s);

/* Emits "2026-11-25T20:01:02.345Z WARN  ID message\n". id must be a stable upper-case token. */
void ms_log(enum ms_log_level level, const char *id, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void ms_logv(enum ms_log_level level, const char *id, const char *fmt, va_list ap);

#define ms_err(id, ...) ms_log(MS_LOG_ERROR, id, __VA_ARGS__)
#define ms_warn(id, ...) ms_log(MS_LOG_WARN, id, __VA_ARGS__)
#define ms_info(id, ...) ms_log(MS_LOG_INFO, id, __VA_ARGS__)
#define ms_debug(id, ...) ms_log(MS_LOG_DEBUG, id, __VA_ARGS__)

#endif
