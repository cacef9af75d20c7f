/* wire: the Request envelope, Hello, Heartbeat and Ack (see wire.h). */
#include "wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ms.pb-c.h"

static int copy_str(char *dst, size_t cap, const char *src)
{
	size_t n = src ? strlen(src) : 0;
	if (n >= cap)
		return -EINVAL;
	memcpy(dst, src ? src : "", n + 1);
	return 0;
}

int wire_parse_labels(const char *s, struct wire_hello *h)
{
	h->nlabels = 0;
	while (s && *s) {
		const char *end = strchr(s, ',');
		size_t len = end ? (size_t)(end - s) : strlen(s);
		const char *eq = memchr(s, '=', len);
		if (!eq || eq == s)
			return -EINVAL;
		size_t klen = (size_t)(eq - s), vlen = len - klen - 1;
		if (h->nlabels == WIRE_MAX_LABELS)
			return -E2BIG;
		struct wire_label *l = &h->labels[h->nlabels];
		if (klen >= sizeof(l->key) || vlen >= sizeof(l->value) || memchr(eq + 1, '=', vlen))
			return -EINVAL;
		memcpy(l->key, s, klen);
		l->key[klen] = 0;
		memcpy(l->value, eq + 1, vlen);
		l->value[vlen] = 0;
		h->nlabels++;
		if (!end)
			break;
		s = end + 1;
		if (!*s)
			return -EINVAL; /* trailing comma */
	}
	return 0;
}

/* ------------------------------------------------------------------ windows (wire.c's helpers) */

void wire_counters_to_pb(const struct wire_counters *c, void *pb_counters)
{
	Ms__V1__Counters *p = pb_counters;
	ms__v1__counters__init(p);
	p->emitted = c->bpf[MS_CNT_EMITTED];
	p->budget = c->bpf[MS_CNT_DROP_BUDGET];
	p->gap = c->bpf[MS_CNT_DROP_GAP];
	p->ringfull = c->bpf[MS_CNT_DROP_RINGFULL];
	p->unattributed = c->bpf[MS_CNT_UNATTRIBUTED];
	p->attr_thread = c->bpf[MS_CNT_ATTR_THREAD];
	p->attr_packet = c->bpf[MS_CNT_ATTR_PACKET];
	p->idle = c->bpf[MS_CNT_IDLE];
	p->filtered = c->bpf[MS_CNT_FILTERED];
	p->ctx_rx = c->bpf[MS_CNT_CTX_RX];
	p->ctx_tx = c->bpf[MS_CNT_CTX_TX];
	p->ctx_sock = c->bpf[MS_CNT_CTX_SOCK];
	p->ctx_parse_fail = c->bpf[MS_CNT_CTX_PARSE_FAIL];
	p->stack_fail = c->bpf[MS_CNT_STACK_FAIL];
	p->processed = c->processed;
	p->lost = c->lost;
	p->agg_degraded = c->agg_degraded;
	p->agg_dropped = c->agg_dropped;
	p->flows_overflow = c->flows_overflow;
}

/* One block: the Stack structs, their pointer array, then every frame index. Cost: O(frames). */
int wire_stacks_to_pb(const struct wire_window *w, void *pb_window, uint32_t (*func_ix)(void *ctx, uint64_t func_id),
		      void *ctx, void **ret_mem)
{
	Ms__V1__Window *m = pb_window;
	*ret_mem = NULL;
	if (!w->nstacks)
		return 0;
	if (w->nstacks > WIRE_MAX_STACKS || !w->stacks)
		return w->stacks ? -E2BIG : -EINVAL;
	size_t nfr = 0;
	for (uint32_t i = 0; i < w->nstacks; i++) {
		if ((uint32_t)w->stacks[i].nkernel + w->stacks[i].nuser > WIRE_MAX_FRAMES)
			return -E2BIG;
		nfr += (size_t)w->stacks[i].nkernel + w->stacks[i].nuser;
	}
	size_t ns = w->nstacks;
	char *mem = calloc(1, ns * (sizeof(Ms__V1__Stack) + sizeof(void *)) + nfr * sizeof(uint32_t) + 1);
	if (!mem)
		return -ENOMEM;
	Ms__V1__Stack *st = (void *)mem;
	Ms__V1__Stack **pst = (void *)(st + ns);
	uint32_t *fr = (void *)(pst + ns);
	for (size_t i = 0; i < ns; i++) {
		const struct wire_stack *s = &w->stacks[i];
		uint32_t n = (uint32_t)s->nkernel + s->nuser;
		ms__v1__stack__init(&st[i]);
		pst[i] = &st[i];
		st[i].stack_id = s->stack_id;
		st[i].nkernel = s->nkernel;
		st[i].n_frames = n;
		st[i].frames = fr;
		for (uint32_t k = 0; k < n; k++)
			*fr++ = func_ix(ctx, s->func_ids[k]);
	}
	m->n_stacks = ns;
	m->stacks = pst;
	*ret_mem = mem;
	return 0;
}

/* ------------------------------------------------------------------ requests */

static size_t varint_put(uint8_t *p, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

/* Packs the envelope m plus (optionally) raw bytes as field `field` (length-delimited). */
static int pack_request(const Ms__V1__Request *m, unsigned field, const uint8_t *raw, size_t raw_len,
			uint8_t **ret_buf, size_t *ret_len)
{
	size_t head = protobuf_c_message_get_packed_size(&m->base);
	size_t extra = raw ? 1 + 10 + raw_len : 0;
	uint8_t *buf = malloc(head + extra + 1);
	if (!buf)
		return -ENOMEM;
	size_t n = protobuf_c_message_pack(&m->base, buf);
	if (raw) {
		buf[n++] = (uint8_t)(field << 3 | 2);
		n += varint_put(buf + n, raw_len);
		if (raw_len)
			memcpy(buf + n, raw, raw_len);
		n += raw_len;
	}
	*ret_buf = buf;
	*ret_len = n;
	return 0;
}

static int envelope(Ms__V1__Request *m, const char *token, uint64_t low_water)
{
	if (token && strlen(token) >= WIRE_TOKEN_MAX)
		return -EINVAL;
	m->protocol = WIRE_PROTOCOL;
	m->token = (char *)(token ? token : "");
	m->low_water = low_water;
	return 0;
}

int wire_request_window(const char *token, uint64_t low_water, const uint8_t *win, size_t win_len,
			uint8_t **ret_buf, size_t *ret_len)
{
	Ms__V1__Request m = MS__V1__REQUEST__INIT;
	if (!win || envelope(&m, token, low_water) < 0)
		return -EINVAL;
	return pack_request(&m, 5, win, win_len, ret_buf, ret_len);
}

int wire_request_hello(const char *token, uint64_t low_water, const struct wire_hello *h, uint8_t **ret_buf,
		       size_t *ret_len)
{
	Ms__V1__Request m = MS__V1__REQUEST__INIT;
	Ms__V1__Hello p = MS__V1__HELLO__INIT;
	Ms__V1__Capability cap = MS__V1__CAPABILITY__INIT;
	Ms__V1__Label lab[WIRE_MAX_LABELS], *plab[WIRE_MAX_LABELS];
	Ms__V1__EventCapability ev[WIRE_MAX_EVENTS], *pev[WIRE_MAX_EVENTS];
	if (envelope(&m, token, low_water) < 0 || !wire_valid_agent_id(h->agent_id) ||
	    h->nlabels > WIRE_MAX_LABELS || h->nevents > WIRE_MAX_EVENTS)
		return -EINVAL;
	p.agent_id = (char *)h->agent_id;
	p.host = (char *)h->host;
	p.version = (char *)h->version;
	p.control_endpoint = (char *)h->control_endpoint;
	p.next_seq = h->next_seq;
	p.spool_windows = h->spool_windows;
	p.window_ms = h->window_ms;
	p.instance = h->instance;
	for (uint32_t i = 0; i < h->nlabels; i++) {
		ms__v1__label__init(&lab[i]);
		lab[i].key = (char *)h->labels[i].key;
		lab[i].value = (char *)h->labels[i].value;
		plab[i] = &lab[i];
	}
	p.n_labels = h->nlabels;
	p.labels = plab;
	for (uint32_t i = 0; i < h->nevents; i++) {
		ms__v1__event_capability__init(&ev[i]);
		ev[i].name = (char *)h->events[i].name;
		ev[i].reason = (char *)h->events[i].reason;
		ev[i].source = h->events[i].source ? MS__V1__EVENT_SOURCE__SOURCE_SW : MS__V1__EVENT_SOURCE__SOURCE_HW;
		ev[i].live = h->events[i].live;
		pev[i] = &ev[i];
	}
	cap.n_events = h->nevents;
	cap.events = pev;
	cap.hook_tier = (char *)h->hook_tier;
	cap.kernel = (char *)h->kernel;
	cap.synthetic = h->synthetic;
	cap.ncpu = h->ncpu;
	p.capability = &cap;
	m.body_case = MS__V1__REQUEST__BODY_HELLO;
	m.hello = &p;
	return pack_request(&m, 0, NULL, 0, ret_buf, ret_len);
}

int wire_request_heartbeat(const char *token, uint64_t low_water, const struct wire_heartbeat *hb,
			   uint8_t **ret_buf, size_t *ret_len)
{
	Ms__V1__Request m = MS__V1__REQUEST__INIT;
	Ms__V1__Heartbeat p = MS__V1__HEARTBEAT__INIT;
	if (envelope(&m, token, low_water) < 0 || !wire_valid_agent_id(hb->agent_id) || hb->mode > 1)
		return -EINVAL;
	p.agent_id = (char *)hb->agent_id;
	p.next_seq = hb->next_seq;
	p.spool_windows = hb->spool_windows;
	p.mode = hb->mode;
	m.body_case = MS__V1__REQUEST__BODY_HEARTBEAT;
	m.heartbeat = &p;
	return pack_request(&m, 0, NULL, 0, ret_buf, ret_len);
}

static int dec_hello(const Ms__V1__Hello *p, struct wire_hello *h)
{
	if (!wire_valid_agent_id(p->agent_id) || p->n_labels > WIRE_MAX_LABELS)
		return -EINVAL;
	if (copy_str(h->agent_id, sizeof(h->agent_id), p->agent_id) < 0 ||
	    copy_str(h->host, sizeof(h->host), p->host) < 0 ||
	    copy_str(h->version, sizeof(h->version), p->version) < 0 ||
	    copy_str(h->control_endpoint, sizeof(h->control_endpoint), p->control_endpoint) < 0)
		return -EINVAL;
	for (size_t i = 0; i < p->n_labels; i++)
		if (!p->labels[i]->key[0] || copy_str(h->labels[i].key, sizeof(h->labels[i].key), p->labels[i]->key) < 0 ||
		    copy_str(h->labels[i].value, sizeof(h->labels[i].value), p->labels[i]->value) < 0)
			return -EINVAL;
	h->nlabels = (uint32_t)p->n_labels;
	const Ms__V1__Capability *c = p->capability;
	if (c) {
		if (c->n_events > WIRE_MAX_EVENTS || copy_str(h->hook_tier, sizeof(h->hook_tier), c->hook_tier) < 0 ||
		    copy_str(h->kernel, sizeof(h->kernel), c->kernel) < 0)
			return -EINVAL;
		for (size_t i = 0; i < c->n_events; i++) {
			struct wire_event_cap *e = &h->events[i];
			if (copy_str(e->name, sizeof(e->name), c->events[i]->name) < 0 ||
			    copy_str(e->reason, sizeof(e->reason), c->events[i]->reason) < 0 ||
			    (uint32_t)c->events[i]->source > 1)
				return -EINVAL;
			e->source = (uint8_t)c->events[i]->source;
			e->live = c->events[i]->live;
		}
		h->nevents = (uint32_t)c->n_events;
		h->synthetic = c->synthetic;
		h->ncpu = c->ncpu;
	}
	h->next_seq = p->next_seq;
	h->spool_windows = p->spool_windows;
	h->window_ms = p->window_ms;
	h->instance = p->instance;
	return 0;
}

int wire_decode_request(const uint8_t *buf, size_t len, struct wire_request *ret)
{
	memset(ret, 0, sizeof(*ret));
	if (!buf && len)
		return -EINVAL;
	Ms__V1__Request *m = ms__v1__request__unpack(NULL, len, buf);
	if (!m)
		return -EBADMSG;
	int r = 0;
	if (m->protocol == 0 || m->body_case == MS__V1__REQUEST__BODY__NOT_SET) {
		r = -EBADMSG;
	} else if (m->protocol > WIRE_PROTOCOL) {
		r = -EPROTONOSUPPORT;
	} else if (copy_str(ret->token, sizeof(ret->token), m->token) < 0) {
		r = -EINVAL;
	} else if (m->body_case == MS__V1__REQUEST__BODY_HELLO) {
		ret->kind = WIRE_KIND_HELLO;
		if (!(ret->hello = calloc(1, sizeof(*ret->hello))))
			r = -ENOMEM;
		else
			r = dec_hello(m->hello, ret->hello);
	} else if (m->body_case == MS__V1__REQUEST__BODY_WINDOW) {
		ret->kind = WIRE_KIND_WINDOW;
		r = wire_window_from_pb(m->window, &ret->window);
	} else if (m->body_case == MS__V1__REQUEST__BODY_HEARTBEAT) {
		ret->kind = WIRE_KIND_HEARTBEAT;
		const Ms__V1__Heartbeat *p = m->heartbeat;
		if (!wire_valid_agent_id(p->agent_id) || (uint32_t)p->mode > 1)
			r = -EINVAL;
		else {
			copy_str(ret->heartbeat.agent_id, sizeof(ret->heartbeat.agent_id), p->agent_id);
			ret->heartbeat.next_seq = p->next_seq;
			ret->heartbeat.spool_windows = p->spool_windows;
			ret->heartbeat.mode = (uint8_t)p->mode;
		}
	} else {
		r = -EBADMSG;
	}
	ret->protocol = m->protocol;
	ret->low_water = m->low_water;
	ms__v1__request__free_unpacked(m, NULL);
	if (r < 0)
		wire_request_release(ret);
	return r;
}

void wire_request_release(struct wire_request *r)
{
	if (!r)
		return;
	free(r->hello);
	wire_window_free(r->window);
	memset(r, 0, sizeof(*r));
}

/* ------------------------------------------------------------------ acks */

int wire_encode_ack(const struct wire_ack *a, uint8_t *buf, size_t cap, size_t *ret_len)
{
	Ms__V1__Ack m = MS__V1__ACK__INIT;
	if ((unsigned)a->status > WIRE_ACK_SEQ_REGRESSION || strnlen(a->agent_id, WIRE_ID_MAX) == WIRE_ID_MAX ||
	    strnlen(a->reason, sizeof(a->reason)) == sizeof(a->reason))
		return -EINVAL;
	m.status = (Ms__V1__AckStatus)a->status;
	m.agent_id = (char *)a->agent_id;
	m.seq = a->seq;
	m.reason = (char *)a->reason;
	m.resume_seq = a->resume_seq;
	m.coordinator_id = a->coordinator_id;
	m.heartbeat_ms = a->heartbeat_ms;
	m.max_message_bytes = a->max_message_bytes;
	size_t n = protobuf_c_message_get_packed_size(&m.base);
	if (n > cap)
		return -ENOSPC;
	*ret_len = protobuf_c_message_pack(&m.base, buf);
	return 0;
}

int wire_decode_ack(const uint8_t *buf, size_t len, struct wire_ack *ret)
{
	if ((!buf && len) || len > WIRE_ACK_MAX)
		return -EBADMSG;
	Ms__V1__Ack *m = ms__v1__ack__unpack(NULL, len, buf);
	if (!m)
		return -EBADMSG;
	struct wire_ack a = { 0 };
	int r = 0;
	if ((unsigned)m->status > WIRE_ACK_SEQ_REGRESSION || m->status == MS__V1__ACK_STATUS__ACK_UNSPECIFIED ||
	    copy_str(a.agent_id, sizeof(a.agent_id), m->agent_id) < 0 ||
	    copy_str(a.reason, sizeof(a.reason), m->reason) < 0)
		r = -EINVAL;
	a.status = (enum wire_ack_status)m->status;
	a.seq = m->seq;
	a.resume_seq = m->resume_seq;
	a.coordinator_id = m->coordinator_id;
	a.heartbeat_ms = m->heartbeat_ms;
	a.max_message_bytes = m->max_message_bytes;
	ms__v1__ack__free_unpacked(m, NULL);
	if (r == 0)
		*ret = a;
	return r;
}

const char *wire_ack_status_name(enum wire_ack_status s)
{
	static const char *const names[] = { "unspecified", "ok", "duplicate", "unknown_agent",
					     "unauthenticated", "invalid", "retry", "seq_regression" };
	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "unknown";
}
