/* jsonw: JSON writer into a bounded growable buffer (status endpoint, window export as JSON
 * lines) with automatic commas, string escaping and structural checks. It is not a parser
 * (see json.h) and not a pretty-printer: output is compact, one line per top-level value.
 * Errors are sticky: the first one (-ENOSPC over the size limit, -ENOMEM, -EINVAL misuse such
 * as a value where a key is expected) is kept, later calls do nothing, and the result is refused,
 * so a truncated document is never presented as a success.
 * Thread-safety: none; one writer per thread. */
#ifndef MS_JSONW_H
#define MS_JSONW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "json.h"

/* Nesting bound of the writer; equal to the parser's cap so any parsed document can be written. */
#define JSONW_MAX_DEPTH JSON_DEPTH_CAP

struct jsonw;

/* max_bytes bounds the output (the NUL terminator kept after it is not counted); > 0. Memory
 * grows by doubling up to it. Returns 0, -EINVAL or -ENOMEM. */
int jsonw_new(size_t max_bytes, struct jsonw **ret_w);
/* NULL-safe; returns NULL. */
struct jsonw *jsonw_free(struct jsonw *w);
/* Empties the output and clears the error, keeping the allocation (one writer per request). */
void jsonw_reset(struct jsonw *w);

/* Every function below returns 0 or the sticky error. Inside an object, a value must follow
 * jsonw_key; at the top level only one value may be written before jsonw_newline. */
int jsonw_begin_object(struct jsonw *w);
int jsonw_end_object(struct jsonw *w);
int jsonw_begin_array(struct jsonw *w);
int jsonw_end_array(struct jsonw *w);
int jsonw_key(struct jsonw *w, const char *key);
int jsonw_keyn(struct jsonw *w, const char *key, size_t len);
/* Strings are escaped: '"', '\\', control characters and DEL; valid UTF-8 is kept as is, each
 * byte of an invalid sequence becomes U+FFFD. NULL is written as null. */
int jsonw_string(struct jsonw *w, const char *s);
int jsonw_stringn(struct jsonw *w, const char *s, size_t len);
int jsonw_i64(struct jsonw *w, int64_t v);
int jsonw_u64(struct jsonw *w, uint64_t v);
/* Shortest text that reads back as the same double; NaN and infinities are written as null
 * (JSON has no such numbers). Needs the C locale for LC_NUMERIC, else -EINVAL. */
int jsonw_double(struct jsonw *w, double v);
int jsonw_bool(struct jsonw *w, bool v);
int jsonw_null(struct jsonw *w);
/* A number given as text (e.g. json_get_number_text), written verbatim; -EINVAL unless it is
 * exactly one valid JSON number. */
int jsonw_number_text(struct jsonw *w, const char *s, size_t len);
/* A parsed value, recursively; NULL (a missing value) is -EINVAL. */
int jsonw_value(struct jsonw *w, const struct json_value *v);
/* Ends a top-level value with '\n' so another may follow (JSON lines); -EINVAL inside a
 * container or before any value. */
int jsonw_newline(struct jsonw *w);

/* The sticky error, 0 if none. */
int jsonw_error(const struct jsonw *w);
/* The output so far, NUL-terminated, valid until the next call on w: 0, or the sticky error, or
 * -EINVAL while a container or a key is still open. */
int jsonw_result(const struct jsonw *w, const char **ret_buf, size_t *ret_len);
/* Like jsonw_result but hands the malloc'd buffer to the caller (free() it); the writer is
 * then empty as after jsonw_reset. */
int jsonw_take(struct jsonw *w, char **ret_buf, size_t *ret_len);

#endif
