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

struct chhttp {
	CURL *curl;
	struct curl_slist *headers;
	char endpoint[CHHTTP_MAX_ENDPOINT];
	char user[CHHTTP_MAX_CRED];
	char password[CHHTTP_MAX_CRED];
	uint32_t connect_timeout_ms, timeout_ms;
	char curl_err[CURL_ERROR_SIZE];
	struct chhttp_error err;
	/* body being sent */
	const struct chhttp_chunk *chunks;
	size_t nchunks, chunk, chunk_off;
	/* response */
	struct strbuf *out;
	struct strbuf errbody;
	bool overflow;
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
	strbuf_init(&h->errbody, 4096);
	h->curl = curl_easy_init();
	/* an empty Expect header stops curl from waiting for "100 Continue" on big bodies */
	h->headers = curl_slist_append(NULL, "Expect:");
	if (!h->curl || !h->headers) {
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
	if (h->curl)
		curl_easy_cleanup(h->curl);
	curl_slist_free_all(h->headers);
	strbuf_release(&h->errbody);
	explicit_bzero(h->password, sizeof(h->password));
	free(h);
	return NULL;
}

static size_t on_write(char *p, size_t size, size_t nmemb, void *arg)
{
	struct chhttp *h = arg;
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
	struct chhttp *h = arg;
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
	struct chhttp *h = arg;
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

static int perform(struct chhttp *h, const char *url, bool post, bool body)
{
	CURL *c = h->curl;
	memset(&h->err, 0, sizeof(h->err));
	strbuf_release(&h->errbody);
	strbuf_init(&h->errbody, 4096);
	h->overflow = false;
	h->curl_err[0] = 0;
	curl_easy_reset(c); /* keeps the live connection and caches, forgets options */
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->curl_err);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)h->connect_timeout_ms);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)h->timeout_ms);
	curl_easy_setopt(c, CURLOPT_MAXAGE_CONN, CHHTTP_MAX_IDLE_S);
	curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h->headers);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, h);
	if (h->user[0]) {
		curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(c, CURLOPT_USERNAME, h->user);
		curl_easy_setopt(c, CURLOPT_PASSWORD, h->password);
	}
	if (post) {
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_off_t total = 0;
		for (size_t i = 0; body && i < h->nchunks; i++)
			total += (curl_off_t)h->chunks[i].len;
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, total);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(c, CURLOPT_READDATA, h);
		curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(c, CURLOPT_SEEKDATA, h);
	}
	CURLcode rc = curl_easy_perform(c);
	if (h->overflow)
		return -ENOSPC;
	if (rc != CURLE_OK) {
		h->err.transport = true;
		snprintf(h->err.msg, sizeof(h->err.msg), "%s", h->curl_err[0] ? h->curl_err : curl_easy_strerror(rc));
		ms_debug("CH-HTTP", "%s: %s", h->endpoint, h->err.msg);
		return transport_errno(rc);
	}
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (status >= 200 && status < 300)
		return 0;
	h->err.http_status = (int)status;
	const char *b = h->errbody.buf ? h->errbody.buf : "";
	h->err.ch_code = chhttp_parse_code(b, h->errbody.len);
	size_t n = strcspn(b, "\n");
	if (n >= sizeof(h->err.msg))
		n = sizeof(h->err.msg) - 1;
	memcpy(h->err.msg, b, n);
	h->err.msg[n] = 0;
	if (!h->err.msg[0])
		snprintf(h->err.msg, sizeof(h->err.msg), "HTTP %ld", status);
	ms_debug("CH-HTTP", "%s: HTTP %ld: %s", h->endpoint, status, h->err.msg);
	if (status == 401 || status == 403)
		return -EACCES;
	if (status == 404)
		return -ENOENT;
	return -EREMOTEIO;
}

/* "<endpoint>/?query=<escaped>[&settings]" into a malloc'd string. */
static int build_url(struct chhttp *h, const char *sql, const char *settings, char **ret)
{
	char *q = curl_easy_escape(h->curl, sql, 0);
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
	h->out = out;
	h->chunks = NULL;
	h->nchunks = h->chunk = h->chunk_off = 0;
	r = perform(h, url, true, false);
	h->out = NULL;
	free(url);
	return r;
}

int chhttp_insert(struct chhttp *h, const char *query, const struct chhttp_chunk *chunks, size_t n)
{
	char *url;
	int r = build_url(h, query, NULL, &url);
	if (r < 0)
		return r;
	h->out = NULL;
	h->chunks = chunks;
	h->nchunks = n;
	h->chunk = h->chunk_off = 0;
	r = perform(h, url, true, true);
	h->chunks = NULL;
	h->nchunks = 0;
	free(url);
	return r;
}

int chhttp_ping(struct chhttp *h)
{
	char url[CHHTTP_MAX_ENDPOINT + 8];
	snprintf(url, sizeof(url), "%s/ping", h->endpoint);
	struct strbuf sb;
	strbuf_init(&sb, 64);
	h->out = &sb;
	int r = perform(h, url, false, false);
	h->out = NULL;
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
