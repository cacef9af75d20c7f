/* rowbinary: see rowbinary.h. */
#include "rowbinary.h"

#include <errno.h>
#include <stdlib.h>

void rowbinary_init(struct rowbinary *rb, size_t max_bytes)
{
	memset(rb, 0, sizeof(*rb));
	rb->max = max_bytes;
}

void rowbinary_release(struct rowbinary *rb)
{
	free(rb->buf);
	memset(rb, 0, sizeof(*rb));
}

void rowbinary_reset(struct rowbinary *rb)
{
	rb->len = 0;
	rb->err = 0;
}

int rowbinary_grow(struct rowbinary *rb, size_t n)
{
	if (rb->err)
		return rb->err;
	if (n > rb->max || rb->len > rb->max - n) {
		rb->err = -ENOSPC;
		return rb->err;
	}
	size_t need = rb->len + n;
	if (need <= rb->cap)
		return 0;
	size_t cap = rb->cap ? rb->cap : 4096;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	if (cap > rb->max)
		cap = rb->max;
	uint8_t *p = realloc(rb->buf, cap);
	if (!p) {
		rb->err = -ENOMEM;
		return rb->err;
	}
	rb->buf = p;
	rb->cap = cap;
	return 0;
}

void rowbinary_uleb128(struct rowbinary *rb, uint64_t v)
{
	uint8_t b[10];
	size_t n = 0;
	do {
		uint8_t byte = v & 0x7f;
		v >>= 7;
		b[n++] = byte | (v ? 0x80 : 0);
	} while (v);
	rowbinary_bytes(rb, b, n);
}

void rowbinary_string(struct rowbinary *rb, const char *s, size_t len)
{
	rowbinary_uleb128(rb, len);
	rowbinary_bytes(rb, s, len);
}

void rowbinary_cstring(struct rowbinary *rb, const char *s, size_t max_len)
{
	rowbinary_string(rb, s, s ? strnlen(s, max_len) : 0);
}

void rowbinary_fixed(struct rowbinary *rb, const void *p, size_t len, size_t n)
{
	if (len > n)
		len = n;
	if ((rb->cap - rb->len < n || rb->err) && rowbinary_grow(rb, n) < 0)
		return;
	if (len)
		memcpy(rb->buf + rb->len, p, len);
	memset(rb->buf + rb->len + len, 0, n - len);
	rb->len += n;
}

void rowbinary_reader_init(struct rowbinary_reader *r, const void *p, size_t len)
{
	r->p = p;
	r->len = p ? len : 0;
	r->off = 0;
	r->err = 0;
}

const uint8_t *rowbinary_get_bytes(struct rowbinary_reader *r, size_t n)
{
	if (r->err || n > r->len - r->off) {
		r->err = -EBADMSG;
		return NULL;
	}
	const uint8_t *p = r->p + r->off;
	r->off += n;
	return p;
}

static uint64_t get_le(struct rowbinary_reader *r, size_t n)
{
	const uint8_t *p = rowbinary_get_bytes(r, n);
	uint64_t v = 0;
	if (!p)
		return 0;
	for (size_t i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

uint8_t rowbinary_get_u8(struct rowbinary_reader *r)
{
	return (uint8_t)get_le(r, 1);
}

uint16_t rowbinary_get_u16(struct rowbinary_reader *r)
{
	return (uint16_t)get_le(r, 2);
}

uint32_t rowbinary_get_u32(struct rowbinary_reader *r)
{
	return (uint32_t)get_le(r, 4);
}

uint64_t rowbinary_get_u64(struct rowbinary_reader *r)
{
	return get_le(r, 8);
}

double rowbinary_get_f64(struct rowbinary_reader *r)
{
	uint64_t u = get_le(r, 8);
	double d;
	memcpy(&d, &u, sizeof(d));
	return d;
}

uint64_t rowbinary_get_uleb128(struct rowbinary_reader *r)
{
	uint64_t v = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		const uint8_t *p = rowbinary_get_bytes(r, 1);
		if (!p)
			return 0;
		/* the 10th byte may carry only the top bit of a u64 */
		if (shift == 63 && (*p & 0x7e)) {
			r->err = -EBADMSG;
			return 0;
		}
		v |= (uint64_t)(*p & 0x7f) << shift;
		if (!(*p & 0x80))
			return v;
	}
	r->err = -EBADMSG;
	return 0;
}

const char *rowbinary_get_string(struct rowbinary_reader *r, size_t max_len, size_t *ret_len)
{
	uint64_t n = rowbinary_get_uleb128(r);
	if (!r->err && n > max_len)
		r->err = -EBADMSG;
	const uint8_t *p = r->err ? NULL : rowbinary_get_bytes(r, (size_t)n);
	*ret_len = p ? (size_t)n : 0;
	return p ? (const char *)p : "";
}
