/* chhttp: the one adapter over libcurl, for ClickHouse's HTTP interface. A connection object
 * keeps one keep-alive TCP connection (reused across requests, re-opened transparently when the
 * server closed it: ClickHouse closes idle connections after 3 s) and runs a query with a text
 * result, or an INSERT whose body is streamed from caller-owned chunks (no concatenation).
 * chhttp_insert_many runs several INSERTs at once over up to `parallel` more keep-alive
 * connections (libcurl multi, still on the caller's thread): ClickHouse parses each INSERT on
 * one core, so concurrent INSERTs are how a batch uses more than one.
 * Credentials come from the caller (read from a config file, never from the command line) and
 * travel as HTTP basic auth. It is not a batcher (chwriter) and not a schema manager.
 * Errors: transport failures (refused, reset, timeout) and server errors are told apart in
 * struct chhttp_error, because the writer retries the first kind forever and the second kind
 * only a bounded number of times.
 * Thread-safety: none per connection (one owner thread); different connections are
 * independent. libcurl's global init runs once, on the first chhttp_new. */
#ifndef MS_CHHTTP_H
#define MS_CHHTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

#define CHHTTP_MAX_ENDPOINT 256
#define CHHTTP_MAX_CRED 256
#define CHHTTP_MAX_RESPONSE (16u << 20) /* query results larger than this are refused */
#define CHHTTP_MAX_PARALLEL 8

struct chhttp_opts {
	const char *endpoint;       /* "http://host:port" or "https://..."; required */
	const char *user;           /* NULL or "" = the server's default user */
	const char *password;       /* NULL = none */
	uint32_t connect_timeout_ms; /* 0 = 2000 */
	uint32_t timeout_ms;        /* whole request; 0 = 60000 */
	uint32_t parallel;          /* connections for chhttp_insert_many; 0 = 1, <= CHHTTP_MAX_PARALLEL */
};

/* The last failure, for metrics and the daemon's one log line. */
struct chhttp_error {
	bool transport;      /* no HTTP answer: refused, reset, timeout, DNS... */
	int http_status;     /* 0 when transport */
	int ch_code;         /* "Code: NN" of ClickHouse's error body; 0 if none */
	char msg[256];       /* first line of the error body or the curl error text */
};

struct chhttp;

/* Returns 0, -EINVAL (no endpoint, over-long strings), -ENOMEM or -EIO (libcurl init). */
int chhttp_new(const struct chhttp_opts *opts, struct chhttp **ret);
struct chhttp *chhttp_free(struct chhttp *h);

/* Runs sql (URL-encoded into ?query=) with extra URL settings ("k=v&k=v" or NULL) and an empty
 * body; the response body goes to out (may be NULL; bounded by out's max and
 * CHHTTP_MAX_RESPONSE). Returns 0, or -ECONNREFUSED/-ETIMEDOUT/-ECONNRESET/-EHOSTUNREACH/-EIO for
 * transport failures, -EACCES (401/403), -ENOENT (404: unknown table or database), -EREMOTEIO
 * (other server errors; the error says which), -ENOSPC (response too large), -ENOMEM. */
int chhttp_query(struct chhttp *h, const char *sql, const char *settings, struct strbuf *out);

/* A piece of an INSERT body. */
struct chhttp_chunk {
	const void *data;
	size_t len;
};

/* POSTs query (e.g. "INSERT INTO db.t (a,b) FORMAT RowBinary") with the concatenation of
 * chunks[0..n) as the body, sent as it is read (Content-Length known up front, no
 * "Expect: 100-continue"). Same returns as chhttp_query. */
int chhttp_insert(struct chhttp *h, const char *query, const struct chhttp_chunk *chunks, size_t n);

/* One INSERT of chhttp_insert_many, with its own outcome. */
struct chhttp_req {
	const char *query;
	const struct chhttp_chunk *chunks;
	size_t nchunks;
	int result;                 /* out: as chhttp_insert returns */
	struct chhttp_error err;    /* out: when result < 0 */
};

/* Runs reqs[0..n) concurrently (n <= parallel), each on its own connection. Returns 0 when
 * all succeeded, else the first failed request's result (every req has its own). Cost: the
 * slowest of them, plus one poll wake-up per network event. */
int chhttp_insert_many(struct chhttp *h, struct chhttp_req *reqs, size_t n);

/* GET /ping: 0 when the server answers "Ok.". */
int chhttp_ping(struct chhttp *h);

/* The last request's failure (zeroed after a success; for chhttp_insert_many the first failed
 * request's). */
void chhttp_last_error(const struct chhttp *h, struct chhttp_error *ret);

/* Reads a password file: the first line, without its newline, into buf. Refuses files that
 * others may read or write (mode & 0007: -EPERM) and non-regular files (-EINVAL); an empty
 * file is an empty password. Returns the length or -errno; -ENAMETOOLONG if it does not fit. */
int chhttp_read_password_file(const char *path, char *buf, size_t len);

/* Parses ClickHouse's "Code: NN, e.displayText() = ..." error body; 0 when absent. */
int chhttp_parse_code(const char *body, size_t len);

#endif
