/* Fuzz target for httpd's request-text helpers: query lookup and path decoding.
 * Input: byte 0 picks the key length (0..7) and output sizes; the key follows; the rest is the
 * query string or path. Checks the contracts, not just the absence of crashes. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "httpd.h"

/* CHECK() vanishes under NDEBUG (RelWithDebInfo); the replay test must still check. */
#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 16384)
		return 0;
	size_t klen = data[0] & 7u;
	size_t small = 1 + (data[0] >> 3);
	if (size < 1 + klen)
		return 0;
	char key[8];
	memcpy(key, data + 1, klen);
	key[klen] = '\0';
	size_t qlen = size - 1 - klen;
	char *q = malloc(qlen + 1);
	char *out = malloc(qlen + 1);
	char tiny[32];
	if (!q || !out)
		abort();
	memcpy(q, data + 1 + klen, qlen);
	q[qlen] = '\0';

	int rv = httpd_query_get(q, key, out, qlen + 1);
	CHECK(rv == -ENOENT || rv == -EINVAL || (rv >= 0 && (size_t)rv <= qlen &&
						  strlen(out) == (size_t)rv));
	rv = httpd_query_get(q, key, tiny, small);
	CHECK(rv < 0 || ((size_t)rv < small && strlen(tiny) == (size_t)rv));

	rv = httpd_path_decode(q, qlen, out, qlen + 1);
	CHECK(rv == -EINVAL || (rv >= 0 && strlen(out) == (size_t)rv));
	rv = httpd_path_decode(q, qlen, tiny, small);
	CHECK(rv == -EINVAL || rv == -ENOSPC || (rv >= 0 && (size_t)rv < small));

	free(q);
	free(out);
	return 0;
}
