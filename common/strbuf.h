/* strbuf: a bounded, growable text buffer with printf-style appends (Prometheus exposition,
 * human tables). Errors are sticky: past max_bytes the buffer refuses further text and
 * strbuf_error() says -ENOSPC, so a truncated text is never mistaken for a complete one.
 * Thread-safety: none; one owner. */
#ifndef MS_STRBUF_H
#define MS_STRBUF_H

#include <stdarg.h>
#include <stddef.h>

struct strbuf {
	char *buf;
	size_t len, cap, max;
	int err;
};

void strbuf_init(struct strbuf *sb, size_t max_bytes);
void strbuf_release(struct strbuf *sb);
int strbuf_appendf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int strbuf_vappendf(struct strbuf *sb, const char *fmt, va_list ap);
int strbuf_append(struct strbuf *sb, const char *s, size_t len);
/* Appends s escaped as a Prometheus label value (\\, \", \n). */
int strbuf_append_label_value(struct strbuf *sb, const char *s);
int strbuf_error(const struct strbuf *sb);

#endif
