/* httpparse: see httpparse.h.
 *
 * Every index is checked against the scan limit min(len, max_head) before it is read, and the
 * head is scanned once per call: a connection that receives its head in k pieces costs
 * O(k * head) bytes scanned, bounded by HTTPPARSE_MAX_HEAD per piece. */
#include "httpparse.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#define MAX_SKIPPED 8 /* blank lines' bytes tolerated before the request line (RFC 9112 2.2) */

static bool is_tchar(unsigned char ch)
{
	if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
		return true;
	return ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

/* Field values: visible characters, obs-text, SP and HTAB; no other control characters. */
static bool is_vchar(unsigned char ch)
{
	return ch == '\t' || (ch >= 0x20 && ch != 0x7f);
}

/* The length of the line starting at p (without its LF and optional CR) or -1 when no LF lies
 * before limit; *ret_next is the index after the LF. */
static long line_at(const char *buf, size_t p, size_t limit, size_t *ret_next)
{
	if (p >= limit)
		return -1;
	const char *lf = memchr(buf + p, '\n', limit - p);
	if (!lf)
		return -1;
	size_t end = (size_t)(lf - buf);
	*ret_next = end + 1;
	if (end > p && buf[end - 1] == '\r')
		end--;
	return (long)(end - p);
}

/* Request line [p, p+n): method SP target SP HTTP/1.x. 0 or an HTTP status. */
static int parse_request_line(const char *buf, size_t p, size_t n, size_t max_target,
			      struct httpparse_req *req)
{
	const char *s = buf + p, *end = s + n;
	const char *q = s;
	while (q < end && is_tchar((unsigned char)*q))
		q++;
	if (q == s || q == end || *q != ' ')
		return 400;
	size_t mlen = (size_t)(q - s);
	if (mlen > HTTPPARSE_MAX_METHOD)
		return 501;
	memcpy(req->method, s, mlen);
	req->method[mlen] = '\0';

	const char *t = ++q;
	while (q < end && *q != ' ') {
		if ((unsigned char)*q <= 0x20 || *q == 0x7f)
			return 400;
		q++;
	}
	size_t tlen = (size_t)(q - t);
	if (tlen == 0)
		return 400;
	if (tlen > max_target)
		return 414;
	req->target_off = (size_t)(t - buf);
	req->target_len = tlen;
	if (q == end)
		return 505; /* HTTP/0.9 "GET /path" */
	q++;
	size_t vlen = (size_t)(end - q);
	if (vlen == 8 && memcmp(q, "HTTP/1.", 7) == 0 && (q[7] == '0' || q[7] == '1')) {
		req->minor = q[7] - '0';
		return 0;
	}
	if (vlen == 8 && memcmp(q, "HTTP/", 5) == 0 && q[5] >= '0' && q[5] <= '9' && q[6] == '.' &&
	    q[7] >= '0' && q[7] <= '9')
		return 505;
	if (vlen == 6 && memcmp(q, "HTTP/", 5) == 0 && q[5] >= '2' && q[5] <= '9')
		return 505; /* "HTTP/2" */
	return 400;
}

/* The start [p, limit) of a request line whose LF has not come: -EAGAIN while it may still
 * become valid, else the status parse_request_line would give (or 501 for a method run that
 * is already too long). */
static int partial_line(const char *buf, size_t p, size_t limit, size_t max_target)
{
	size_t i = p;
	while (i < limit && is_tchar((unsigned char)buf[i]))
		i++;
	if (i - p > HTTPPARSE_MAX_METHOD)
		return 501;
	if (i == limit)
		return -EAGAIN;
	if (buf[i] != ' ' || i == p)
		return 400;
	size_t t = ++i;
	while (i < limit && buf[i] != ' ') {
		unsigned char ch = (unsigned char)buf[i];
		/* a CR may be the last byte, just before the LF still to come */
		if ((ch < 0x20 && !(ch == '\r' && i + 1 == limit)) || ch == 0x7f)
			return 400;
		i++;
	}
	return i - t > max_target ? 414 : -EAGAIN;
}

/* Header field line [p, p+n). 0 or an HTTP status. */
static int parse_field(const char *buf, size_t p, size_t n, struct httpparse_req *req)
{
	const char *s = buf + p, *end = s + n;
	if (*s == ' ' || *s == '\t')
		return 400; /* obs-fold: refused (RFC 9112 5.2 allows it) */
	const char *q = s;
	while (q < end && is_tchar((unsigned char)*q))
		q++;
	if (q == s || q == end || *q != ':')
		return 400; /* also "Name : value", which smuggling relies on */
	if (req->nfields == HTTPPARSE_MAX_HEADERS)
		return 431;
	struct httpparse_field *f = &req->fields[req->nfields];
	f->name_off = p;
	f->name_len = (size_t)(q - s);
	q++;
	while (q < end && (*q == ' ' || *q == '\t'))
		q++;
	const char *v = q;
	for (const char *r = q; r < end; r++)
		if (!is_vchar((unsigned char)*r))
			return 400;
	const char *vend = end;
	while (vend > v && (vend[-1] == ' ' || vend[-1] == '\t'))
		vend--;
	f->value_off = (size_t)(v - buf);
	f->value_len = (size_t)(vend - v);
	req->nfields++;
	return 0;
}

int httpparse_head(const char *buf, size_t len, size_t max_head, size_t max_target,
		   struct httpparse_req *ret_req)
{
	if (!buf || !ret_req)
		return -EINVAL;
	if (max_head == 0 || max_head > HTTPPARSE_MAX_HEAD)
		max_head = HTTPPARSE_MAX_HEAD;
	struct httpparse_req *req = ret_req;
	memset(req, 0, sizeof(*req));
	size_t limit = len < max_head ? len : max_head;
	size_t p = 0;
	while (p < limit && (buf[p] == '\r' || buf[p] == '\n')) {
		if (++p > MAX_SKIPPED)
			return 400;
	}
	req->skipped = p;

	size_t next;
	int rv;
	long n = line_at(buf, p, limit, &next);
	if (n < 0) {
		/* No complete request line yet: refuse early what can no longer become one (a TLS
		 * hello, a target past its bound) instead of waiting for the read timeout. */
		rv = partial_line(buf, p, limit, max_target);
		if (rv != -EAGAIN)
			return rv;
		return len >= max_head ? 431 : -EAGAIN;
	}
	if (n == 0)
		return 400;
	rv = parse_request_line(buf, p, (size_t)n, max_target, req);
	if (rv != 0)
		return rv;
	for (p = next;;) {
		n = line_at(buf, p, limit, &next);
		if (n < 0)
			return len >= max_head ? 431 : -EAGAIN;
		if (n == 0)
			break;
		if ((rv = parse_field(buf, p, (size_t)n, req)) != 0)
			return rv;
		p = next;
	}
	req->head_len = next;
	return 0;
}

static bool name_is(const struct httpparse_field *f, const char *buf, const char *name,
		    size_t nlen)
{
	return f->name_len == nlen && strncasecmp(buf + f->name_off, name, nlen) == 0;
}

const char *httpparse_field(const struct httpparse_req *req, const char *buf, const char *name,
			    size_t *ret_len)
{
	size_t nlen = strlen(name);
	for (unsigned i = 0; i < req->nfields; i++) {
		const struct httpparse_field *f = &req->fields[i];
		if (name_is(f, buf, name, nlen)) {
			if (ret_len)
				*ret_len = f->value_len;
			return buf + f->value_off;
		}
	}
	return NULL;
}

unsigned httpparse_count(const struct httpparse_req *req, const char *buf, const char *name)
{
	size_t nlen = strlen(name);
	unsigned k = 0;
	for (unsigned i = 0; i < req->nfields; i++)
		k += name_is(&req->fields[i], buf, name, nlen);
	return k;
}

bool httpparse_has_token(const char *value, size_t len, const char *token)
{
	size_t tlen = strlen(token);
	const char *p = value, *end = value + len;
	while (p < end) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		const char *e = comma ? comma : end;
		const char *a = p, *b = e;
		while (a < b && (*a == ' ' || *a == '\t'))
			a++;
		while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
			b--;
		if ((size_t)(b - a) == tlen && strncasecmp(a, token, tlen) == 0)
			return true;
		p = comma ? comma + 1 : end;
	}
	return false;
}
