/* httpd_req: the pure request-parsing pieces of the HTTP adapter — status texts, URI splitting
 * and percent-decoding, bearer-token comparison, body-length rules. No I/O and no nng types, so
 * they are unit-tested and fuzzed on their own. Internal to httpd.c (the public API is httpd.h).
 * Thread-safety: pure functions. */
#ifndef MS_HTTPD_REQ_H
#define MS_HTTPD_REQ_H

#include <stdbool.h>
#include <stddef.h>

const char *httpd_req_status_text(int status);
/* Splits a request target into a percent-decoded path and the raw query (malloc'd, "" if none).
 * Returns 0, or an HTTP status for a bad target (414 too long, 400 malformed, 500 no memory). */
int httpd_req_split_uri(const char *uri, char **ret_path, char **ret_query);
/* Constant-time check of "Bearer <token>" (scheme case-insensitive). */
bool httpd_req_auth_ok(const char *token, const char *value);
/* From Content-Length / Transfer-Encoding: 0 with *ret_len, or an HTTP status (411 chunked, 400 malformed, 413 over max). */
int httpd_req_body_length(const char *cl, const char *te, size_t max, size_t *ret_len);

#endif
