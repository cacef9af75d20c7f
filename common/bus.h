/* bus: the one adapter over nng 1.5.2's REQ/REP protocol for the fleet wire (STACK.md §2). An
 * agent holds a REQ dialer with N contexts, so N requests are in flight at once and the round
 * trip does not limit throughput; each request has its own timeout and the dialer reconnects
 * with backoff. The coordinator holds a REP listener with K contexts whose requests go to a
 * handler that may answer later from any thread. tcp://, ipc:// and tls+tcp:// (server
 * certificate always verified by clients; client certificates required when the listener has
 * a CA: mutual TLS). Size limits are enforced on both sides; nng errors become negative errno.
 * It is not a framing or retry layer: payloads are opaque bytes, and a request that fails is
 * reported once to the caller, who decides what to do with it.
 *
 * nng behaviour worth knowing (measured, STACK.md §2): REQ re-sends a request whose pipe
 * dropped before the reply (at-least-once; receivers deduplicate); a message over the
 * listener's max_recv_bytes is dropped by nng and the connection closed, which the sender only
 * sees as its timeout, so senders must check sizes first.
 *
 * Thread-safety: bus_req_send/idle/connected from any thread. Reply callbacks run on nng
 * threads, one per request, and must not block (take a short lock, queue, return); the
 * request's context becomes free for bus_req_send only after its callback returns. REP handler
 * calls also run on nng threads; bus_call_reply/drop may be called from any thread, once per
 * call. */
#ifndef MS_BUS_H
#define MS_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BUS_MAX_CONTEXTS 256
#define BUS_DEFAULT_CONTEXTS 8
#define BUS_DEFAULT_TIMEOUT_MS 10000u
#define BUS_DEFAULT_MAX_MSG (4u << 20)
#define BUS_PEM_MAX (1u << 20) /* largest certificate / key file read */

/* TLS material for tls+tcp:// URLs (ignored for tcp:// and ipc://). Paths to PEM files. */
struct bus_tls {
	const char *ca_file;   /* client: CA of the server (required for tls+tcp); server: CA of
				* client certificates — set means mutual TLS is required */
	const char *cert_file; /* our certificate (server: required; client: for mutual TLS) */
	const char *key_file;  /* its private key (unencrypted) */
	const char *server_name; /* client: name expected in the server certificate (default:
				  * the URL's host) */
};

/* ------------------------------------------------------------------ REQ (agents) */

struct bus_req_opts {
	const char *url;
	uint32_t contexts;          /* requests in flight at once; 0 = BUS_DEFAULT_CONTEXTS */
	uint32_t timeout_ms;        /* per request, send + reply; 0 = BUS_DEFAULT_TIMEOUT_MS */
	uint32_t reconnect_min_ms;  /* 0 = 100 */
	uint32_t reconnect_max_ms;  /* backoff cap; 0 = 5000 */
	uint32_t resend_ms;         /* REQ re-send of an unanswered request; 0 = timeout_ms / 2 */
	size_t max_send_bytes;      /* larger requests get -EMSGSIZE; 0 = BUS_DEFAULT_MAX_MSG */
	size_t max_recv_bytes;      /* larger replies are dropped by nng; 0 = 64 KiB */
	struct bus_tls tls;
};

/* Called once per request with err 0 and the reply (valid only during the call), or with a
 * negative errno: -ETIMEDOUT (no reply in time: the request may or may not have been
 * processed), -ECANCELED (bus_req_free), -EMSGSIZE, -ECONNRESET, -EIO... */
typedef void (*bus_reply_fn)(void *arg, uint64_t tag, int err, const void *reply, size_t len);

struct bus_req;

/* Starts dialing in the background (returns at once even when nobody listens yet).
 * Returns 0, -EINVAL (bad URL or options, tls+tcp without ca_file), -ENOENT/-EACCES (PEM
 * files), -ENOMEM or another translated nng error. */
int bus_req_new(const struct bus_req_opts *opts, bus_reply_fn fn, void *arg, struct bus_req **ret);
/* Cancels every request in flight (their callbacks run with -ECANCELED before this returns),
 * closes the socket, frees. NULL-safe; returns NULL. */
struct bus_req *bus_req_free(struct bus_req *b);

/* Sends a copy of data[0..len) on an idle context; fn(arg, tag, ...) reports the outcome.
 * Returns 0, -EBUSY (every context busy), -EMSGSIZE (over max_send_bytes), -ENOMEM. */
int bus_req_send(struct bus_req *b, uint64_t tag, const void *data, size_t len);
/* Contexts free for bus_req_send. */
uint32_t bus_req_idle(struct bus_req *b);
/* True while at least one connection to the listener is up. */
bool bus_req_connected(struct bus_req *b);

/* ------------------------------------------------------------------ REP (coordinator) */

struct bus_rep_opts {
	const char *url;            /* tcp://host:port (port 0 = any), ipc://path, tls+tcp://... */
	uint32_t contexts;          /* requests being handled at once; 0 = 16 */
	size_t max_recv_bytes;      /* nng drops larger messages; 0 = BUS_DEFAULT_MAX_MSG */
	struct bus_tls tls;
};

struct bus_rep;
struct bus_call;

/* Where a request came from. */
struct bus_peer {
	char addr[64];              /* "ip:port", "ipc" or "" */
	bool tls;                   /* came over TLS */
	bool tls_verified;          /* the client presented a certificate the CA verified */
};

/* A request: data stays valid until the call is answered. The handler must answer every call
 * exactly once, now or later, from any thread, with bus_call_reply or bus_call_drop. */
typedef void (*bus_request_fn)(void *arg, struct bus_call *call, const void *data, size_t len);

int bus_rep_new(const struct bus_rep_opts *opts, bus_request_fn fn, void *arg, struct bus_rep **ret);
/* Stops listening and receiving: no handler call starts after it returns. Calls already
 * handed out may still be answered (their replies go nowhere). Idempotent. */
void bus_rep_close(struct bus_rep *b);
/* Frees. Every call handed to the handler must have been answered first. NULL-safe. */
struct bus_rep *bus_rep_free(struct bus_rep *b);
/* The bound TCP port (useful with port 0), 0 for ipc. */
uint16_t bus_rep_port(struct bus_rep *b);

void bus_call_peer(const struct bus_call *c, struct bus_peer *ret);
/* Sends a copy of data as the reply and consumes the call. -ENOMEM (the call is then dropped). */
int bus_call_reply(struct bus_call *c, const void *data, size_t len);
/* Consumes the call without replying: the requester times out or its REQ re-sends. */
void bus_call_drop(struct bus_call *c);

/* Translates an nng error code to a negative errno (exposed for tests). */
int bus_errno(int nng_err);

#endif
