/* json: see json.h. Recursive-descent parser bounded by JSON_DEPTH_CAP; children of a container
 * collect on a scratch stack and are copied into the arena as one array when it closes, so the
 * DOM is flat arrays indexed in O(1) and the arena holds nothing but the final document. */
#include "json.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct json_member;

/* 16 bytes. len: decoded string bytes, number text bytes or child count (fits: input is
 * capped at JSON_INPUT_CAP). */
struct json_value {
	uint8_t type;
	uint8_t flag; /* bool value; for numbers: 1 when integer */
	uint32_t len;
	union {
		const char *str;
		const struct json_value *items;
		const struct json_member *members;
	} u;
};

struct json_member {
	const char *key;
	uint32_t key_len;
	uint32_t key_off; /* input offset of the key, for duplicate-key messages */
	struct json_value value;
};

struct arena_block {
	struct arena_block *next;
	size_t size, used;
	max_align_t data[];
};

struct json_doc {
	struct arena_block *blocks;
	struct json_value root;
};

struct parser {
	const unsigned char *start, *p, *end;
	struct json_limits lim;
	size_t nodes;
	struct json_member *stack; /* pending children of all open containers */
	size_t top, cap;
	struct json_doc *doc;
	struct json_error *err;
};

/* Objects up to this many keys are checked for duplicates as each key arrives (quadratic but
 * tiny); bigger ones are sorted once on close so a hostile 65536-key object costs O(n log n). */
#define DUP_LINEAR_MAX 32

static void *arena_alloc(struct json_doc *doc, size_t n)
{
	n = (n + 7) & ~(size_t)7;
	struct arena_block *b = doc->blocks;
	if (!b || b->size - b->used < n) {
		size_t size = b ? b->size * 2 : 4096;
		if (size < n)
			size = n;
		struct arena_block *nb = malloc(sizeof(*nb) + size);
		if (!nb)
			return NULL;
		nb->size = size;
		nb->used = 0;
		nb->next = b;
		doc->blocks = nb;
		b = nb;
	}
	void *r = (char *)b->data + b->used;
	b->used += n;
	return r;
}

__attribute__((format(printf, 4, 5)))
static int fail(struct parser *ps, int code, const unsigned char *at, const char *fmt, ...)
{
	if (!ps->err)
		return code;
	size_t off = (size_t)(at - ps->start);
	ps->err->code = code;
	ps->err->offset = off;
	int n = snprintf(ps->err->msg, sizeof(ps->err->msg), "offset %zu: ", off);
	if (n < 0 || (size_t)n >= sizeof(ps->err->msg))
		return code;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ps->err->msg + n, sizeof(ps->err->msg) - (size_t)n, fmt, ap);
	va_end(ap);
	return code;
}

/* "unexpected character 'x'" / "unexpected byte 0xNN" / "unexpected end of input". */
static int fail_unexpected(struct parser *ps, const char *ctx)
{
	if (ps->p >= ps->end)
		return fail(ps, -EINVAL, ps->p, "unexpected end of input%s", ctx);
	unsigned c = *ps->p;
	if (c > 0x20 && c < 0x7f)
		return fail(ps, -EINVAL, ps->p, "unexpected character '%c'%s", (int)c, ctx);
	return fail(ps, -EINVAL, ps->p, "unexpected byte 0x%02x%s", c, ctx);
}

static void skip_ws(struct parser *ps)
{
	while (ps->p < ps->end &&
	       (*ps->p == ' ' || *ps->p == '\n' || *ps->p == '\r' || *ps->p == '\t'))
		ps->p++;
}

size_t json_utf8_seq_len(const unsigned char *s, size_t n)
{
	if (n == 0)
		return 0;
	unsigned c = s[0];
	if (c < 0x80)
		return 1;
	size_t len;
	unsigned lo = 0x80, hi = 0xbf; /* allowed range of the second byte (Unicode table 3-7) */
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0; /* overlong */
		else if (c == 0xed)
			hi = 0x9f; /* UTF-16 surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90; /* overlong */
		else if (c == 0xf4)
			hi = 0x8f; /* above U+10FFFF */
	} else {
		return 0;
	}
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return len;
}

/* Scans the number grammar at s[0..n); returns its length (0 if none) and whether it has a
 * fraction or exponent. *bad gets a reason for a malformed prefix. */
static size_t scan_number(const unsigned char *s, size_t n, bool *ret_int, const char **bad)
{
	size_t i = 0;
	bool is_int = true;
#define DIGIT(k) ((k) < n && s[k] >= '0' && s[k] <= '9')
	if (i < n && s[i] == '-')
		i++;
	if (!DIGIT(i)) {
		*bad = "expected digit";
		return 0;
	}
	if (s[i] == '0') {
		i++;
		if (DIGIT(i)) {
			*bad = "leading zero in number";
			return 0;
		}
	} else {
		while (DIGIT(i))
			i++;
	}
	if (i < n && s[i] == '.') {
		i++;
		is_int = false;
		if (!DIGIT(i)) {
			*bad = "expected digit after '.'";
			return 0;
		}
		while (DIGIT(i))
			i++;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		is_int = false;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		if (!DIGIT(i)) {
			*bad = "expected digit in exponent";
			return 0;
		}
		while (DIGIT(i))
			i++;
	}
#undef DIGIT
	*ret_int = is_int;
	return i;
}

bool json_number_valid(const char *s, size_t len)
{
	bool is_int;
	const char *bad;
	return len > 0 && scan_number((const unsigned char *)s, len, &is_int, &bad) == len;
}

static int count_node(struct parser *ps)
{
	if (++ps->nodes > ps->lim.max_nodes)
		return fail(ps, -ENOSPC, ps->p, "more than %zu values", ps->lim.max_nodes);
	return 0;
}

static int hex4(const unsigned char *s, unsigned *ret)
{
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		unsigned c = s[i], d;
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
			d = (c | 0x20) - 'a' + 10;
		else
			return -EINVAL;
		v = v << 4 | d;
	}
	*ret = v;
	return 0;
}

static size_t put_utf8(unsigned char *o, unsigned cp)
{
	if (cp < 0x80) {
		o[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (unsigned char)(0xc0 | cp >> 6);
		o[1] = (unsigned char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (unsigned char)(0xe0 | cp >> 12);
		o[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
		o[2] = (unsigned char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (unsigned char)(0xf0 | cp >> 18);
	o[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
	o[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
	o[3] = (unsigned char)(0x80 | (cp & 0x3f));
	return 4;
}

/* One escape after the backslash at *pp; writes the decoded bytes to *oo. */
static int parse_escape(struct parser *ps, const unsigned char **pp, unsigned char **oo)
{
	const unsigned char *p = *pp, *end = ps->end;
	static const char simple[] = "\"\\/bfnrt", decoded[] = "\"\\/\b\f\n\r\t";
	if (p + 1 >= end)
		return fail(ps, -EINVAL, p, "unterminated string");
	const char *hit = p[1] ? strchr(simple, p[1]) : NULL;
	if (hit) {
		*(*oo)++ = (unsigned char)decoded[hit - simple];
		*pp = p + 2;
		return 0;
	}
	if (p[1] != 'u')
		return fail(ps, -EINVAL, p, "invalid escape");
	unsigned cp, lo;
	if (end - p < 6 || hex4(p + 2, &cp))
		return fail(ps, -EINVAL, p, "invalid \\u escape");
	if (cp >= 0xdc00 && cp <= 0xdfff)
		return fail(ps, -EINVAL, p, "lone low surrogate in \\u escape");
	if (cp >= 0xd800 && cp <= 0xdbff) {
		if (end - p < 12 || p[6] != '\\' || p[7] != 'u' || hex4(p + 8, &lo) ||
		    lo < 0xdc00 || lo > 0xdfff)
			return fail(ps, -EINVAL, p, "lone high surrogate in \\u escape");
		cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
		p += 6;
	}
	*oo += put_utf8(*oo, cp);
	*pp = p + 6;
	return 0;
}

/* String at ps->p (the opening quote). The decoded form is never longer than the raw one, so
 * a first pass finds the closing quote and sizes the arena copy exactly. */
static int parse_string(struct parser *ps, const char **ret_s, uint32_t *ret_len)
{
	const unsigned char *q = ps->p + 1, *end = ps->end;
	while (q < end && *q != '"')
		q += (*q == '\\' && q + 1 < end) ? 2 : 1;
	if (q >= end)
		return fail(ps, -EINVAL, ps->p, "unterminated string");
	unsigned char *out = arena_alloc(ps->doc, (size_t)(q - ps->p));
	if (!out)
		return fail(ps, -ENOMEM, ps->p, "out of memory");
	unsigned char *o = out;
	const unsigned char *p = ps->p + 1;
	while (p < q) {
		unsigned c = *p;
		if (c >= 0x20 && c < 0x80 && c != '\\') {
			*o++ = (unsigned char)c;
			p++;
		} else if (c == '\\') {
			int r = parse_escape(ps, &p, &o);
			if (r < 0)
				return r;
		} else if (c < 0x20) {
			return fail(ps, -EINVAL, p, "control character 0x%02x in string", c);
		} else {
			size_t n = json_utf8_seq_len(p, (size_t)(q - p));
			if (!n)
				return fail(ps, -EINVAL, p, "invalid UTF-8 in string");
			memcpy(o, p, n);
			o += n;
			p += n;
		}
	}
	size_t len = (size_t)(o - out);
	if (len > ps->lim.max_string)
		return fail(ps, -EMSGSIZE, ps->p, "string longer than %zu bytes", ps->lim.max_string);
	*o = 0;
	ps->p = q + 1;
	*ret_s = (const char *)out;
	*ret_len = (uint32_t)len;
	return 0;
}

static int push(struct parser *ps, struct json_member **ret)
{
	if (ps->top == ps->cap) {
		size_t ncap = ps->cap ? ps->cap * 2 : 64;
		struct json_member *ns = realloc(ps->stack, ncap * sizeof(*ns));
		if (!ns)
			return fail(ps, -ENOMEM, ps->p, "out of memory");
		ps->stack = ns;
		ps->cap = ncap;
	}
	*ret = &ps->stack[ps->top++];
	return 0;
}

static int parse_value(struct parser *ps, unsigned depth, struct json_value *v);

static int cmp_member(const void *a, const void *b)
{
	const struct json_member *x = *(const struct json_member *const *)a;
	const struct json_member *y = *(const struct json_member *const *)b;
	if (x->key_len != y->key_len)
		return x->key_len < y->key_len ? -1 : 1;
	int c = memcmp(x->key, y->key, x->key_len);
	if (c)
		return c;
	return x->key_off < y->key_off ? -1 : x->key_off > y->key_off;
}

/* Large objects: sort pointers to the members and report the repeat that comes first in the
 * document (the smallest offset among the later halves of equal pairs). */
static int check_dups_sorted(struct parser *ps, const struct json_member *m, size_t n)
{
	const struct json_member **idx = malloc(n * sizeof(*idx));
	if (!idx)
		return fail(ps, -ENOMEM, ps->p, "out of memory");
	for (size_t i = 0; i < n; i++)
		idx[i] = &m[i];
	qsort(idx, n, sizeof(*idx), cmp_member);
	const struct json_member *dup = NULL;
	for (size_t i = 1; i < n; i++)
		if (idx[i]->key_len == idx[i - 1]->key_len &&
		    memcmp(idx[i]->key, idx[i - 1]->key, idx[i]->key_len) == 0 &&
		    (!dup || idx[i]->key_off < dup->key_off))
			dup = idx[i];
	free(idx);
	if (dup)
		return fail(ps, -EINVAL, ps->start + dup->key_off, "duplicate object key");
	return 0;
}

/* Copies the children stack[base..top) into the arena as v's items or members. */
static int close_container(struct parser *ps, size_t base, struct json_value *v)
{
	size_t n = ps->top - base;
	v->len = (uint32_t)n;
	v->u.items = NULL;
	if (n) {
		if (v->type == JSON_OBJECT) {
			struct json_member *m = arena_alloc(ps->doc, n * sizeof(*m));
			if (!m)
				return fail(ps, -ENOMEM, ps->p, "out of memory");
			memcpy(m, &ps->stack[base], n * sizeof(*m));
			v->u.members = m;
		} else {
			struct json_value *a = arena_alloc(ps->doc, n * sizeof(*a));
			if (!a)
				return fail(ps, -ENOMEM, ps->p, "out of memory");
			for (size_t i = 0; i < n; i++)
				a[i] = ps->stack[base + i].value;
			v->u.items = a;
		}
	}
	ps->top = base;
	return 0;
}

static int parse_array(struct parser *ps, unsigned depth, struct json_value *v)
{
	size_t base = ps->top;
	int r;
	ps->p++;
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == ']') {
		ps->p++;
		return close_container(ps, base, v);
	}
	for (;;) {
		struct json_member *m;
		struct json_value child;
		/* Parse into a local: the stack may move while the element's own children are
		 * pushed, so the slot is filled afterwards through the (re-read) stack pointer. */
		if ((r = parse_value(ps, depth, &child)) < 0 || (r = push(ps, &m)) < 0)
			return r;
		m->key = NULL;
		m->key_len = m->key_off = 0;
		m->value = child;
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			continue;
		}
		if (ps->p < ps->end && *ps->p == ']') {
			ps->p++;
			return close_container(ps, base, v);
		}
		return fail_unexpected(ps, ", expected ',' or ']' in array");
	}
}

static int parse_object(struct parser *ps, unsigned depth, struct json_value *v)
{
	size_t base = ps->top;
	int r;
	ps->p++;
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == '}') {
		ps->p++;
		return close_container(ps, base, v);
	}
	for (;;) {
		skip_ws(ps);
		if (ps->p >= ps->end || *ps->p != '"')
			return fail_unexpected(ps, ", expected string key in object");
		struct json_member *m;
		const char *key;
		uint32_t key_len, key_off = (uint32_t)(ps->p - ps->start);
		if ((r = parse_string(ps, &key, &key_len)) < 0)
			return r;
		if (ps->top - base < DUP_LINEAR_MAX)
			for (size_t i = base; i < ps->top; i++)
				if (ps->stack[i].key_len == key_len &&
				    memcmp(ps->stack[i].key, key, key_len) == 0)
					return fail(ps, -EINVAL, ps->start + key_off,
						    "duplicate object key");
		skip_ws(ps);
		if (ps->p >= ps->end || *ps->p != ':')
			return fail(ps, -EINVAL, ps->p, "expected ':' after object key");
		ps->p++;
		struct json_value child;
		if ((r = parse_value(ps, depth, &child)) < 0 || (r = push(ps, &m)) < 0)
			return r;
		m->key = key;
		m->key_len = key_len;
		m->key_off = key_off;
		m->value = child;
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			continue;
		}
		if (ps->p < ps->end && *ps->p == '}') {
			ps->p++;
			size_t n = ps->top - base;
			if (n > DUP_LINEAR_MAX && (r = check_dups_sorted(ps, &ps->stack[base], n)) < 0)
				return r;
			return close_container(ps, base, v);
		}
		return fail_unexpected(ps, ", expected ',' or '}' in object");
	}
}

static int parse_literal(struct parser *ps, struct json_value *v)
{
	static const struct {
		const char *text;
		size_t len;
		uint8_t type, flag;
	} lits[] = {
		{ "true", 4, JSON_BOOL, 1 },
		{ "false", 5, JSON_BOOL, 0 },
		{ "null", 4, JSON_NULL, 0 },
	};
	size_t left = (size_t)(ps->end - ps->p);
	for (size_t i = 0; i < sizeof(lits) / sizeof(lits[0]); i++) {
		if (left >= lits[i].len && memcmp(ps->p, lits[i].text, lits[i].len) == 0) {
			v->type = lits[i].type;
			v->flag = lits[i].flag;
			ps->p += lits[i].len;
			return 0;
		}
	}
	return fail_unexpected(ps, ", expected a value");
}

static int parse_number(struct parser *ps, struct json_value *v)
{
	bool is_int;
	const char *bad = "";
	size_t n = scan_number(ps->p, (size_t)(ps->end - ps->p), &is_int, &bad);
	if (!n)
		return fail(ps, -EINVAL, ps->p, "invalid number: %s", bad);
	char *t = arena_alloc(ps->doc, n + 1);
	if (!t)
		return fail(ps, -ENOMEM, ps->p, "out of memory");
	memcpy(t, ps->p, n);
	t[n] = 0;
	v->type = JSON_NUMBER;
	v->flag = is_int;
	v->len = (uint32_t)n;
	v->u.str = t;
	ps->p += n;
	return 0;
}

static int parse_value(struct parser *ps, unsigned depth, struct json_value *v)
{
	int r;
	skip_ws(ps);
	if ((r = count_node(ps)) < 0)
		return r;
	memset(v, 0, sizeof(*v));
	if (ps->p >= ps->end)
		return fail_unexpected(ps, ", expected a value");
	unsigned char c = *ps->p;
	if (c == '{' || c == '[') {
		if (depth + 1 > ps->lim.max_depth)
			return fail(ps, -ELOOP, ps->p, "nesting deeper than %u", ps->lim.max_depth);
		v->type = c == '{' ? JSON_OBJECT : JSON_ARRAY;
		return c == '{' ? parse_object(ps, depth + 1, v) : parse_array(ps, depth + 1, v);
	}
	if (c == '"') {
		v->type = JSON_STRING;
		return parse_string(ps, &v->u.str, &v->len);
	}
	if (c == '-' || (c >= '0' && c <= '9'))
		return parse_number(ps, v);
	return parse_literal(ps, v);
}

static void limits_resolve(const struct json_limits *in, struct json_limits *out)
{
	static const struct json_limits zero;
	if (!in)
		in = &zero;
	out->max_input = in->max_input ? in->max_input : JSON_DEFAULT_MAX_INPUT;
	if (out->max_input > JSON_INPUT_CAP)
		out->max_input = JSON_INPUT_CAP;
	out->max_depth = in->max_depth ? in->max_depth : JSON_DEFAULT_MAX_DEPTH;
	if (out->max_depth > JSON_DEPTH_CAP)
		out->max_depth = JSON_DEPTH_CAP;
	out->max_nodes = in->max_nodes ? in->max_nodes : JSON_DEFAULT_MAX_NODES;
	out->max_string = in->max_string ? in->max_string : out->max_input;
}

int json_parse(const char *buf, size_t len, const struct json_limits *lim,
	       struct json_doc **ret_doc, struct json_error *err)
{
	if (!buf)
		buf = ""; /* len must then be 0; avoids arithmetic on NULL */
	struct parser ps = {
		.start = (const unsigned char *)buf,
		.p = (const unsigned char *)buf,
		.end = (const unsigned char *)buf + len,
		.err = err,
	};
	limits_resolve(lim, &ps.lim);
	if (len > ps.lim.max_input)
		return fail(&ps, -E2BIG, ps.start, "input of %zu bytes exceeds limit of %zu", len,
			    ps.lim.max_input);
	ps.doc = calloc(1, sizeof(*ps.doc));
	if (!ps.doc)
		return fail(&ps, -ENOMEM, ps.start, "out of memory");
	int r = parse_value(&ps, 0, &ps.doc->root);
	if (r >= 0) {
		skip_ws(&ps);
		if (ps.p < ps.end)
			r = fail_unexpected(&ps, " after the end of the document");
	}
	free(ps.stack);
	if (r < 0) {
		json_doc_free(ps.doc);
		return r;
	}
	*ret_doc = ps.doc;
	return 0;
}

struct json_doc *json_doc_free(struct json_doc *doc)
{
	if (!doc)
		return NULL;
	struct arena_block *b = doc->blocks;
	while (b) {
		struct arena_block *next = b->next;
		free(b);
		b = next;
	}
	free(doc);
	return NULL;
}

const struct json_value *json_doc_root(const struct json_doc *doc)
{
	return doc ? &doc->root : NULL;
}

enum json_type json_type(const struct json_value *v)
{
	return v ? (enum json_type)v->type : JSON_NONE;
}

const char *json_type_name(enum json_type t)
{
	static const char *const names[] = { "none",   "null",  "bool",  "number",
					     "string", "array", "object" };
	return (unsigned)t < sizeof(names) / sizeof(names[0]) ? names[t] : "none";
}

static int want(const struct json_value *v, enum json_type t)
{
	if (!v)
		return -ENOENT;
	return v->type == t ? 0 : -EINVAL;
}

int json_get_bool(const struct json_value *v, bool *ret_b)
{
	int r = want(v, JSON_BOOL);
	if (r < 0)
		return r;
	*ret_b = v->flag;
	return 0;
}

/* Exact magnitude of an integer's digits; -ERANGE above UINT64_MAX. */
static int int_magnitude(const struct json_value *v, bool *ret_neg, uint64_t *ret_mag)
{
	int r = want(v, JSON_NUMBER);
	if (r < 0)
		return r;
	if (!v->flag)
		return -EINVAL;
	const char *s = v->u.str;
	bool neg = *s == '-';
	uint64_t m = 0;
	for (s += neg; *s; s++) {
		unsigned d = (unsigned)(*s - '0');
		if (m > (UINT64_MAX - d) / 10)
			return -ERANGE;
		m = m * 10 + d;
	}
	*ret_neg = neg;
	*ret_mag = m;
	return 0;
}

int json_get_i64(const struct json_value *v, int64_t *ret_i)
{
	bool neg;
	uint64_t m;
	int r = int_magnitude(v, &neg, &m);
	if (r < 0)
		return r;
	if (neg) {
		if (m > (uint64_t)INT64_MAX + 1)
			return -ERANGE;
		*ret_i = m == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)m;
	} else {
		if (m > (uint64_t)INT64_MAX)
			return -ERANGE;
		*ret_i = (int64_t)m;
	}
	return 0;
}

int json_get_u64(const struct json_value *v, uint64_t *ret_u)
{
	bool neg;
	uint64_t m;
	int r = int_magnitude(v, &neg, &m);
	if (r < 0)
		return r;
	if (neg && m)
		return -ERANGE;
	*ret_u = m;
	return 0;
}

int json_get_double(const struct json_value *v, double *ret_d)
{
	int r = want(v, JSON_NUMBER);
	if (r < 0)
		return r;
	char *endp;
	double d = strtod(v->u.str, &endp);
	if (endp != v->u.str + v->len)
		return -EINVAL;
	if (isinf(d))
		return -ERANGE;
	*ret_d = d;
	return 0;
}

static int get_text(const struct json_value *v, enum json_type t, const char **ret_s,
		    size_t *ret_len)
{
	int r = want(v, t);
	if (r < 0)
		return r;
	*ret_s = v->u.str;
	if (ret_len)
		*ret_len = v->len;
	return 0;
}

int json_get_string(const struct json_value *v, const char **ret_s, size_t *ret_len)
{
	return get_text(v, JSON_STRING, ret_s, ret_len);
}

int json_get_number_text(const struct json_value *v, const char **ret_s, size_t *ret_len)
{
	return get_text(v, JSON_NUMBER, ret_s, ret_len);
}

bool json_is_integer(const struct json_value *v)
{
	return v && v->type == JSON_NUMBER && v->flag;
}

size_t json_len(const struct json_value *v)
{
	return v && (v->type == JSON_ARRAY || v->type == JSON_OBJECT) ? v->len : 0;
}

const struct json_value *json_arr_at(const struct json_value *v, size_t i)
{
	if (!v || v->type != JSON_ARRAY || i >= v->len)
		return NULL;
	return &v->u.items[i];
}

const struct json_value *json_obj_at(const struct json_value *v, size_t i, const char **ret_key,
				     size_t *ret_key_len)
{
	if (!v || v->type != JSON_OBJECT || i >= v->len)
		return NULL;
	const struct json_member *m = &v->u.members[i];
	if (ret_key)
		*ret_key = m->key;
	if (ret_key_len)
		*ret_key_len = m->key_len;
	return &m->value;
}

const struct json_value *json_obj_getn(const struct json_value *v, const char *key, size_t len)
{
	if (!v || v->type != JSON_OBJECT)
		return NULL;
	for (uint32_t i = 0; i < v->len; i++) {
		const struct json_member *m = &v->u.members[i];
		if (m->key_len == len && memcmp(m->key, key, len) == 0)
			return &m->value;
	}
	return NULL;
}

const struct json_value *json_obj_get(const struct json_value *v, const char *key)
{
	return json_obj_getn(v, key, strlen(key));
}

int json_obj_only_keys(const struct json_value *obj, const char *const *allowed,
		       struct json_error *err)
{
	if (!obj || obj->type != JSON_OBJECT) {
		if (err) {
			*err = (struct json_error){ .code = -EINVAL };
			snprintf(err->msg, sizeof(err->msg), "expected an object, got %s",
				 json_type_name(json_type(obj)));
		}
		return -EINVAL;
	}
	for (uint32_t i = 0; i < obj->len; i++) {
		const struct json_member *m = &obj->u.members[i];
		bool known = false;
		for (const char *const *a = allowed; *a && !known; a++)
			known = strlen(*a) == m->key_len && memcmp(*a, m->key, m->key_len) == 0;
		if (known)
			continue;
		if (err) {
			/* The key is untrusted and ends up in a response: printable ASCII only. */
			char shown[32 * 4 + 4];
			size_t o = 0;
			for (uint32_t k = 0; k < m->key_len && k < 32; k++) {
				unsigned char c = (unsigned char)m->key[k];
				if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\')
					shown[o++] = (char)c;
				else
					o += (size_t)sprintf(shown + o, "\\x%02x", c);
			}
			if (m->key_len > 32)
				o += (size_t)sprintf(shown + o, "...");
			shown[o] = 0;
			*err = (struct json_error){ .code = -EINVAL, .offset = m->key_off };
			snprintf(err->msg, sizeof(err->msg), "unknown field '%s'", shown);
		}
		return -EINVAL;
	}
	return 0;
}
