/* opapi: the agent view — the union of the registry and the Watch table, selectors and the
 * AgentInfo message. See opapi_int.h. Replies that list agents are written one AgentInfo at a
 * time (packed and appended as field 1) so a list of the whole fleet never holds every registry
 * entry (~20 KiB each with its capability) at once. */
#include "opapi_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t opapi_real_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t opapi_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void opapi_fail(struct rpc_reply *rep, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	rep->code = code;
	vsnprintf(rep->detail, sizeof(rep->detail), fmt, ap);
	va_end(ap);
}

bool opapi_lookup(struct opapi *a, const char *id, struct opapi_view *v)
{
	memset(v, 0, sizeof(*v));
	snprintf(v->id, sizeof(v->id), "%s", id);
	v->in_watch = a->o.watch && watch_get(a->o.watch, id, &v->wa) == 0;
	if (a->o.reg) {
		uint32_t n = registry_count(a->o.reg);
		for (uint32_t i = 0; i < n && !v->in_reg; i++) {
			if (registry_get(a->o.reg, i, opapi_mono_ms(), &v->ra) == 0 && strcmp(v->ra.hello.agent_id, id) == 0)
				v->in_reg = true;
		}
	}
	return v->in_reg || v->in_watch;
}

/* Calls fn for every agent once: watchers first, then registry-only agents. */
int opapi_for_each(struct opapi *a, int (*fn)(void *ctx, struct opapi_view *v), void *ctx)
{
	struct opapi_view *v = malloc(sizeof(*v));
	if (!v)
		return -ENOMEM;
	int r = 0;
	uint32_t nw = a->o.watch ? watch_count(a->o.watch) : 0;
	for (uint32_t i = 0; i < nw && r == 0; i++) {
		memset(v, 0, sizeof(*v));
		if (watch_get_at(a->o.watch, i, &v->wa) < 0)
			break;
		v->in_watch = true;
		snprintf(v->id, sizeof(v->id), "%s", v->wa.agent_id);
		uint32_t nr = a->o.reg ? registry_count(a->o.reg) : 0;
		for (uint32_t k = 0; k < nr && !v->in_reg; k++)
			if (registry_get(a->o.reg, k, opapi_mono_ms(), &v->ra) == 0 && strcmp(v->ra.hello.agent_id, v->id) == 0)
				v->in_reg = true;
		r = fn(ctx, v);
	}
	uint32_t nr = a->o.reg ? registry_count(a->o.reg) : 0;
	for (uint32_t i = 0; i < nr && r == 0; i++) {
		memset(v, 0, sizeof(*v));
		if (registry_get(a->o.reg, i, opapi_mono_ms(), &v->ra) < 0)
			break;
		if (a->o.watch && watch_get(a->o.watch, v->ra.hello.agent_id, &v->wa) == 0)
			continue; /* listed above */
		v->in_reg = true;
		snprintf(v->id, sizeof(v->id), "%s", v->ra.hello.agent_id);
		r = fn(ctx, v);
	}
	free(v);
	return r;
}

static void labels_of_(const struct opapi_view *v, const struct wire_label **ret, uint32_t *n)
{
	if (v->in_reg && v->ra.hello.nlabels) {
		*ret = v->ra.hello.labels;
		*n = v->ra.hello.nlabels;
	} else {
		*ret = v->wa.labels;
		*n = v->in_watch ? v->wa.nlabels : 0;
	}
}

/* Validates a selector; required: an empty one is an error (else it means all). */
bool opapi_selector_valid(const Ms__V1__Selector *s, bool required, struct rpc_reply *rep)
{
	int kinds = (s && s->all) + (s && s->n_hosts > 0) + (s && s->n_labels > 0);
	if (kinds > 1 || (required && kinds == 0)) {
		opapi_fail(rep, RPC_INVALID_ARGUMENT, "selector: exactly one of all, hosts or labels%s", "");
		return false;
	}
	if (!s)
		return true;
	if (s->n_hosts > OPAPI_MAX_HOSTS) {
		opapi_fail(rep, RPC_INVALID_ARGUMENT, "selector.hosts: at most 1000%s", "");
		return false;
	}
	for (size_t i = 0; i < s->n_hosts; i++) {
		if (!wire_valid_agent_id(s->hosts[i])) {
			opapi_fail(rep, RPC_INVALID_ARGUMENT, "selector.hosts: invalid agent id '%.100s'", s->hosts[i]);
			return false;
		}
	}
	if (s->n_labels > WIRE_MAX_LABELS) {
		opapi_fail(rep, RPC_INVALID_ARGUMENT, "selector.labels: at most 32%s", "");
		return false;
	}
	for (size_t i = 0; i < s->n_labels; i++) {
		const Ms__V1__Label *l = s->labels[i];
		if (!l->key[0] || strlen(l->key) >= 64 || strlen(l->value) >= 128) {
			opapi_fail(rep, RPC_INVALID_ARGUMENT, "selector.labels: key 1..63 bytes, value up to 127 bytes%s", "");
			return false;
		}
	}
	return true;
}

bool opapi_selector_match(const Ms__V1__Selector *s, const struct opapi_view *v)
{
	if (!s || s->all || (!s->n_hosts && !s->n_labels))
		return true;
	if (s->n_hosts) {
		for (size_t i = 0; i < s->n_hosts; i++)
			if (strcmp(s->hosts[i], v->id) == 0)
				return true;
		return false;
	}
	const struct wire_label *ls;
	uint32_t n;
	labels_of_(v, &ls, &n);
	for (size_t i = 0; i < s->n_labels; i++) {
		bool hit = false;
		for (uint32_t k = 0; k < n && !hit; k++)
			hit = strcmp(ls[k].key, s->labels[i]->key) == 0 && strcmp(ls[k].value, s->labels[i]->value) == 0;
		if (!hit)
			return false;
	}
	return true;
}

/* Packs an AgentInfo for v into a malloc'd buffer. */
int opapi_pack_info(const struct opapi_view *v, uint8_t **ret, size_t *ret_len)
{
	Ms__V1__AgentInfo ai = MS__V1__AGENT_INFO__INIT;
	Ms__V1__Capability cap = MS__V1__CAPABILITY__INIT;
	Ms__V1__Label lab[WIRE_MAX_LABELS], *labp[WIRE_MAX_LABELS];
	Ms__V1__EventCapability ev[WIRE_MAX_EVENTS], *evp[WIRE_MAX_EVENTS];
	const struct wire_label *ls;
	uint32_t nl;
	labels_of_(v, &ls, &nl);
	for (uint32_t i = 0; i < nl; i++) {
		ms__v1__label__init(&lab[i]);
		lab[i].key = (char *)ls[i].key;
		lab[i].value = (char *)ls[i].value;
		labp[i] = &lab[i];
	}
	ai.agent_id = (char *)v->id;
	ai.labels = labp;
	ai.n_labels = nl;
	if (v->in_reg) {
		const struct wire_hello *h = &v->ra.hello;
		ai.host = (char *)h->host;
		ai.version = (char *)h->version;
		ai.control_endpoint = (char *)h->control_endpoint;
		for (uint32_t i = 0; i < h->nevents && i < WIRE_MAX_EVENTS; i++) {
			ms__v1__event_capability__init(&ev[i]);
			ev[i].name = (char *)h->events[i].name;
			ev[i].source = h->events[i].source ? MS__V1__EVENT_SOURCE__SOURCE_SW : MS__V1__EVENT_SOURCE__SOURCE_HW;
			ev[i].live = h->events[i].live;
			ev[i].reason = (char *)h->events[i].reason;
			evp[i] = &ev[i];
		}
		cap.events = evp;
		cap.n_events = h->nevents;
		cap.hook_tier = (char *)h->hook_tier;
		cap.synthetic = h->synthetic;
		cap.kernel = (char *)h->kernel;
		cap.ncpu = h->ncpu;
		ai.capability = &cap;
		ai.state = v->ra.state == REGISTRY_LIVE ? "live" : "stale";
		ai.mode = v->ra.mode ? MS__V1__MODE__MODE_DIAGNOSTIC : MS__V1__MODE__MODE_SENTINEL;
		ai.last_seq = v->ra.last_seq;
		ai.lag_ms = v->ra.lag_ms;
		ai.windows_accepted = v->ra.windows;
		ai.spool_windows = v->ra.spool_windows;
		uint64_t now = opapi_mono_ms();
		ai.last_seen_ns = opapi_real_ns() - (now > v->ra.last_seen_ms ? now - v->ra.last_seen_ms : 0) * 1000000u;
	} else {
		ai.host = (char *)v->wa.host;
		ai.version = (char *)v->wa.version;
		ai.state = v->wa.connected ? "live" : "stale";
		ai.last_seen_ns = v->wa.last_change_ns;
	}
	if (v->in_watch) {
		ai.watching = v->wa.connected;
		ai.pin = (Ms__V1__ModeRequest)v->wa.pin;
		ai.pin_expires_ns = v->wa.pin_expires_ns;
		if (!v->in_reg && v->wa.pin) /* no windows to tell the mode: the pin says it */
			ai.mode = v->wa.pin == MS__V1__MODE_REQUEST__MODE_REQUEST_DIAGNOSTIC ? MS__V1__MODE__MODE_DIAGNOSTIC
											 : MS__V1__MODE__MODE_SENTINEL;
	}
	size_t n = ms__v1__agent_info__get_packed_size(&ai);
	uint8_t *buf = malloc(n ? n : 1);
	if (!buf)
		return -ENOMEM;
	ms__v1__agent_info__pack(&ai, buf);
	*ret = buf;
	*ret_len = n;
	return 0;
}

int opapi_list_one(void *c, struct opapi_view *v)
{
	struct opapi_listctx *l = c;
	if (!opapi_selector_match(l->sel, v))
		return 0;
	uint8_t *b;
	size_t n;
	if (opapi_pack_info(v, &b, &n) < 0)
		return -ENOMEM;
	if (l->len + n + 11 > l->cap) {
		size_t nc = (l->cap + n + 11) * 2;
		uint8_t *p = realloc(l->out, nc);
		if (!p) {
			free(b);
			return -ENOMEM;
		}
		l->out = p;
		l->cap = nc;
	}
	l->out[l->len++] = 0x0a;
	uint64_t x = n;
	do {
		l->out[l->len] = (uint8_t)(x & 0x7f);
		x >>= 7;
		if (x)
			l->out[l->len] |= 0x80;
		l->len++;
	} while (x);
	memcpy(l->out + l->len, b, n);
	l->len += n;
	free(b);
	return 0;
}

