/* httpparse: a pure, bounded parser of one HTTP/1.x request head (request line and header
 * fields) held in a caller's buffer. It does no I/O, allocates nothing and never reads past
 * the length it is given; it is not a general HTTP library (no chunked bodies, no responses,
 * no obs-fold, no HTTP/0.9 or 2). Percent-decoding of the target lives in httpd_req.
 * Thread-safety: pure functions over caller-owned memory. */
#ifndef MS_HTTPPARSE_H
#define MS_HTTPPARSE_H

#include <stdbool.h>
#include <stddef.h>

#define HTTPPARSE_MAX_HEAD 16384   /* request line + header fields + blank line */
#define HTTPPARSE_MAX_HEADERS 64   /* more header fields get 431 */
#define HTTPPARSE_MAX_METHOD 15    /* longer methods get 501 */

struct httpparse_field {
	size_t name_off, name_len;   /* offsets into the parsed buffer */
	size_t value_off, value_len; /* value without surrounding blanks */
};

struct httpparse_req {
	char method[HTTPPARSE_MAX_METHOD + 1];
	size_t target_off, target_len;
	int minor;                   /* HTTP/1.<minor>: 0 or 1 */
	size_t skipped;              /* blank lines skipped before the request line */
	size_t head_len;             /* bytes of the head including the blank line (and skipped) */
	unsigned nfields;
	struct httpparse_field fields[HTTPPARSE_MAX_HEADERS];
};

/* Parses the head at buf[0..len). Lines end in LF with an optional CR before it. Returns 0 with
 * *ret_req filled (buf[head_len..] is the start of the body or the next request), -EAGAIN when
 * the head is incomplete and may still fit in max_head bytes (max_head 0 or above
 * HTTPPARSE_MAX_HEAD means HTTPPARSE_MAX_HEAD), or the HTTP status to answer for a bad head:
 * 400 malformed, 414 target longer than max_target, 431 head or header count over its bound,
 * 501 method too long, 505 not HTTP/1.x. */
int httpparse_head(const char *buf, size_t len, size_t max_head, size_t max_target,
		   struct httpparse_req *ret_req);

/* The value of the first field called name (case-insensitive) as a pointer into buf and
 * *ret_len, or NULL when absent. */
const char *httpparse_field(const struct httpparse_req *req, const char *buf, const char *name,
			    size_t *ret_len);

/* How many fields are called name (to refuse repeated Content-Length and the like). */
unsigned httpparse_count(const struct httpparse_req *req, const char *buf, const char *name);

/* Whether a comma-separated field value holds token (case-insensitive), e.g. "close" in
 * "Connection: keep-alive, close". */
bool httpparse_has_token(const char *value, size_t len, const char *token);

#endif
