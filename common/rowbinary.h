/* rowbinary: encoder (and a bounds-checked reader) for ClickHouse's RowBinary input format, the
 * format the ClickHouse writer sends: little-endian fixed-width integers and floats, DateTime as
 * UInt32 seconds, Enum8 as Int8, String as LEB128 length + bytes (LowCardinality(String) is
 * written the same way), FixedString(N) as exactly N bytes, Array as LEB128 count + elements.
 * It is not a schema: the caller writes columns in the order of its INSERT column list.
 * Errors are sticky like strbuf: past max_bytes (or on ENOMEM) the buffer refuses further bytes
 * and rowbinary_error() says why, so a truncated batch is never mistaken for a complete one.
 * Thread-safety: none; one owner. */
#ifndef MS_ROWBINARY_H
#define MS_ROWBINARY_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct rowbinary {
	uint8_t *buf;
	size_t len, cap, max;
	int err;
};

void rowbinary_init(struct rowbinary *rb, size_t max_bytes);
/* Frees the buffer and zeroes rb (reusable after rowbinary_init). */
void rowbinary_release(struct rowbinary *rb);
/* Forgets the content and the error; keeps the allocation. */
void rowbinary_reset(struct rowbinary *rb);
/* Makes room for n more bytes: 0, or the sticky -ENOSPC/-ENOMEM. Doubles the allocation, so
 * appends cost amortised O(1). */
int rowbinary_grow(struct rowbinary *rb, size_t n);

static inline int rowbinary_error(const struct rowbinary *rb)
{
	return rb->err;
}

/* Room for up to n bytes at the end, to fill through the returned pointer and then commit with
 * rowbinary_commit (the fast path of fixed-layout rows: one bound check per row instead of one
 * per field). NULL on the sticky error, or if n more bytes would pass max_bytes. */
static inline uint8_t *rowbinary_room(struct rowbinary *rb, size_t n)
{
	if ((rb->cap - rb->len < n || rb->err) && rowbinary_grow(rb, n) < 0)
		return NULL;
	return rb->buf + rb->len;
}

/* Keeps n bytes written through rowbinary_room's pointer (n <= the room asked for). */
static inline void rowbinary_commit(struct rowbinary *rb, size_t n)
{
	rb->len += n;
}

/* Little-endian stores through a rowbinary_room pointer; each returns the next position. */
static inline uint8_t *rowbinary_put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
	return p + 8;
}

static inline uint8_t *rowbinary_put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
	return p + 4;
}

static inline uint8_t *rowbinary_put_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	return p + 2;
}

static inline uint8_t *rowbinary_put_bytes(uint8_t *p, const void *src, size_t n)
{
	memcpy(p, src, n);
	return p + n;
}

/* Appends n raw bytes (FixedString payload, pre-encoded data). */
static inline void rowbinary_bytes(struct rowbinary *rb, const void *p, size_t n)
{
	/* one branch on the fast path: an error also forces the slow path, which refuses */
	if ((rb->cap - rb->len < n || rb->err) && rowbinary_grow(rb, n) < 0)
		return;
	if (n)
		memcpy(rb->buf + rb->len, p, n);
	rb->len += n;
}

static inline void rowbinary_u64(struct rowbinary *rb, uint64_t v)
{
	uint8_t b[8];
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	rowbinary_bytes(rb, b, 8);
}

static inline void rowbinary_u32(struct rowbinary *rb, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
	rowbinary_bytes(rb, b, 4);
}

static inline void rowbinary_u16(struct rowbinary *rb, uint16_t v)
{
	uint8_t b[2] = { (uint8_t)v, (uint8_t)(v >> 8) };
	rowbinary_bytes(rb, b, 2);
}

static inline void rowbinary_u8(struct rowbinary *rb, uint8_t v)
{
	rowbinary_bytes(rb, &v, 1);
}

static inline void rowbinary_i64(struct rowbinary *rb, int64_t v)
{
	rowbinary_u64(rb, (uint64_t)v);
}

static inline void rowbinary_i32(struct rowbinary *rb, int32_t v)
{
	rowbinary_u32(rb, (uint32_t)v);
}

static inline void rowbinary_i16(struct rowbinary *rb, int16_t v)
{
	rowbinary_u16(rb, (uint16_t)v);
}

/* Enum8 values are their Int8 codes. */
static inline void rowbinary_i8(struct rowbinary *rb, int8_t v)
{
	rowbinary_u8(rb, (uint8_t)v);
}

static inline void rowbinary_f64(struct rowbinary *rb, double v)
{
	uint64_t u;
	memcpy(&u, &v, sizeof(u));
	rowbinary_u64(rb, u);
}

/* DateTime: seconds since the epoch as UInt32 (values past 2106 saturate). */
static inline void rowbinary_datetime(struct rowbinary *rb, uint64_t unix_s)
{
	rowbinary_u32(rb, unix_s > UINT32_MAX ? UINT32_MAX : (uint32_t)unix_s);
}

/* Unsigned LEB128 (string lengths, array counts). */
void rowbinary_uleb128(struct rowbinary *rb, uint64_t v);
/* String: LEB128 length + bytes. */
void rowbinary_string(struct rowbinary *rb, const char *s, size_t len);
/* NUL-terminated string, at most max_len bytes of it (bounded read of fixed arrays). */
void rowbinary_cstring(struct rowbinary *rb, const char *s, size_t max_len);
/* FixedString(n): the first min(len, n) bytes of p, zero-padded to n. */
void rowbinary_fixed(struct rowbinary *rb, const void *p, size_t len, size_t n);

/* A reader over untrusted bytes (spool records, tests). Errors are sticky: a read past the end
 * sets err = -EBADMSG and yields zeros/empty values; check rowbinary_reader_error at the end. */
struct rowbinary_reader {
	const uint8_t *p;
	size_t len, off;
	int err;
};

void rowbinary_reader_init(struct rowbinary_reader *r, const void *p, size_t len);
uint8_t rowbinary_get_u8(struct rowbinary_reader *r);
uint16_t rowbinary_get_u16(struct rowbinary_reader *r);
uint32_t rowbinary_get_u32(struct rowbinary_reader *r);
uint64_t rowbinary_get_u64(struct rowbinary_reader *r);
double rowbinary_get_f64(struct rowbinary_reader *r);
uint64_t rowbinary_get_uleb128(struct rowbinary_reader *r);
/* Points *ret at n bytes inside the input (no copy); NULL and err set when fewer remain. */
const uint8_t *rowbinary_get_bytes(struct rowbinary_reader *r, size_t n);
/* String: length-prefixed; *ret_len gets the length; the result points into the input and is
 * not NUL-terminated. Lengths above max_len are an error (-EBADMSG). */
const char *rowbinary_get_string(struct rowbinary_reader *r, size_t max_len, size_t *ret_len);

static inline int rowbinary_reader_error(const struct rowbinary_reader *r)
{
	return r->err;
}

static inline size_t rowbinary_reader_left(const struct rowbinary_reader *r)
{
	return r->len - r->off;
}

#endif
