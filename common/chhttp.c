/* chhttp: see chhttp.h. */
#include "chhttp.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "log.h"

/* Idle connections older than this are not reused: ClickHouse closes them after 3 s, and a
 * request sent on a connection the server is closing fails with a reset. */
#define CHHTTP_MAX_IDLE_S 2L

/* One connection: a curl easy handle and the state of the request it runs. */
struct conn {
	CURL *curl;
	char curl_err[CURL_ERROR_SIZE];
	const struct chhttp_chunk *chunks; /* body being sent */
	size_t nchunks, chunk, chunk_off;
	struct strbuf *out;                /* response (success) */
	struct strbuf errbody;             /* response (failure), bounded */
	bool overflow;
	struct chhttp_error err;
};

struct chhttp {
	struct curl_slist *headers;
	char endpoint[CHHTTP_MAX_ENDPOINT];
	char user[CHHTTP_MAX_CRED];
	char password[CHHTTP_MAX_CRED];
	uint32_t connect_timeout_ms, timeout_ms, parallel;
	CURLM *multi;                      /* drives conn[1..parallel] for insert_many */
	struct conn conn[CHHTTP_MAX_PARALLEL + 1]; /* [0]: sequential requests */
	struct chhttp_error err;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;

static void global_init(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int chhttp_new(const struct chhttp_opts *o, struct chhttp **ret)
{
	if (!o || !o->endpoint || !o->endpoint[0] || strlen(o->endpoint) >= CHHTTP_MAX_ENDPOINT ||
	    o->parallel > CHHTTP_MAX_PARALLEL ||
	    (o->user && strlen(o->user) >= CHHTTP_MAX_CRED) ||
	    (o->password && strlen(o->password) >= CHHTTP_MAX_CRED))
		return -EINVAL;
	pthread_once(&global_once, global_init);
	if (global_rc != CURLE_OK)
		return -EIO;
	struct chhttp *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	snprintf(h->endpoint, sizeof(h->endpoint), "%s", o->endpoint);
	size_t el = strlen(h->endpoint);
	while (el && h->endpoint[el - 1] == '/')
		h->endpoint[--el] = 0;
	snprintf(h->user, sizeof(h->user), "%s", o->user ? o->user : "");
	snprintf(h->password, sizeof(h->password), "%s", o->password ? o->password : "");
	h->connect_timeout_ms = o->connect_timeout_ms ? o->connect_timeout_ms : 2000;
	h->timeout_ms = o->timeout_ms ? o->timeout_ms : 60000;
	h->parallel = o->parallel ? o->parallel : 1;
	/* an empty Expect header stops curl from waiting for "100 Continue" on big bodies */
	h->headers = curl_slist_append(NULL, "Expect:");
	h->multi = curl_multi_init();
	bool ok = h->headers && h->multi;
	for (uint32_t i = 0; i <= h->parallel; i++) {
		strbuf_init(&h->conn[i].errbody, 4096);
		ok &= (h->conn[i].curl = curl_easy_init()) != NULL;
	}
	if (!ok) {
		chhttp_free(h);
		return -ENOMEM;
	}
	*ret = h;
	return 0;
}

struct chhttp *chhttp_free(struct chhttp *h)
{
	if (!h)
		return NULL;
	for (uint32_t i = 0; i <= CHHTTP_MAX_PARALLEL; i++) {
		if (h->conn[i].curl)
			curl_easy_cleanup(h->conn[i].curl);
		strbuf_release(&h->conn[i].errbody);
	}
	if (h->multi)
		curl_multi_cleanup(h->multi);
	curl_slist_free_all(h->headers);
	explicit_bzero(h->password, sizeof(h->password));
	free(h);
	return NULL;
}

static size_t on_write(char *p, size_t size, size_t nmemb, void *arg)
{
	struct conn *h = arg;
	size_t n = size * nmemb;
	long status = 0;
	curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status >= 300) {
		/* error bodies are kept (bounded) for the message; the rest is discarded */
		if (h->errbody.len < 4000)
			strbuf_append(&h->errbody, p, n < 4000 - h->errbody.len ? n : 4000 - h->errbody.len);
		return n;
	}
	if (!h->out)
		return n;
	if (h->out->len + n > CHHTTP_MAX_RESPONSE || strbuf_append(h->out, p, n) < 0) {
		h->overflow = true;
		return 0; /* aborts the transfer */
	}
	return n;
}

static size_t on_read(char *dst, size_t size, size_t nmemb, void *arg)
{
	struct conn *h = arg;
	size_t room = size * nmemb, done = 0;
	while (done < room && h->chunk < h->nchunks) {
		const struct chhttp_chunk *c = &h->chunks[h->chunk];
		size_t n = c->len - h->chunk_off;
		if (n > room - done)
			n = room - done;
		memcpy(dst + done, (const uint8_t *)c->data + h->chunk_off, n);
		done += n;
		h->chunk_off += n;
		if (h->chunk_off == c->len) {
			h->chunk++;
			h->chunk_off = 0;
		}
	}
	return done;
}

/* curl may rewind the body when it re-sends on a fresh connection (reused one was dead) */
static int on_seek(void *arg, curl_off_t off, int origin)
{
	struct conn *h = arg;
	if (origin != SEEK_SET || off < 0)
		return CURL_SEEKFUNC_CANTSEEK;
	h->chunk = 0;
	h->chunk_off = 0;
	curl_off_t left = off;
	while (h->chunk < h->nchunks && left >= (curl_off_t)h->chunks[h->chunk].len) {
		left -= (curl_off_t)h->chunks[h->chunk].len;
		h->chunk++;
	}
	if (left && h->chunk == h->nchunks)
		return CURL_SEEKFUNC_FAIL;
	h->chunk_off = (size_t)left;
	return CURL_SEEKFUNC_OK;
}

int chhttp_parse_code(const char *body, size_t len)
{
	static const char tag[] = "Code: ";
	if (!body || len < sizeof(tag) - 1 || memcmp(body, tag, sizeof(tag) - 1) != 0)
		return 0;
	int code = 0;
	for (size_t i = sizeof(tag) - 1; i < len && isdigit((unsigned char)body[i]) && code < 100000; i++)
		code = code * 10 + (body[i] - '0');
	return code;
}

static int transport_errno(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return -EHOSTUNREACH;
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
		return -ECONNRESET;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	default:
		return -EIO;
	}
}

/* Prepares connection c for one request. */
static void setup(struct chhttp *h, struct conn *k, const char *url, bool post)
{
	CURL *c = k->curl;
	memset(&k->err, 0, sizeof(k->err));
	strbuf_release(&k->errbody);
	strbuf_init(&k->errbody, 4096);
	k->overflow = false;
	k->curl_err[0] = 0;
	k->chunk = k->chunk_off = 0;
	curl_easy_reset(c); /* keeps the live connection and caches, forgets options */
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, k->curl_err);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)h->connect_timeout_ms);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)h->timeout_ms);
	curl_easy_setopt(c, CURLOPT_MAXAGE_CONN, CHHTTP_MAX_IDLE_S);
	curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h->headers);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, k);
	curl_easy_setopt(c, CURLOPT_PRIVATE, k);
	if (h->user[0]) {
		curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(c, CURLOPT_USERNAME, h->user);
		curl_easy_setopt(c, CURLOPT_PASSWORD, h->password);
	}
	if (post) {
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_off_t total = 0;
		for (size_t i = 0; i < k->nchunks; i++)
			total += (curl_off_t)k->chunks[i].len;
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, total);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(c, CURLOPT_READDATA, k);
		curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(c, CURLOPT_SEEKDATA, k);
	}
}

/* The outcome of connection c's finished request: 0 or -errno, details in c->err. */
static int finish(struct chhttp *h, struct conn *k, CURLcode rc)
{
	if (k->overflow)
		return -ENOSPC;
	if (rc != CURLE_OK) {
		k->err.transport = true;
		snprintf(k->err.msg, sizeof(k->err.msg), "%s", k->curl_err[0] ? k->curl_err : curl_easy_strerror(rc));
		ms_debug("CH-HTTP", "%s: %s", h->endpoint, k->err.msg);
		return transport_errno(rc);
	}
	long status = 0;
	curl_easy_getinfo(k->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status >= 200 && status < 300)
		return 0;
	k->err.http_status = (int)status;
	const char *b = k->errbody.buf ? k->errbody.buf : "";
	k->err.ch_code = chhttp_parse_code(b, k->errbody.len);
	size_t n = strcspn(b, "\n");
	if (n >= sizeof(k->err.msg))
		n = sizeof(k->err.msg) - 1;
	memcpy(k->err.msg, b, n);
	k->err.msg[n] = 0;
	if (!k->err.msg[0])
		snprintf(k->err.msg, sizeof(k->err.msg), "HTTP %ld", status);
	ms_debug("CH-HTTP", "%s: HTTP %ld: %s", h->endpoint, status, k->err.msg);
	if (status == 401 || status == 403)
		return -EACCES;
	if (status == 404)
		return -ENOENT;
	return -EREMOTEIO;
}

/* One request on connection 0 with the easy interface. */
static int perform(struct chhttp *h, const char *url, bool post, const struct chhttp_chunk *chunks, size_t n,
		   struct strbuf *out)
{
	struct conn *k = &h->conn[0];
	k->chunks = chunks;
	k->nchunks = n;
	k->out = out;
	setup(h, k, url, post);
	int r = finish(h, k, curl_easy_perform(k->curl));
	h->err = k->err;
	k->chunks = NULL;
	k->nchunks = 0;
	k->out = NULL;
	return r;
}

/* "<endpoint>/?query=<escaped>[&settings]" into a malloc'd string. */
static int build_url(struct chhttp *h, const char *sql, const char *settings, char **ret)
{
	char *q = curl_easy_escape(h->conn[0].curl, sql, 0);
	if (!q)
		return -ENOMEM;
	size_t n = strlen(h->endpoint) + strlen(q) + (settings ? strlen(settings) : 0) + 16;
	char *url = malloc(n);
	if (!url) {
		curl_free(q);
		return -ENOMEM;
	}
	snprintf(url, n, "%s/?query=%s%s%s", h->endpoint, q, settings && settings[0] ? "&" : "",
		 settings ? settings : "");
	curl_free(q);
	*ret = url;
	return 0;
}

int chhttp_query(struct chhttp *h, const char *sql, const char *settings, struct strbuf *out)
{
	char *url;
	int r = build_url(h, sql, settings, &url);
	if (r < 0)
		return r;
	r = perform(h, url, true, NULL, 0, out);
	free(url);
	return r;
}

int chhttp_insert(struct chhttp *h, const char *query, const struct chhttp_chunk *chunks, size_t n)
{
	char *url;
	int r = build_url(h, query, NULL, &url);
	if (r < 0)
		return r;
	r = perform(h, url, true, chunks, n, NULL);
	free(url);
	return r;
}

int chhttp_insert_many(struct chhttp *h, struct chhttp_req *reqs, size_t n)
{
	if (n > h->parallel)
		return -EINVAL;
	char *urls[CHHTTP_MAX_PARALLEL] = { NULL };
	int r = 0;
	size_t added = 0;
	for (size_t i = 0; i < n; i++) {
		reqs[i].result = -EIO;
		memset(&reqs[i].err, 0, sizeof(reqs[i].err));
	}
	for (size_t i = 0; i < n && r == 0; i++) {
		struct conn *k = &h->conn[1 + i];
		if ((r = build_url(h, reqs[i].query, NULL, &urls[i])) < 0)
			break;
		k->chunks = reqs[i].chunks;
		k->nchunks = reqs[i].nchunks;
		k->out = NULL;
		setup(h, k, urls[i], true);
		if (curl_multi_add_handle(h->multi, k->curl) != CURLM_OK) {
			r = -ENOMEM;
			break;
		}
		added++;
	}
	int running = (int)added;
	while (r == 0 && running > 0) {
		if (curl_multi_perform(h->multi, &running) != CURLM_OK) {
			r = -EIO;
			break;
		}
		if (running)
			curl_multi_poll(h->multi, NULL, 0, 1000, NULL);
	}
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(h->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		for (size_t i = 0; i < added; i++)
			if (h->conn[1 + i].curl == m->easy_handle) {
				reqs[i].result = finish(h, &h->conn[1 + i], m->data.result);
				reqs[i].err = h->conn[1 + i].err;
			}
	}
	memset(&h->err, 0, sizeof(h->err));
	for (size_t i = 0; i < added; i++) {
		curl_multi_remove_handle(h->multi, h->conn[1 + i].curl);
		h->conn[1 + i].chunks = NULL;
		h->conn[1 + i].nchunks = 0;
		if (r == 0 && reqs[i].result < 0) {
			r = reqs[i].result;
			h->err = reqs[i].err;
		}
	}
	for (size_t i = 0; i < n; i++)
		free(urls[i]);
	return r;
}

int chhttp_ping(struct chhttp *h)
{
	char url[CHHTTP_MAX_ENDPOINT + 8];
	snprintf(url, sizeof(url), "%s/ping", h->endpoint);
	struct strbuf sb;
	strbuf_init(&sb, 64);
	int r = perform(h, url, false, NULL, 0, &sb);
	if (r == 0 && (!sb.buf || strncmp(sb.buf, "Ok", 2) != 0))
		r = -EPROTO;
	strbuf_release(&sb);
	return r;
}

void chhttp_last_error(const struct chhttp *h, struct chhttp_error *ret)
{
	*ret = h->err;
}

int chhttp_read_password_file(const char *path, char *buf, size_t len)
{
	if (!path || !buf || !len)
		return -EINVAL;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	struct stat st;
	int r = 0;
	if (fstat(fd, &st) < 0)
		r = -errno;
	else if (!S_ISREG(st.st_mode))
		r = -EINVAL;
	else if (st.st_mode & 0007)
		r = -EPERM;
	else if ((uint64_t)st.st_size >= len)
		r = -ENAMETOOLONG;
	ssize_t n = 0;
	if (r == 0) {
		n = read(fd, buf, len - 1);
		if (n < 0)
			r = -errno;
	}
	close(fd);
	if (r < 0)
		return r;
	buf[n] = 0;
	size_t l = strcspn(buf, "\r\n");
	buf[l] = 0;
	return (int)l;
}
