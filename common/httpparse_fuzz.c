/* Fuzz target for the request head parser (httpparse) and what httpd does with its result:
 * target splitting and percent-decoding, Content-Length rules, field lookups.
 * Input: byte 0 picks the bounds (bits 0-1: max_head default/64/512/4096; bit 2: max_target
 * 32 instead of HTTPD_MAX_URI); the rest is the bytes received on a connection. Checks the
 * contracts (offsets inside the head, prefixes of a good head are incomplete, decoded paths
 * hold no NUL), not just the absence of crashes. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "httpd.h"
#include "httpd_req.h"
#include "httpparse.h"

/* CHECK() vanishes under NDEBUG (RelWithDebInfo); the replay test must still check. */
#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

static const size_t head_bounds[4] = { 0, 64, 512, 4096 };

static void check_parsed(const char *buf, size_t len, size_t max_head,
			 const struct httpparse_req *r)
{
	size_t limit = max_head ? max_head : HTTPPARSE_MAX_HEAD;
	CHECK(r->head_len > 0 && r->head_len <= len && r->head_len <= limit);
	CHECK(r->method[0] && strlen(r->method) <= HTTPPARSE_MAX_METHOD);
	CHECK(r->target_len > 0 && r->target_off + r->target_len < r->head_len);
	CHECK(r->minor == 0 || r->minor == 1);
	CHECK(r->nfields <= HTTPPARSE_MAX_HEADERS);
	for (unsigned i = 0; i < r->nfields; i++) {
		const struct httpparse_field *f = &r->fields[i];
		CHECK(f->name_len > 0 && f->name_off + f->name_len < r->head_len);
		CHECK(f->value_off + f->value_len < r->head_len);
		CHECK(memchr(buf + f->value_off, '\n', f->value_len) == NULL);
		CHECK(memchr(buf + f->value_off, '\r', f->value_len) == NULL);
		char name[64];
		if (f->name_len < sizeof(name)) {
			memcpy(name, buf + f->name_off, f->name_len);
			name[f->name_len] = '\0';
			CHECK(httpparse_field(r, buf, name, NULL) != NULL);
			CHECK(httpparse_count(r, buf, name) >= 1);
		}
	}
}

/* What httpd does with a parsed head, on NUL-terminated copies as httpd makes them. */
static void check_use(const char *buf, const struct httpparse_req *r)
{
	char *head = malloc(r->head_len + 1);
	if (!head)
		abort();
	memcpy(head, buf, r->head_len);
	head[r->head_len] = '\0';
	for (unsigned i = 0; i < r->nfields; i++)
		head[r->fields[i].value_off + r->fields[i].value_len] = '\0';
	head[r->target_off + r->target_len] = '\0';
	char *path = NULL, *query = NULL;
	int st = httpd_req_split_uri(head + r->target_off, &path, &query);
	CHECK(st == 0 || st == 400 || st == 404 || st == 414);
	if (st == 0) {
		CHECK(path[0] == '/' && strlen(path) <= r->target_len);
		CHECK(strlen(query) < r->target_len);
		free(path);
		free(query);
	}
	size_t n = 0;
	const char *cl = httpparse_field(r, head, "Content-Length", NULL);
	const char *te = httpparse_field(r, head, "Transfer-Encoding", NULL);
	st = httpd_req_body_length(cl, te, 1024, &n);
	CHECK((st == 0 && n <= 1024) || st == 400 || st == 411 || st == 413);
	const char *conn = httpparse_field(r, head, "Connection", &n);
	if (conn)
		(void)httpparse_has_token(conn, n, "close");
	free(head);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 3 * HTTPPARSE_MAX_HEAD)
		return 0;
	size_t max_head = head_bounds[data[0] & 3];
	size_t max_target = (data[0] & 4) ? 32 : HTTPD_MAX_URI;
	size_t len = size - 1;
	/* an exact-size heap copy: reads past the input trip ASan */
	char *buf = malloc(len ? len : 1);
	if (!buf)
		abort();
	memcpy(buf, data + 1, len);

	struct httpparse_req r;
	int rv = httpparse_head(buf, len, max_head, max_target, &r);
	CHECK(rv == 0 || rv == -EAGAIN || rv == 400 || rv == 414 || rv == 431 || rv == 501 ||
	      rv == 505);
	if (rv == -EAGAIN)
		CHECK(len < (max_head ? max_head : HTTPPARSE_MAX_HEAD));
	if (rv == 0) {
		check_parsed(buf, len, max_head, &r);
		check_use(buf, &r);
		/* every proper prefix of a good head is merely incomplete */
		size_t head_len = r.head_len;
		for (size_t k = 0; k < head_len; k += 1 + head_len / 8) {
			struct httpparse_req p;
			CHECK(httpparse_head(buf, k, max_head, max_target, &p) == -EAGAIN);
		}
		/* and the same head parses the same with anything after it */
		struct httpparse_req again;
		CHECK(httpparse_head(buf, head_len, max_head, max_target, &again) == 0);
		CHECK(again.head_len == head_len && again.nfields == r.nfields);
	}
	free(buf);
	return 0;
}
