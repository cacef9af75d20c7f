/* chbatch: the serialized form of one ClickHouse writer round — up to CHBATCH_MAX_SECTIONS table
 * sections of RowBinary rows — as stored in the writer's on-disk spool while ClickHouse is away.
 * Each record names its tables and column lists, so a record spooled before a schema migration
 * still inserts after it (the columns it names keep existing). Pure encoding and validated
 * parsing; no I/O. Spool records are untrusted input: the parser checks every length and only
 * accepts plain identifiers, so a tampered record cannot smuggle SQL into the INSERT query.
 * Thread-safety: stateless functions.
 *
 * Format (little-endian):
 *   u32 magic 0x5743534d ("MSCW"), u8 version (1), u8 reserved (0), u16 nsections (1..64)
 *   per section: String table (identifier, <= 64 bytes), String columns (comma-separated
 *   identifiers, <= 4096 bytes), u64 rows, u64 len, len bytes of RowBinary rows
 * with String = LEB128 length + bytes (rowbinary.h). Nothing may follow the last section. */
#ifndef MS_CHBATCH_H
#define MS_CHBATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chhttp.h"
#include "rowbinary.h"

#define CHBATCH_MAGIC 0x5743534du
#define CHBATCH_VERSION 1
#define CHBATCH_MAX_SECTIONS 64
#define CHBATCH_MAX_NAME 64
#define CHBATCH_MAX_COLUMNS 4096

struct chbatch_section {
	const char *table;       /* points into the record; not NUL-terminated */
	size_t table_len;
	const char *columns;
	size_t columns_len;
	uint64_t rows;
	const uint8_t *data;
	size_t len;
};

/* Writes the header; sections follow with chbatch_encode_section. Errors are rowbinary's
 * sticky errors (check rowbinary_error(out) at the end). */
void chbatch_encode_header(struct rowbinary *out, uint16_t nsections);
/* Appends a section whose rows are the concatenation of chunks[0..n). */
void chbatch_encode_section(struct rowbinary *out, const char *table, const char *columns, uint64_t rows,
			    const struct chhttp_chunk *chunks, size_t n);

/* Parses and validates a record: fills ret[0..*ret_n). Returns 0 or -EBADMSG (any violation
 * of the format above), -EINVAL (NULL arguments). Never reads outside buf. */
int chbatch_parse(const void *buf, size_t len, struct chbatch_section ret[CHBATCH_MAX_SECTIONS],
		  uint32_t *ret_n);

/* A table name: 1..CHBATCH_MAX_NAME of [A-Za-z0-9_], not starting with a digit. */
bool chbatch_valid_table(const char *s, size_t len);
/* A column list: comma-separated names of [A-Za-z0-9_.] (Nested columns have dots), no
 * spaces, no empty names, 1..CHBATCH_MAX_COLUMNS bytes. */
bool chbatch_valid_columns(const char *s, size_t len);

#endif
