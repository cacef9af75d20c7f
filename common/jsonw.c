/* jsonw: see jsonw.h. A small state machine (one byte per open container) decides where commas
 * go and refuses structurally wrong call sequences, so every successful result is valid JSON. */
#include "jsonw.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LV_OBJECT 1u /* the container is an object (else an array) */
#define LV_ITEMS 2u  /* it already holds a member/element: the next one needs a comma */

struct jsonw {
	char *buf;
	size_t len, cap, max; /* cap includes room for the NUL; len <= max */
	int err;
	unsigned depth;
	bool key_pending; /* a key was written, its value is due */
	bool top_done;    /* a complete top-level value was written (jsonw_newline resets) */
	uint8_t levels[JSONW_MAX_DEPTH];
};

static int set_err(struct jsonw *w, int err)
{
	if (!w->err)
		w->err = err;
	return w->err;
}

/* Appends n bytes or sets the sticky error; the buffer stays NUL-terminated. */
static void put(struct jsonw *w, const void *p, size_t n)
{
	if (w->err)
		return;
	if (n > w->max - w->len) {
		set_err(w, -ENOSPC);
		return;
	}
	if (w->len + n + 1 > w->cap) {
		size_t need = w->len + n + 1, ncap = w->cap ? w->cap : 256;
		while (ncap < need && ncap <= SIZE_MAX / 2)
			ncap *= 2;
		if (ncap < need || ncap > w->max + 1)
			ncap = w->max + 1 < need ? need : w->max + 1;
		char *nb = realloc(w->buf, ncap);
		if (!nb) {
			set_err(w, -ENOMEM);
			return;
		}
		w->buf = nb;
		w->cap = ncap;
	}
	memcpy(w->buf + w->len, p, n);
	w->len += n;
	w->buf[w->len] = 0;
}

int jsonw_new(size_t max_bytes, struct jsonw **ret_w)
{
	if (max_bytes == 0 || max_bytes == SIZE_MAX)
		return -EINVAL;
	struct jsonw *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->max = max_bytes;
	*ret_w = w;
	return 0;
}

struct jsonw *jsonw_free(struct jsonw *w)
{
	if (w) {
		free(w->buf);
		free(w);
	}
	return NULL;
}

void jsonw_reset(struct jsonw *w)
{
	w->len = 0;
	if (w->buf)
		w->buf[0] = 0;
	w->err = 0;
	w->depth = 0;
	w->key_pending = false;
	w->top_done = false;
}

/* Called before any value: checks the position is legal and writes the comma if one is due. */
static int before_value(struct jsonw *w)
{
	if (w->err)
		return w->err;
	if (w->depth == 0)
		return w->top_done ? set_err(w, -EINVAL) : 0;
	uint8_t *lv = &w->levels[w->depth - 1];
	if (*lv & LV_OBJECT) {
		if (!w->key_pending)
			return set_err(w, -EINVAL);
		w->key_pending = false;
		return 0;
	}
	if (*lv & LV_ITEMS)
		put(w, ",", 1);
	*lv |= LV_ITEMS;
	return w->err;
}

static int after_value(struct jsonw *w)
{
	if (w->depth == 0)
		w->top_done = true;
	return w->err;
}

static int put_value(struct jsonw *w, const char *text, size_t n)
{
	if (before_value(w) < 0)
		return w->err;
	put(w, text, n);
	return after_value(w);
}

static int begin(struct jsonw *w, uint8_t type, char c)
{
	if (before_value(w) < 0)
		return w->err;
	if (w->depth == JSONW_MAX_DEPTH)
		return set_err(w, -EINVAL);
	put(w, &c, 1);
	w->levels[w->depth++] = type;
	return w->err;
}

static int end(struct jsonw *w, uint8_t type, char c)
{
	if (w->err)
		return w->err;
	if (w->depth == 0 || (w->levels[w->depth - 1] & LV_OBJECT) != type || w->key_pending)
		return set_err(w, -EINVAL);
	put(w, &c, 1);
	w->depth--;
	return after_value(w);
}

int jsonw_begin_object(struct jsonw *w)
{
	return begin(w, LV_OBJECT, '{');
}

int jsonw_end_object(struct jsonw *w)
{
	return end(w, LV_OBJECT, '}');
}

int jsonw_begin_array(struct jsonw *w)
{
	return begin(w, 0, '[');
}

int jsonw_end_array(struct jsonw *w)
{
	return end(w, 0, ']');
}

/* Quoted and escaped. Runs of plain ASCII are copied in one put; other bytes one by one. */
static void put_string(struct jsonw *w, const unsigned char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	put(w, "\"", 1);
	size_t i = 0;
	while (i < n && !w->err) {
		size_t run = i;
		while (run < n && s[run] >= 0x20 && s[run] < 0x7f && s[run] != '"' && s[run] != '\\')
			run++;
		put(w, s + i, run - i);
		if ((i = run) >= n)
			break;
		unsigned c = s[i];
		if (c >= 0x80) {
			size_t k = json_utf8_seq_len(s + i, n - i);
			if (k)
				put(w, s + i, k);
			else
				put(w, "\xef\xbf\xbd", 3); /* U+FFFD, one per bad byte */
			i += k ? k : 1;
			continue;
		}
		char e[6] = { '\\', 0 };
		size_t elen = 2;
		switch (c) {
		case '"': e[1] = '"'; break;
		case '\\': e[1] = '\\'; break;
		case '\b': e[1] = 'b'; break;
		case '\f': e[1] = 'f'; break;
		case '\n': e[1] = 'n'; break;
		case '\r': e[1] = 'r'; break;
		case '\t': e[1] = 't'; break;
		default: /* other controls and DEL */
			memcpy(e + 1, "u00", 3);
			e[4] = hex[c >> 4];
			e[5] = hex[c & 15];
			elen = 6;
		}
		put(w, e, elen);
		i++;
	}
	put(w, "\"", 1);
}

int jsonw_keyn(struct jsonw *w, const char *key, size_t len)
{
	if (w->err)
		return w->err;
	if (!key || w->depth == 0 || !(w->levels[w->depth - 1] & LV_OBJECT) || w->key_pending)
		return set_err(w, -EINVAL);
	uint8_t *lv = &w->levels[w->depth - 1];
	if (*lv & LV_ITEMS)
		put(w, ",", 1);
	*lv |= LV_ITEMS;
	put_string(w, (const unsigned char *)key, len);
	put(w, ":", 1);
	w->key_pending = true;
	return w->err;
}

int jsonw_key(struct jsonw *w, const char *key)
{
	return jsonw_keyn(w, key, key ? strlen(key) : 0);
}

int jsonw_stringn(struct jsonw *w, const char *s, size_t len)
{
	if (!s)
		return jsonw_null(w);
	if (before_value(w) < 0)
		return w->err;
	put_string(w, (const unsigned char *)s, len);
	return after_value(w);
}

int jsonw_string(struct jsonw *w, const char *s)
{
	return jsonw_stringn(w, s, s ? strlen(s) : 0);
}

int jsonw_i64(struct jsonw *w, int64_t v)
{
	char b[24];
	int n = snprintf(b, sizeof(b), "%" PRId64, v);
	return put_value(w, b, (size_t)n);
}

int jsonw_u64(struct jsonw *w, uint64_t v)
{
	char b[24];
	int n = snprintf(b, sizeof(b), "%" PRIu64, v);
	return put_value(w, b, (size_t)n);
}

int jsonw_double(struct jsonw *w, double v)
{
	if (!isfinite(v))
		return jsonw_null(w);
	/* Fewest digits that read back exactly: 0.1 is "0.1", not "0.10000000000000001".
	 * At most three snprintf/strtod pairs; 17 digits always round-trip. */
	char b[32];
	int n = 0;
	for (int prec = 15; prec <= 17; prec++) {
		n = snprintf(b, sizeof(b), "%.*g", prec, v);
		if (strtod(b, NULL) == v)
			break;
	}
	if (n <= 0 || !json_number_valid(b, (size_t)n))
		return set_err(w, -EINVAL); /* e.g. a decimal comma from a foreign locale */
	return put_value(w, b, (size_t)n);
}

int jsonw_bool(struct jsonw *w, bool v)
{
	return v ? put_value(w, "true", 4) : put_value(w, "false", 5);
}

int jsonw_null(struct jsonw *w)
{
	return put_value(w, "null", 4);
}

int jsonw_number_text(struct jsonw *w, const char *s, size_t len)
{
	if (w->err)
		return w->err;
	if (!s || !json_number_valid(s, len))
		return set_err(w, -EINVAL);
	return put_value(w, s, len);
}

int jsonw_value(struct jsonw *w, const struct json_value *v)
{
	const char *s, *key;
	size_t len, n = json_len(v);
	bool b;
	switch (json_type(v)) {
	case JSON_NULL:
		return jsonw_null(w);
	case JSON_BOOL:
		json_get_bool(v, &b);
		return jsonw_bool(w, b);
	case JSON_NUMBER:
		json_get_number_text(v, &s, &len);
		return jsonw_number_text(w, s, len);
	case JSON_STRING:
		json_get_string(v, &s, &len);
		return jsonw_stringn(w, s, len);
	case JSON_ARRAY:
		jsonw_begin_array(w);
		for (size_t i = 0; i < n && !w->err; i++)
			jsonw_value(w, json_arr_at(v, i));
		return jsonw_end_array(w);
	case JSON_OBJECT:
		jsonw_begin_object(w);
		for (size_t i = 0; i < n && !w->err; i++) {
			const struct json_value *m = json_obj_at(v, i, &key, &len);
			jsonw_keyn(w, key, len);
			jsonw_value(w, m);
		}
		return jsonw_end_object(w);
	default:
		return set_err(w, -EINVAL);
	}
}

int jsonw_newline(struct jsonw *w)
{
	if (w->err)
		return w->err;
	if (w->depth != 0 || !w->top_done)
		return set_err(w, -EINVAL);
	put(w, "\n", 1);
	w->top_done = false;
	return w->err;
}

int jsonw_error(const struct jsonw *w)
{
	return w->err;
}

int jsonw_result(const struct jsonw *w, const char **ret_buf, size_t *ret_len)
{
	if (w->err)
		return w->err;
	if (w->depth != 0 || w->key_pending)
		return -EINVAL;
	*ret_buf = w->buf ? w->buf : "";
	*ret_len = w->len;
	return 0;
}

int jsonw_take(struct jsonw *w, char **ret_buf, size_t *ret_len)
{
	const char *unused;
	size_t len = 0;
	int r = jsonw_result(w, &unused, &len);
	if (r < 0)
		return r;
	char *b = w->buf ? w->buf : calloc(1, 1);
	if (!b)
		return -ENOMEM;
	w->buf = NULL;
	w->cap = 0;
	jsonw_reset(w);
	*ret_buf = b;
	*ret_len = len;
	return 0;
}
