/* chbatch: see chbatch.h. */
#include "chbatch.h"

#include <errno.h>
#include <string.h>

static bool ident_char(char c, bool dot)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
	       (dot && c == '.');
}

bool chbatch_valid_table(const char *s, size_t len)
{
	if (!s || len == 0 || len > CHBATCH_MAX_NAME || (s[0] >= '0' && s[0] <= '9'))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!ident_char(s[i], false))
			return false;
	return true;
}

bool chbatch_valid_columns(const char *s, size_t len)
{
	if (!s || len == 0 || len > CHBATCH_MAX_COLUMNS)
		return false;
	size_t name = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == ',') {
			if (!name)
				return false;
			name = 0;
		} else if (ident_char(s[i], true)) {
			name++;
		} else {
			return false;
		}
	}
	return name > 0;
}

void chbatch_encode_header(struct rowbinary *out, uint16_t nsections)
{
	rowbinary_u32(out, CHBATCH_MAGIC);
	rowbinary_u8(out, CHBATCH_VERSION);
	rowbinary_u8(out, 0);
	rowbinary_u16(out, nsections);
}

void chbatch_encode_section(struct rowbinary *out, const char *table, const char *columns, uint64_t rows,
			    const struct chhttp_chunk *chunks, size_t n)
{
	uint64_t len = 0;
	for (size_t i = 0; i < n; i++)
		len += chunks[i].len;
	rowbinary_cstring(out, table, CHBATCH_MAX_NAME);
	rowbinary_cstring(out, columns, CHBATCH_MAX_COLUMNS);
	rowbinary_u64(out, rows);
	rowbinary_u64(out, len);
	/* reserve once so a large section costs one realloc at most */
	if (len <= SIZE_MAX && rowbinary_grow(out, (size_t)len) < 0)
		return;
	for (size_t i = 0; i < n; i++)
		rowbinary_bytes(out, chunks[i].data, chunks[i].len);
}

int chbatch_parse(const void *buf, size_t len, struct chbatch_section ret[CHBATCH_MAX_SECTIONS], uint32_t *ret_n)
{
	if (!ret || !ret_n || (!buf && len))
		return -EINVAL;
	struct rowbinary_reader r;
	rowbinary_reader_init(&r, buf, len);
	uint32_t magic = rowbinary_get_u32(&r);
	uint8_t version = rowbinary_get_u8(&r);
	uint8_t reserved = rowbinary_get_u8(&r);
	uint16_t n = rowbinary_get_u16(&r);
	if (r.err || magic != CHBATCH_MAGIC || version != CHBATCH_VERSION || reserved != 0 || n == 0 ||
	    n > CHBATCH_MAX_SECTIONS)
		return -EBADMSG;
	for (uint32_t i = 0; i < n; i++) {
		struct chbatch_section *s = &ret[i];
		s->table = rowbinary_get_string(&r, CHBATCH_MAX_NAME, &s->table_len);
		s->columns = rowbinary_get_string(&r, CHBATCH_MAX_COLUMNS, &s->columns_len);
		s->rows = rowbinary_get_u64(&r);
		uint64_t dl = rowbinary_get_u64(&r);
		if (r.err || dl > rowbinary_reader_left(&r))
			return -EBADMSG;
		s->len = (size_t)dl;
		s->data = rowbinary_get_bytes(&r, s->len);
		/* every RowBinary row is at least one byte, so rows > len is impossible */
		if (r.err || !chbatch_valid_table(s->table, s->table_len) ||
		    !chbatch_valid_columns(s->columns, s->columns_len) || s->rows > s->len || (s->rows == 0) != (s->len == 0))
			return -EBADMSG;
	}
	if (rowbinary_reader_left(&r) != 0)
		return -EBADMSG;
	*ret_n = n;
	return 0;
}
