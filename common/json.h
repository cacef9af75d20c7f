/* json: strict RFC 8259 parser for untrusted input (local HTTP API request bodies) into a
 * read-only DOM that lives in one arena owned by a `struct json_doc`; numbers keep their exact
 * text so 64-bit integers never pass through a double. It is not a writer (see jsonw.h), not a
 * streaming parser and not lenient: comments, trailing commas, duplicate keys, invalid UTF-8 and
 * lone surrogates are errors.
 * Thread-safety: json_parse is reentrant; a parsed document is immutable, so any number of
 * threads may read it concurrently; json_doc_free must not race with readers. */
#ifndef MS_JSON_H
#define MS_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Defaults used for a zero field of struct json_limits. */
#define JSON_DEFAULT_MAX_INPUT (1u << 20)
#define JSON_DEFAULT_MAX_DEPTH 32u
#define JSON_DEFAULT_MAX_NODES 65536u
/* Hard caps, whatever the caller asks: recursion depth is bounded by this, and every length
 * and count in the DOM fits 32 bits because the input does. */
#define JSON_DEPTH_CAP 256u
#define JSON_INPUT_CAP (256u << 20)

/* Zero in any field means its default; larger-than-cap values are reduced to the cap.
 * Each limit has its own error code so the HTTP layer can map -E2BIG to 413. */
struct json_limits {
	size_t max_input;  /* bytes of input; exceeded: -E2BIG (default 1 MiB) */
	unsigned max_depth; /* nested arrays/objects, "[]" is depth 1; exceeded: -ELOOP (32) */
	size_t max_nodes;  /* values of any type, the root included; exceeded: -ENOSPC (65536) */
	size_t max_string; /* decoded bytes of any one string or key; exceeded: -EMSGSIZE
			    * (default: max_input) */
};

/* Filled on failure only: code is the negative errno also returned, offset the byte offset in
 * the input where the problem was found, msg e.g. "offset 17: expected ':' after object key". */
struct json_error {
	int code;
	size_t offset;
	char msg[160];
};

enum json_type {
	JSON_NONE = 0, /* only for a NULL value pointer, e.g. a missing key */
	JSON_NULL,
	JSON_BOOL,
	JSON_NUMBER,
	JSON_STRING,
	JSON_ARRAY,
	JSON_OBJECT,
};

struct json_doc;
struct json_value; /* opaque, read-only, valid until json_doc_free */

/* Parses exactly buf[0..len) (no NUL needed) as one JSON text, optional whitespace around it.
 * lim may be NULL (all defaults), err may be NULL. Returns 0 and *ret_doc, or a negative errno:
 * -EINVAL malformed or duplicate key, -E2BIG / -ELOOP / -ENOSPC / -EMSGSIZE limits (see above),
 * -ENOMEM. Cost: one pass over the input plus a sort of the keys of objects with > 32 keys. */
int json_parse(const char *buf, size_t len, const struct json_limits *lim,
	       struct json_doc **ret_doc, struct json_error *err);
/* Releases the document and every value in it. NULL-safe; returns NULL. */
struct json_doc *json_doc_free(struct json_doc *doc);
const struct json_value *json_doc_root(const struct json_doc *doc);

/* All accessors accept NULL (a missing value): json_type gives JSON_NONE, getters -ENOENT. */
enum json_type json_type(const struct json_value *v);
const char *json_type_name(enum json_type t); /* "null", "bool", ..., "none" */

/* Getters: 0 and *ret_* on success; -ENOENT for NULL, -EINVAL for another type (or, for the
 * integer getters, a number with a fraction or exponent), -ERANGE for an integer that does not
 * fit exactly (or a double that overflows). "-0" is 0 for both integer getters. */
int json_get_bool(const struct json_value *v, bool *ret_b);
int json_get_i64(const struct json_value *v, int64_t *ret_i);
int json_get_u64(const struct json_value *v, uint64_t *ret_u);
/* Any number, nearest double (strtod; needs the C locale for LC_NUMERIC, which the daemons
 * never change; another locale yields -EINVAL rather than a wrong value). */
int json_get_double(const struct json_value *v, double *ret_d);
/* The decoded UTF-8 bytes, NUL-terminated for convenience, but may contain NUL (\u0000):
 * always use *ret_len (ret_len may be NULL for these two only). */
int json_get_string(const struct json_value *v, const char **ret_s, size_t *ret_len);
/* The number exactly as written in the input (NUL-terminated), e.g. to forward it unchanged. */
int json_get_number_text(const struct json_value *v, const char **ret_s, size_t *ret_len);
/* True for a number without fraction or exponent. */
bool json_is_integer(const struct json_value *v);

/* Element/member count of an array/object; 0 for anything else. */
size_t json_len(const struct json_value *v);
/* Array element i, or NULL when v is not an array or i is out of range. */
const struct json_value *json_arr_at(const struct json_value *v, size_t i);
/* Object member i in document order; ret_key and ret_key_len (either may be NULL) receive its key.
 * NULL when v is not an object or i is out of range. */
const struct json_value *json_obj_at(const struct json_value *v, size_t i, const char **ret_key,
				     size_t *ret_key_len);
/* Member by key (NUL-terminated / with length), NULL if absent or v is not an object. Linear
 * scan: request objects are small; keys are unique, so the first match is the only one. */
const struct json_value *json_obj_get(const struct json_value *v, const char *key);
const struct json_value *json_obj_getn(const struct json_value *v, const char *key, size_t len);

/* Strict request schemas: 0 when every key of obj is in the NULL-terminated list allowed;
 * -EINVAL when obj is not an object, or for the first unknown key, with err->msg
 * "unknown field 'x'" (the key shown with non-printable bytes as \xNN, cut at 32 bytes) and
 * err->offset the key's offset in the input. */
int json_obj_only_keys(const struct json_value *obj, const char *const *allowed,
		       struct json_error *err);

/* Shared with the writer. Length of the well-formed UTF-8 sequence at s[0..n) (1..4), or 0
 * if it is malformed, overlong, a surrogate, above U+10FFFF or truncated. */
size_t json_utf8_seq_len(const unsigned char *s, size_t n);
/* True if s[0..len) is exactly one RFC 8259 number. */
bool json_number_valid(const char *s, size_t len);

#endif
