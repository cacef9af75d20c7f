/* strbuf: see strbuf.h. */
#include "strbuf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void strbuf_init(struct strbuf *sb, size_t max_bytes)
{
	memset(sb, 0, sizeof(*sb));
	sb->max = max_bytes;
}

void strbuf_release(struct strbuf *sb)
{
	free(sb->buf);
	memset(sb, 0, sizeof(*sb));
}

static int grow(struct strbuf *sb, size_t need)
{
	if (sb->err)
		return sb->err;
	if (need > sb->max) {
		sb->err = -ENOSPC;
		return sb->err;
	}
	if (need + 1 <= sb->cap)
		return 0;
	size_t cap = sb->cap ? sb->cap : 256;
	while (cap < need + 1)
		cap *= 2;
	if (cap > sb->max + 1)
		cap = sb->max + 1;
	char *p = realloc(sb->buf, cap);
	if (!p) {
		sb->err = -ENOMEM;
		return sb->err;
	}
	sb->buf = p;
	sb->cap = cap;
	return 0;
}

int strbuf_append(struct strbuf *sb, const char *s, size_t len)
{
	if (len > sb->max || grow(sb, sb->len + len) < 0)
		return sb->err ? sb->err : (sb->err = -ENOSPC);
	memcpy(sb->buf + sb->len, s, len);
	sb->len += len;
	sb->buf[sb->len] = 0;
	return 0;
}

int strbuf_vappendf(struct strbuf *sb, const char *fmt, va_list ap)
{
	if (sb->err)
		return sb->err;
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return sb->err = -EINVAL;
	if (grow(sb, sb->len + (size_t)n) < 0)
		return sb->err;
	vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
	sb->len += (size_t)n;
	return 0;
}

int strbuf_appendf(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = strbuf_vappendf(sb, fmt, ap);
	va_end(ap);
	return r;
}

int strbuf_append_label_value(struct strbuf *sb, const char *s)
{
	for (; *s; s++) {
		int r;
		if (*s == '\\')
			r = strbuf_append(sb, "\\\\", 2);
		else if (*s == '"')
			r = strbuf_append(sb, "\\\"", 2);
		else if (*s == '\n')
			r = strbuf_append(sb, "\\n", 2);
		else
			r = strbuf_append(sb, s, 1);
		if (r < 0)
			return r;
	}
	return 0;
}

int strbuf_error(const struct strbuf *sb)
{
	return sb->err;
}
