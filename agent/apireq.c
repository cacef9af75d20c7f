/* apireq: see apireq.h. */
#include "apireq.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "json.h"
#include "loop.h"

static int bad(struct apireq_err *err, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(struct apireq_err *err, int status, const char *fmt, ...)
{
	err->status = status;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->reason, sizeof(err->reason), fmt, ap);
	va_end(ap);
	return status == 413 ? -E2BIG : -EINVAL;
}

/* Parses the body; limits map to 413 (size) or 400 (shape). */
static int parse(const char *body, size_t len, struct json_doc **ret, struct apireq_err *err)
{
	struct json_limits lim = {
		.max_input = APIREQ_MAX_BODY,
		.max_depth = APIREQ_MAX_DEPTH,
		.max_nodes = 8 * APIREQ_MAX_REGIONS,
		.max_string = 4096,
	};
	struct json_error je;
	int r = json_parse(body, len, &lim, ret, &je);
	if (r == 0)
		return 0;
	switch (r) {
	case -E2BIG: return bad(err, 413, "request body larger than %u bytes", APIREQ_MAX_BODY);
	case -ENOSPC: return bad(err, 413, "request has too many JSON values");
	case -EMSGSIZE: return bad(err, 413, "a string in the request is longer than 4096 bytes");
	case -ELOOP: return bad(err, 400, "JSON nested deeper than %d levels", APIREQ_MAX_DEPTH);
	case -ENOMEM: return bad(err, 413, "request too large to parse");
	default: return bad(err, 400, "malformed JSON: %s", je.msg);
	}
}

static int only(const struct json_value *obj, const char *const *keys, struct apireq_err *err)
{
	struct json_error je;
	if (json_obj_only_keys(obj, keys, &je) < 0)
		return bad(err, 400, "%s", je.msg);
	return 0;
}

/* Integer field within [min, max]; absent is -ENOENT (not an error here). */
static int get_uint(const struct json_value *obj, const char *key, uint64_t min, uint64_t max, uint64_t *ret,
		    struct apireq_err *err)
{
	const struct json_value *v = json_obj_get(obj, key);
	if (!v)
		return -ENOENT;
	uint64_t x;
	int r = json_get_u64(v, &x);
	if (r == -ERANGE || (r == 0 && (x < min || x > max)) ||
	    (r == -EINVAL && json_type(v) == JSON_NUMBER && json_is_integer(v)))
		return bad(err, 400, "'%s' must be an integer within %" PRIu64 "..%" PRIu64, key, min, max);
	if (r < 0)
		return bad(err, 400, "'%s' must be an integer, not %s", key,
			   json_type(v) == JSON_NUMBER ? "a fraction" : json_type_name(json_type(v)));
	*ret = x;
	return 0;
}

static int get_str(const struct json_value *obj, const char *key, const char **ret, size_t *ret_len,
		   struct apireq_err *err)
{
	const struct json_value *v = json_obj_get(obj, key);
	if (!v)
		return -ENOENT;
	if (json_get_string(v, ret, ret_len) < 0)
		return bad(err, 400, "'%s' must be a string, not %s", key, json_type_name(json_type(v)));
	if (memchr(*ret, 0, *ret_len))
		return bad(err, 400, "'%s' contains a NUL character", key);
	return 0;
}

int apireq_mode(const char *body, size_t len, struct apireq_mode *ret, struct apireq_err *err)
{
	struct json_doc *doc;
	int r = parse(body, len, &doc, err);
	if (r < 0)
		return r;
	const struct json_value *root = json_doc_root(doc);
	static const char *const keys[] = { "mode", "ttl_s", NULL };
	const char *m;
	size_t ml;
	uint64_t ttl = 0;
	struct apireq_mode out = { 0 };
	if (json_type(root) != JSON_OBJECT)
		r = bad(err, 400, "expected an object like {\"mode\":\"diagnostic\"}");
	else if ((r = only(root, keys, err)) < 0)
		;
	else if ((r = get_str(root, "mode", &m, &ml, err)) < 0) {
		if (r == -ENOENT)
			r = bad(err, 400, "'mode' is required (sentinel, diagnostic or auto)");
	} else if (strcmp(m, "sentinel") == 0) {
		out.mode = LOOP_MODE_SENTINEL;
	} else if (strcmp(m, "diagnostic") == 0) {
		out.mode = LOOP_MODE_DIAGNOSTIC;
	} else if (strcmp(m, "auto") == 0) {
		out.mode = LOOP_MODE_AUTO;
	} else {
		r = bad(err, 400, "'mode' must be sentinel, diagnostic or auto");
	}
	if (r == 0 && (r = get_uint(root, "ttl_s", 0, APIREQ_MAX_TTL_S, &ttl, err)) == -ENOENT)
		r = 0;
	if (r == 0 && ttl && out.mode == LOOP_MODE_AUTO)
		r = bad(err, 400, "'ttl_s' applies to sentinel or diagnostic; auto clears the pin");
	json_doc_free(doc);
	if (r < 0)
		return r;
	out.ttl_ms = ttl * 1000;
	*ret = out;
	return 0;
}

int apireq_budgets(const char *body, size_t len, struct apireq_budgets *ret, struct apireq_err *err)
{
	struct json_doc *doc;
	int r = parse(body, len, &doc, err);
	if (r < 0)
		return r;
	const struct json_value *root = json_doc_root(doc);
	static const char *const keys[] = { "sentinel_samples_per_sec", "diagnostic_samples_per_sec", "hard_drop_ns", NULL };
	struct apireq_budgets out = { 0 };
	if (json_type(root) != JSON_OBJECT)
		r = bad(err, 400, "expected an object with sentinel_samples_per_sec, diagnostic_samples_per_sec, hard_drop_ns");
	else
		r = only(root, keys, err);
	static const struct { const char *key; uint32_t bit; uint64_t min, max; } f[] = {
		{ "sentinel_samples_per_sec", LOOP_BUDGET_SENTINEL, 1, APIREQ_MAX_BUDGET },
		{ "diagnostic_samples_per_sec", LOOP_BUDGET_DIAGNOSTIC, 1, APIREQ_MAX_BUDGET },
		{ "hard_drop_ns", LOOP_BUDGET_HARD_DROP, 0, APIREQ_MAX_HARD_DROP_NS },
	};
	uint64_t *dst[3] = { &out.sentinel, &out.diagnostic, &out.hard_drop_ns };
	for (int i = 0; i < 3 && r == 0; i++) {
		r = get_uint(root, f[i].key, f[i].min, f[i].max, dst[i], err);
		if (r == 0)
			out.set |= f[i].bit;
		else if (r == -ENOENT)
			r = 0;
	}
	if (r == 0 && !out.set)
		r = bad(err, 400, "give at least one of sentinel_samples_per_sec, diagnostic_samples_per_sec, hard_drop_ns");
	if (r == 0 && (out.set & 3) == 3 && out.diagnostic < out.sentinel)
		r = bad(err, 400, "diagnostic_samples_per_sec must be >= sentinel_samples_per_sec");
	json_doc_free(doc);
	if (r < 0)
		return r;
	*ret = out;
	return 0;
}

static int one_target(const struct json_value *t, size_t i, struct targets_entry *e, struct apireq_err *err)
{
	static const char *const keys[] = { "type", "value", NULL };
	if (json_type(t) != JSON_OBJECT)
		return bad(err, 400, "target %zu: expected {\"type\":...,\"value\":...}", i);
	int r = only(t, keys, err);
	if (r < 0)
		return r;
	const char *type, *sval;
	size_t tl, sl;
	if ((r = get_str(t, "type", &type, &tl, err)) < 0)
		return r == -ENOENT ? bad(err, 400, "target %zu: 'type' is required", i) : r;
	const struct json_value *v = json_obj_get(t, "value");
	if (!v)
		return bad(err, 400, "target %zu: 'value' is required", i);
	bool want_str = strcmp(type, "flow") == 0 || strcmp(type, "cgroup") == 0;
	bool want_int = strcmp(type, "port") == 0 || strcmp(type, "pid") == 0;
	char text[TARGETS_TEXT_MAX];
	if (json_type(v) == JSON_STRING && !want_int) {
		if ((r = get_str(t, "value", &sval, &sl, err)) < 0)
			return r;
		if (sl >= sizeof(text))
			return bad(err, 400, "target %zu: value longer than %zu bytes", i, sizeof(text) - 1);
		memcpy(text, sval, sl + 1);
	} else if (json_type(v) == JSON_NUMBER && !want_str) {
		uint64_t x;
		if (json_get_u64(v, &x) < 0 || x > UINT32_MAX)
			return bad(err, 400, "target %zu: value must be a non-negative integer", i);
		snprintf(text, sizeof(text), "%" PRIu64, x);
	} else {
		return bad(err, 400, "target %zu: the value of a %.16s target must be %s", i, type,
			   want_str ? "a string" : want_int ? "an integer" : "a string or an integer");
	}
	char why[200];
	if (targets_parse(type, text, e, why, sizeof(why)) < 0)
		return bad(err, 400, "target %zu: %s", i, why);
	return 0;
}

int apireq_targets(const char *body, size_t len, struct targets_entry *out, size_t max, struct apireq_err *err)
{
	struct json_doc *doc;
	int r = parse(body, len, &doc, err);
	if (r < 0)
		return r;
	const struct json_value *root = json_doc_root(doc), *list = NULL;
	size_t n = 0;
	if (json_type(root) == JSON_ARRAY) {
		list = root;
	} else if (json_type(root) == JSON_OBJECT && json_obj_get(root, "targets")) {
		static const char *const keys[] = { "targets", NULL };
		if ((r = only(root, keys, err)) == 0) {
			list = json_obj_get(root, "targets");
			if (json_type(list) != JSON_ARRAY)
				r = bad(err, 400, "'targets' must be an array");
		}
	} else if (json_type(root) == JSON_OBJECT) {
		/* one target given alone: {"type":"flow","value":"10.1."} */
		if ((r = one_target(root, 0, &out[0], err)) == 0)
			n = 1;
	} else {
		r = bad(err, 400, "expected {\"targets\":[...]}, [...] or one {\"type\":...,\"value\":...}");
	}
	if (r == 0 && list) {
		if (json_len(list) > max)
			r = bad(err, 400, "at most %zu targets", max);
		for (size_t i = 0; r == 0 && i < json_len(list); i++)
			if ((r = one_target(json_arr_at(list, i), i, &out[i], err)) == 0)
				n++;
	}
	json_doc_free(doc);
	return r < 0 ? r : (int)n;
}

/* An address: exact integer, or a string "0x<hex>" / decimal. */
static int get_addr(const struct json_value *obj, const char *key, uint64_t *ret, size_t i, struct apireq_err *err)
{
	const struct json_value *v = json_obj_get(obj, key);
	if (!v)
		return bad(err, 400, "region %zu: '%s' is required", i, key);
	if (json_type(v) == JSON_NUMBER) {
		if (json_get_u64(v, ret) < 0)
			return bad(err, 400, "region %zu: '%s' must be a non-negative 64-bit integer", i, key);
		return 0;
	}
	const char *s;
	size_t sl;
	if (json_get_string(v, &s, &sl) < 0)
		return bad(err, 400, "region %zu: '%s' must be an integer or a \"0x...\" string", i, key);
	bool hex = sl > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
	size_t p = hex ? 2 : 0;
	uint64_t x = 0;
	if (sl == p || sl - p > (hex ? 16u : 20u))
		return bad(err, 400, "region %zu: '%s' is not a 64-bit number", i, key);
	for (; p < sl; p++) {
		char c = s[p];
		unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0') :
			     hex && c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10) :
			     hex && c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10) : 99u;
		if (d == 99u || (!hex && x > (UINT64_MAX - d) / 10))
			return bad(err, 400, "region %zu: '%s' is not a 64-bit number", i, key);
		x = hex ? x << 4 | d : x * 10 + d;
	}
	*ret = x;
	return 0;
}

static int one_region(const struct json_value *o, size_t i, bool code, struct apireq_region *r,
		      struct apireq_err *err)
{
	int rc;
	memset(r, 0, sizeof(*r));
	if ((rc = get_addr(o, "start", &r->start, i, err)) < 0 || (rc = get_addr(o, "size", &r->size, i, err)) < 0)
		return rc;
	if (r->size == 0 || r->start + r->size < r->start)
		return bad(err, 400, "region %zu: size must be > 0 and start + size within 64 bits", i);
	const char *s;
	size_t sl;
	if ((rc = get_str(o, "name", &s, &sl, err)) < 0)
		return rc == -ENOENT ? bad(err, 400, "region %zu: 'name' is required", i) : rc;
	if (sl == 0 || sl >= sizeof(r->name))
		return bad(err, 400, "region %zu: 'name' must have 1..%zu bytes", i, sizeof(r->name) - 1);
	memcpy(r->name, s, sl + 1);
	if (code && (rc = get_str(o, "module", &s, &sl, err)) != -ENOENT) {
		if (rc < 0)
			return rc;
		if (sl >= sizeof(r->module))
			return bad(err, 400, "region %zu: 'module' longer than %zu bytes", i, sizeof(r->module) - 1);
		memcpy(r->module, s, sl + 1);
	}
	return 0;
}

int apireq_regions(const char *body, size_t len, bool code, uint32_t *ret_pid, struct apireq_region *out,
		   size_t max, struct apireq_err *err)
{
	struct json_doc *doc;
	int r = parse(body, len, &doc, err);
	if (r < 0)
		return r;
	const struct json_value *root = json_doc_root(doc);
	static const char *const list_keys[] = { "pid", "regions", NULL };
	static const char *const code_keys[] = { "pid", "start", "size", "name", "module", NULL };
	static const char *const data_keys[] = { "pid", "start", "size", "name", NULL };
	uint64_t pid = 0;
	size_t n = 0;
	if (json_type(root) != JSON_OBJECT)
		r = bad(err, 400, "expected {\"pid\":N,\"regions\":[{\"start\":...,\"size\":...,\"name\":...}]}");
	else if ((r = only(root, json_obj_get(root, "regions") ? list_keys : code ? code_keys : data_keys, err)) < 0)
		;
	else if ((r = get_uint(root, "pid", 1, 4194304, &pid, err)) == -ENOENT)
		r = bad(err, 400, "'pid' is required");
	const struct json_value *list = r == 0 ? json_obj_get(root, "regions") : NULL;
	if (r == 0 && list) {
		if (json_type(list) != JSON_ARRAY || json_len(list) == 0)
			r = bad(err, 400, "'regions' must be a non-empty array");
		else if (json_len(list) > max)
			r = bad(err, 413, "at most %zu regions per request", max);
		static const char *const rk_code[] = { "start", "size", "name", "module", NULL };
		static const char *const rk_data[] = { "start", "size", "name", NULL };
		for (size_t i = 0; r == 0 && i < json_len(list); i++) {
			const struct json_value *o = json_arr_at(list, i);
			if (json_type(o) != JSON_OBJECT)
				r = bad(err, 400, "region %zu: expected an object", i);
			else if ((r = only(o, code ? rk_code : rk_data, err)) == 0 &&
				 (r = one_region(o, i, code, &out[i], err)) == 0)
				n++;
		}
	} else if (r == 0) {
		if (max == 0)
			r = bad(err, 413, "no room for regions");
		else if ((r = one_region(root, 0, code, &out[0], err)) == 0)
			n = 1;
	}
	json_doc_free(doc);
	if (r < 0)
		return r;
	*ret_pid = (uint32_t)pid;
	return (int)n;
}
