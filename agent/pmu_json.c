/* pmu: the strict parser of pmu-config bodies (see pmu_config_parse in pmu.h). Every refusal
 * names the field by its path, e.g. "sentinel.groups[0].events[1].precise: must be 0..3". */
#include "pmu.h"

#include <errno.h>
#include <linux/perf_event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

#define PMU_TYPE_DYNAMIC UINT32_MAX /* placeholder until validation reads the sysfs type */

struct pctx {
	char *reason;
	size_t rlen;
	char path[96];
};

__attribute__((format(printf, 2, 3))) static int fail(struct pctx *p, const char *fmt, ...)
{
	char msg[160];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(p->reason, p->rlen, "%s%s%s", p->path, p->path[0] ? ": " : "", msg);
	return -EINVAL;
}

static bool name_ok(const char *s, size_t len, size_t max, const char *extra)
{
	if (!len || len > max)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr(extra, c)) ||
		    !c)
			return false;
	}
	return true;
}

/* An unsigned 64-bit value given as a JSON integer or as a "0x.."/decimal string. */
static int get_u64(struct pctx *p, const struct json_value *v, const char *key, uint64_t *ret)
{
	if (json_type(v) == JSON_NUMBER) {
		if (json_get_u64(v, ret) < 0)
			return fail(p, "%s: must be an integer 0..2^64-1", key);
		return 0;
	}
	const char *s;
	size_t len;
	if (json_get_string(v, &s, &len) < 0 || !len || len > 18 || strlen(s) != len)
		return fail(p, "%s: must be an integer or a hex string \"0x..\"", key);
	bool hex = len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
	const char *digits = hex ? s + 2 : s;
	if (strspn(digits, hex ? "0123456789abcdefABCDEF" : "0123456789") != strlen(digits) || !digits[0])
		return fail(p, "%s: '%s' is not a number", key, s);
	errno = 0;
	*ret = strtoull(s, NULL, hex ? 16 : 10);
	if (errno)
		return fail(p, "%s: out of range", key);
	return 0;
}

static int get_enum(struct pctx *p, const struct json_value *v, const char *key, const char *const *names, int *ret)
{
	const char *s;
	size_t len;
	if (json_get_string(v, &s, &len) == 0)
		for (int i = 0; names[i]; i++)
			if (strlen(names[i]) == len && !memcmp(names[i], s, len)) {
				*ret = i;
				return 0;
			}
	char list[160] = "";
	for (int i = 0; names[i]; i++)
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "", names[i]);
	return fail(p, "%s: must be one of %s", key, list);
}

static const char *const access_names[] = { "none", "load", "store", "hitm", NULL };
/* order of enum events_iclass */
static const char *const class_names[] = { "unknown", "data_path", "control_path", "execution", "topology", NULL };

static int parse_type(struct pctx *p, const struct json_value *v, struct events_spec *e)
{
	static const struct { const char *name; uint32_t type; } fixed[] = {
		{ "hardware", PERF_TYPE_HARDWARE }, { "software", PERF_TYPE_SOFTWARE },
		{ "hw_cache", PERF_TYPE_HW_CACHE }, { "raw", PERF_TYPE_RAW },
		{ "breakpoint", PERF_TYPE_BREAKPOINT },
	};
	int64_t n;
	e->pmu[0] = 0;
	if (json_type(v) == JSON_NUMBER) {
		if (json_get_i64(v, &n) < 0 || n < 0 || n > INT32_MAX || n == PERF_TYPE_TRACEPOINT)
			return fail(p, "type: must be a PMU type number 0..2^31-1 (not tracepoint)");
		e->type = (uint32_t)n;
		return 0;
	}
	const char *s;
	size_t len;
	if (json_get_string(v, &s, &len) < 0)
		return fail(p, "type: must be a string or a number");
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if (strlen(fixed[i].name) == len && !memcmp(fixed[i].name, s, len)) {
			e->type = fixed[i].type;
			return 0;
		}
	if (!name_ok(s, len, sizeof(e->pmu) - 1, "_") || strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_") != len ||
	    !strcmp(s, "tracepoint"))
		return fail(p, "type: '%.32s' is neither hardware, software, hw_cache, raw, breakpoint nor a sysfs PMU name", s);
	memcpy(e->pmu, s, len);
	e->pmu[len] = 0;
	e->type = PMU_TYPE_DYNAMIC;
	return 0;
}

static int parse_event_obj(struct pctx *p, const struct json_value *v, struct events_spec *e)
{
	static const char *const keys[] = { "name", "type", "config", "config1", "config2", "precise", "period",
					    "freq", "sample_addr", "branch_stack", "access", "class", "fallback", NULL };
	struct json_error je;
	if (json_obj_only_keys(v, keys, &je) < 0)
		return fail(p, "%s", je.msg);
	const char *name;
	size_t nlen;
	if (json_get_string(json_obj_get(v, "name"), &name, &nlen) < 0)
		return fail(p, "name: required string");
	if (!name_ok(name, nlen, sizeof(e->name) - 1, "_-.:"))
		return fail(p, "name: 1..47 characters of [A-Za-z0-9_.:-]");
	const struct events_spec *base = events_catalogue_find(name);
	if (base)
		*e = *base;
	else
		memset(e, 0, sizeof(*e));
	memcpy(e->name, name, nlen);
	e->name[nlen] = 0;
	const struct json_value *x;
	int r;
	if ((x = json_obj_get(v, "type")) && (r = parse_type(p, x, e)) < 0)
		return r;
	if (!base && !x)
		return fail(p, "type: required for an event the catalogue does not name ('%s')", e->name);
	if ((x = json_obj_get(v, "config")) && (r = get_u64(p, x, "config", &e->config)) < 0)
		return r;
	if (!base && !x)
		return fail(p, "config: required for an event the catalogue does not name");
	if ((x = json_obj_get(v, "config1")) && (r = get_u64(p, x, "config1", &e->config1)) < 0)
		return r;
	if ((x = json_obj_get(v, "config2")) && (r = get_u64(p, x, "config2", &e->config2)) < 0)
		return r;
	int64_t prec;
	if ((x = json_obj_get(v, "precise")) && (json_get_i64(x, &prec) < 0 || prec < 0 || prec > 3))
		return fail(p, "precise: must be 0..3");
	if (x)
		e->precise = (int)prec;
	const struct json_value *per = json_obj_get(v, "period"), *frq = json_obj_get(v, "freq");
	if (per && frq)
		return fail(p, "give period or freq, not both");
	uint64_t val;
	if (per) {
		if (json_get_u64(per, &val) < 0 || !val || val > (1ull << 62))
			return fail(p, "period: must be an integer 1..2^62");
		e->freq = false;
		e->period = val;
	} else if (frq) {
		if (json_get_u64(frq, &val) < 0 || !val || val > 1000000)
			return fail(p, "freq: must be an integer 1..1000000 Hz");
		e->freq = true;
		e->period = val;
	} else if (!base) {
		return fail(p, "period or freq: required for an event the catalogue does not name");
	}
	bool b;
	if ((x = json_obj_get(v, "sample_addr")) && json_get_bool(x, &b) < 0)
		return fail(p, "sample_addr: must be true or false");
	if (x)
		e->sample_addr = b;
	if ((x = json_obj_get(v, "branch_stack")) && json_get_bool(x, &b) < 0)
		return fail(p, "branch_stack: must be true or false");
	if (x)
		e->branch_stack = b;
	int k;
	if ((x = json_obj_get(v, "access"))) {
		if ((r = get_enum(p, x, "access", access_names, &k)) < 0)
			return r;
		e->access = (uint8_t)k;
	}
	if (e->access != EVENTS_ACC_NONE && !e->sample_addr)
		return fail(p, "access '%s' needs sample_addr: true", access_names[e->access]);
	if ((x = json_obj_get(v, "class"))) {
		if ((r = get_enum(p, x, "class", class_names, &k)) < 0)
			return r;
		e->iclass = (uint8_t)k;
	} else if (!base) {
		e->iclass = pmu_classify(e);
	}
	if ((x = json_obj_get(v, "fallback"))) {
		const char *f;
		size_t flen;
		if (json_get_string(x, &f, &flen) < 0 || flen >= sizeof(e->fallback) || strlen(f) != flen)
			return fail(p, "fallback: must be a catalogue event name or \"\"");
		const struct events_spec *fs = flen ? events_catalogue_find(f) : NULL;
		if (flen && (!fs || fs->type != PERF_TYPE_SOFTWARE))
			return fail(p, "fallback: '%s' is not a software event of the catalogue", f);
		memcpy(e->fallback, f, flen + 1);
	}
	return 0;
}

static int parse_event(struct pctx *p, const struct json_value *v, struct events_spec *e)
{
	if (json_type(v) == JSON_OBJECT)
		return parse_event_obj(p, v, e);
	const char *s;
	size_t len;
	if (json_get_string(v, &s, &len) < 0)
		return fail(p, "an event is a catalogue name or an object");
	const struct events_spec *base = strlen(s) == len ? events_catalogue_find(s) : NULL;
	if (!base)
		return fail(p, "unknown event '%.48s' (give its encoding as an object)", s);
	*e = *base;
	return 0;
}

static bool same_encoding(const struct events_spec *a, const struct events_spec *b)
{
	return a->type == b->type && a->config == b->config && a->config1 == b->config1 && a->config2 == b->config2 &&
	       a->freq == b->freq && a->period == b->period && a->sample_addr == b->sample_addr &&
	       a->precise == b->precise && a->branch_stack == b->branch_stack && a->access == b->access &&
	       !strcmp(a->pmu, b->pmu);
}

/* One name, one encoding, in both modes: events are shared by name across modes. */
static int check_names(struct pctx *p, const struct pmu_config *c, int m, const struct events_spec *e)
{
	for (int mm = 0; mm <= m; mm++)
		for (uint32_t g = 0; g < c->mode[mm].ngroups; g++)
			for (uint32_t i = 0; i < c->mode[mm].groups[g].nevents; i++) {
				const struct events_spec *o = &c->mode[mm].groups[g].ev[i];
				if (o == e || strcmp(o->name, e->name))
					continue;
				if (mm == m)
					return fail(p, "event '%s' appears twice in one mode", e->name);
				if (!same_encoding(o, e))
					return fail(p, "event '%s' has another encoding in the other mode", e->name);
			}
	return 0;
}

static int parse_mode(struct pctx *p, struct pmu_config *c, int m, const struct json_value *v)
{
	static const char *const keys[] = { "groups", NULL };
	size_t base = strlen(p->path);
	struct json_error je;
	if (json_type(v) != JSON_OBJECT)
		return fail(p, "must be an object {\"groups\":[...]}");
	if (json_obj_only_keys(v, keys, &je) < 0)
		return fail(p, "%s", je.msg);
	const struct json_value *gs = json_obj_get(v, "groups");
	if (json_type(gs) != JSON_ARRAY || json_len(gs) == 0 || json_len(gs) > PMU_MAX_GROUPS)
		return fail(p, "groups: must be an array of 1..%d groups", PMU_MAX_GROUPS);
	struct pmu_mode_cfg *mc = &c->mode[m];
	for (size_t g = 0; g < json_len(gs); g++) {
		static const char *const gkeys[] = { "name", "events", NULL };
		const struct json_value *gv = json_arr_at(gs, g);
		struct pmu_group *gr = &mc->groups[mc->ngroups++];
		snprintf(p->path + base, sizeof(p->path) - base, ".groups[%zu]", g);
		if (json_type(gv) != JSON_OBJECT)
			return fail(p, "must be an object {\"name\":..,\"events\":[...]}");
		if (json_obj_only_keys(gv, gkeys, &je) < 0)
			return fail(p, "%s", je.msg);
		const struct json_value *nv = json_obj_get(gv, "name");
		const char *gname;
		size_t glen;
		if (nv) {
			if (json_get_string(nv, &gname, &glen) < 0 || !name_ok(gname, glen, sizeof(gr->name) - 1, "_-."))
				return fail(p, "name: 1..31 characters of [A-Za-z0-9_.-]");
			memcpy(gr->name, gname, glen);
			gr->name[glen] = 0;
		} else {
			snprintf(gr->name, sizeof(gr->name), "g%zu", g);
		}
		const struct json_value *evs = json_obj_get(gv, "events");
		if (json_type(evs) != JSON_ARRAY || json_len(evs) == 0 || json_len(evs) > PMU_MAX_GROUP_EVENTS)
			return fail(p, "events: must be an array of 1..%d events", PMU_MAX_GROUP_EVENTS);
		size_t gbase = strlen(p->path);
		for (size_t i = 0; i < json_len(evs); i++) {
			snprintf(p->path + gbase, sizeof(p->path) - gbase, ".events[%zu]", i);
			struct events_spec *e = &gr->ev[gr->nevents++];
			int r = parse_event(p, json_arr_at(evs, i), e);
			if (r == 0)
				r = check_names(p, c, m, e);
			if (r < 0)
				return r;
		}
	}
	p->path[base] = 0;
	c->present[m] = true;
	return 0;
}

int pmu_config_parse(const char *buf, size_t len, struct pmu_config *c, char *reason, size_t rlen)
{
	struct pctx p = { .reason = reason, .rlen = rlen };
	memset(c, 0, sizeof(*c));
	snprintf(c->source, sizeof(c->source), "api");
	if (len > PMU_MAX_BODY) {
		snprintf(reason, rlen, "body larger than %u bytes", PMU_MAX_BODY);
		return -E2BIG;
	}
	struct json_limits lim = { .max_input = PMU_MAX_BODY, .max_depth = 8, .max_nodes = 4096, .max_string = 256 };
	struct json_doc *doc = NULL;
	struct json_error je;
	int r = json_parse(buf, len, &lim, &doc, &je);
	if (r < 0) {
		snprintf(reason, rlen, "invalid JSON: %s", je.msg);
		return r == -E2BIG ? -E2BIG : -EINVAL;
	}
	static const char *const keys[] = { "sentinel", "diagnostic", "rotation_ms", NULL };
	static const char *const modes[PMU_MODES] = { "sentinel", "diagnostic" };
	const struct json_value *root = json_doc_root(doc);
	if (json_type(root) != JSON_OBJECT) {
		r = fail(&p, "the body must be an object");
		goto out;
	}
	if (json_obj_only_keys(root, keys, &je) < 0) {
		r = fail(&p, "%s", je.msg);
		goto out;
	}
	for (int m = 0; m < PMU_MODES; m++) {
		const struct json_value *mv = json_obj_get(root, modes[m]);
		if (!mv)
			continue;
		snprintf(p.path, sizeof(p.path), "%s", modes[m]);
		if ((r = parse_mode(&p, c, m, mv)) < 0)
			goto out;
	}
	p.path[0] = 0;
	const struct json_value *rv = json_obj_get(root, "rotation_ms");
	uint64_t rot;
	if (rv && (json_get_u64(rv, &rot) < 0 || rot < 10 || rot > 60000)) {
		r = fail(&p, "rotation_ms: must be an integer 10..60000");
		goto out;
	}
	c->rotation_ms = rv ? (uint32_t)rot : 0;
	if (!c->present[0] && !c->present[1]) {
		r = fail(&p, "give \"sentinel\" and/or \"diagnostic\" groups");
		goto out;
	}
	r = 0;
out:
	json_doc_free(doc);
	return r;
}
