/* listenpolicy: the rule that a control surface listens beyond loopback only when callers must
 * authenticate. It answers "is this bind address / nng URL loopback-only?" (names resolved once,
 * at start-up: every address a name resolves to must be loopback) and formats the operator's
 * error. It is not a firewall and does not check tokens (httpd.h and rpc.h do).
 * Thread-safety: stateless; getaddrinfo(3) may block on a name lookup. */
#ifndef MS_LISTENPOLICY_H
#define MS_LISTENPOLICY_H

#include <stdbool.h>
#include <stddef.h>

/* True when host ("127.0.0.1", "::1", "[::1]", "localhost", ...) only reaches this machine.
 * Wildcards ("", "0.0.0.0", "::", "*") and unresolvable names are not loopback. */
bool listenpolicy_host_is_loopback(const char *host);

/* True when an nng URL listens on this machine only: ipc://, inproc://, abstract://, or a
 * tcp/tls+tcp/ws URL whose host is loopback. */
bool listenpolicy_url_is_loopback(const char *url);

/* Checks one surface: returns 0 when the address is loopback or authenticated is true, else
 * -EPERM with "<what> <addr> is not loopback: refusing to serve it without <need>" in msg. */
int listenpolicy_check(const char *what, const char *addr, bool is_url, bool authenticated, const char *need,
		       char *msg, size_t len);

#endif
