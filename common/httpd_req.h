/* httpd_req: the pure request and response text pieces of the HTTP adapter — status texts, URI
 * splitting and percent-decoding, bearer-token comparison, body-length rules, JSON error bodies
 * and response heads. No I/O and no nng types, so they are unit-tested and fuzzed on their own.
 * Internal to httpd (the public API is httpd.h; the request head parser is httpparse.h).
 * Thread-safety: pure functions. */
#ifndef MS_HTTPD_REQ_H
#define MS_HTTPD_REQ_H

#include <stdbool.h>
#include <stddef.h>

const char *httpd_req_status_text(int status);
/* Splits a request target into a percent-decoded path and the raw query (malloc'd, "" if none).
 * Absolute form ("http://host/p") is reduced to its path. Returns 0, or an HTTP status for a bad
 * target (414 too long, 400 malformed or bad escape or %00, 404 not a path such as "*", 500 no
 * memory). */
int httpd_req_split_uri(const char *uri, char **ret_path, char **ret_query);
/* Constant-time check of "Bearer <token>" (scheme case-insensitive). */
bool httpd_req_auth_ok(const char *token, const char *value);
/* From Content-Length / Transfer-Encoding: 0 with *ret_len, or an HTTP status (411 chunked, 400 malformed, 413 over max). */
int httpd_req_body_length(const char *cl, const char *te, size_t max, size_t *ret_len);
/* {"error":"<status text>","reason":"<reason, JSON-escaped, cut at 512 bytes>"} (malloc'd).
 * Returns 0, -ENOMEM. */
int httpd_req_error_body(int status, const char *reason, char **ret_body, size_t *ret_len);

struct httpd_req_resp {
	int status;
	const char *content_type;   /* NULL = application/json */
	const char *server_name;    /* NULL = no Server header */
	const char *extra_name;     /* one more header (Allow, WWW-Authenticate) or NULL */
	const char *extra_value;
	const char *connection;     /* "close", "keep-alive" or NULL = no Connection header */
	const void *body;
	size_t body_len;
	bool head_only;             /* HEAD: Content-Length of the body, but no body */
};
/* Formats a whole HTTP/1.1 response (head and body) into one malloc'd buffer. Header values
 * with control characters are refused. Returns 0, -EINVAL or -ENOMEM. */
int httpd_req_format(const struct httpd_req_resp *r, char **ret_buf, size_t *ret_len);

#endif
