/* httpd_req: see httpd_req.h. */
#include "httpd_req.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "httpd.h"
#include "jsonw.h"

const char *httpd_req_status_text(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 411: return "Length Required";
	case 413: return "Payload Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 417: return "Expectation Failed";
	case 422: return "Unprocessable Entity";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return status < 300 ? "OK" : status < 500 ? "Client Error" : "Server Error";
	}
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Decodes one character at *p (< end): %XX, '+' as space when plus is set. -1 on bad input. */
static int decode_char(const char **p, const char *end, bool plus)
{
	const char *s = *p;
	if (*s == '%') {
		if (end - s < 3 || hexval(s[1]) < 0 || hexval(s[2]) < 0)
			return -1;
		int v = hexval(s[1]) * 16 + hexval(s[2]);
		*p = s + 3;
		return v == 0 ? -1 : v;
	}
	*p = s + 1;
	if (*s == '\0')
		return -1;
	return plus && *s == '+' ? ' ' : (unsigned char)*s;
}

static int decode_into(const char *in, const char *end, bool plus, char *out, size_t size)
{
	size_t n = 0;
	while (in < end) {
		int ch = decode_char(&in, end, plus);
		if (ch < 0)
			return -EINVAL;
		if (n + 1 >= size)
			return -ENOSPC;
		out[n++] = (char)ch;
	}
	if (size == 0)
		return -ENOSPC;
	out[n] = '\0';
	return (int)n;
}

int httpd_path_decode(const char *in, size_t len, char *out, size_t size)
{
	if (!in || !out || len > (size_t)HTTPD_MAX_URI)
		return -EINVAL;
	return decode_into(in, in + len, false, out, size);
}

int httpd_query_get(const char *query, const char *key, char *buf, size_t size)
{
	if (!query || !key || !buf)
		return -EINVAL;
	size_t klen = strlen(key);
	for (const char *p = query; *p;) {
		const char *amp = strchr(p, '&');
		const char *end = amp ? amp : p + strlen(p);
		const char *eq = memchr(p, '=', (size_t)(end - p));
		const char *nend = eq ? eq : end;
		/* compare the decoded name with key without a buffer */
		const char *q = p;
		size_t i = 0;
		bool match = true;
		while (q < nend && match) {
			int ch = decode_char(&q, nend, true);
			match = ch >= 0 && i < klen && (unsigned char)key[i++] == ch;
		}
		if (match && i == klen)
			return eq ? decode_into(eq + 1, end, true, buf, size)
				  : decode_into(end, end, true, buf, size);
		p = amp ? amp + 1 : end;
	}
	return -ENOENT;
}

/* Splits the request target into a decoded path and the raw query. 0, or an HTTP status. */
int httpd_req_split_uri(const char *uri, char **ret_path, char **ret_query)
{
	size_t len = strlen(uri);
	if (len > HTTPD_MAX_URI)
		return 414;
	if (strncasecmp(uri, "http://", 7) == 0 || strncasecmp(uri, "https://", 8) == 0) {
		uri = strchr(uri, ':') + 3; /* absolute form: drop scheme and authority */
		uri += strcspn(uri, "/?#");
	}
	size_t plen = strcspn(uri, "?#");
	if (uri[0] != '/')
		return plen == 0 ? 400 : 404; /* "*" or authority form: no such resource here */
	const char *q = uri[plen] == '?' ? uri + plen + 1 : uri + plen;
	char *path = malloc(plen + 1);
	char *query = strndup(q, strcspn(q, "#"));
	if (!path || !query || httpd_path_decode(uri, plen, path, plen + 1) < 0) {
		free(path);
		free(query);
		return path && query ? 400 : 500;
	}
	*ret_path = path;
	*ret_query = query;
	return 0;
}

bool httpd_req_auth_ok(const char *token, const char *value)
{
	if (!value || strncasecmp(value, "Bearer ", 7) != 0)
		return false;
	value += 7;
	while (*value == ' ')
		value++;
	size_t tl = strlen(token), vl = strlen(value);
	unsigned char diff = tl != vl;
	for (size_t i = 0; i < tl; i++)
		diff |= (unsigned char)token[i] ^ (unsigned char)(i < vl ? value[i] : 0);
	return diff == 0;
}

/* Content-Length: 0 and *ret_len, or an HTTP status. Absent means no body. */
int httpd_req_body_length(const char *cl, const char *te, size_t max, size_t *ret_len)
{
	if (te)
		return 411; /* chunked bodies are not read: small JSON bodies need no streaming */
	*ret_len = 0;
	if (!cl)
		return 0;
	uint64_t v = 0;
	if (*cl == '\0' || strlen(cl) > 19)
		return 400;
	for (const char *p = cl; *p; p++) {
		if (*p < '0' || *p > '9')
			return 400;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (v > max)
		return 413;
	*ret_len = (size_t)v;
	return 0;
}


int httpd_req_error_body(int status, const char *reason, char **ret_body, size_t *ret_len)
{
	struct jsonw *w;
	int rv = jsonw_new(2048, &w);
	if (rv < 0)
		return rv;
	reason = reason ? reason : "";
	jsonw_begin_object(w);
	jsonw_key(w, "error");
	jsonw_string(w, httpd_req_status_text(status));
	jsonw_key(w, "reason");
	jsonw_stringn(w, reason, strnlen(reason, 512));
	jsonw_end_object(w);
	rv = jsonw_take(w, ret_body, ret_len);
	jsonw_free(w);
	return rv;
}

/* Whether a header value may be written as is: no CR, LF or other control characters, which
 * would let a handler's string split the response. */
static bool header_safe(const char *v)
{
	for (; *v; v++)
		if (((unsigned char)*v < 0x20 && *v != '\t') || *v == 0x7f)
			return false;
	return true;
}

int httpd_req_format(const struct httpd_req_resp *r, char **ret_buf, size_t *ret_len)
{
	/* 1xx, 204 and 304 carry no body and no Content-Length (RFC 9110 8.6). */
	bool no_body = r->status < 200 || r->status == 204 || r->status == 304;
	const char *ctype = r->content_type ? r->content_type : "application/json";
	const char *names[] = { "Content-Type", "Server", r->extra_name };
	const char *values[] = { ctype, r->server_name, r->extra_value };
	size_t len = r->body_len;
	if (r->status < 100 || r->status > 999 || (len && !r->body) || len > HTTPD_MAX_BODY_LIMIT)
		return -EINVAL;
	size_t cap = 160 + (no_body || r->head_only ? 0 : len);
	for (size_t i = 0; i < 3; i++) {
		if (!names[i] || !values[i])
			continue;
		if (!header_safe(names[i]) || !header_safe(values[i]))
			return -EINVAL;
		cap += strlen(names[i]) + strlen(values[i]) + 4;
	}
	char *buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	int n = snprintf(buf, cap, "HTTP/1.1 %d %s\r\n", r->status, httpd_req_status_text(r->status));
	for (size_t i = 0; i < 3; i++)
		if (names[i] && values[i])
			n += snprintf(buf + n, cap - (size_t)n, "%s: %s\r\n", names[i], values[i]);
	if (!no_body)
		n += snprintf(buf + n, cap - (size_t)n, "Content-Length: %zu\r\n", len);
	if (r->connection)
		n += snprintf(buf + n, cap - (size_t)n, "Connection: %s\r\n", r->connection);
	n += snprintf(buf + n, cap - (size_t)n, "\r\n");
	if ((size_t)n >= cap) { /* cannot happen: cap counts every part */
		free(buf);
		return -EOVERFLOW;
	}
	size_t total = (size_t)n;
	if (!no_body && !r->head_only && len) {
		memcpy(buf + total, r->body, len);
		total += len;
	}
	*ret_buf = buf;
	*ret_len = total;
	return 0;
}
