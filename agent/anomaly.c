/* anomaly: see anomaly.h. */
#include "anomaly.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NETDEV_MAX_BYTES (256u << 10)
#define LATENCY_MAX_BYTES 128
#define PKT_DROPS_MIN 10.0

struct dirstate {
	double bps, pps, dps;
	double base_bps, base_dps;
	uint32_t nsamples;
	uint32_t quiet[ANOMALY__NIFKINDS];   /* consecutive intervals without the condition */
	uint64_t since_real[ANOMALY__NIFKINDS];
	uint64_t since_mono;                 /* start of the current throughput signal */
};

struct iface {
	char name[ANOMALY_IFNAME];
	bool present, have_prev;
	struct anomaly_sample prev;
	uint64_t prev_ms;
	uint32_t active;
	struct dirstate d[2];
};

struct anomaly {
	struct anomaly_opts o;
	char netdev_path[256];
	char latency_file[256];
	bool explicit_list;
	uint32_t n;
	struct iface ifs[ANOMALY_MAX_IFACES];
	bool started;
	uint64_t last_ms;
	/* latency */
	bool lat_valid, lat_active;
	double lat_us, lat_base;
	uint32_t lat_n, lat_quiet;
	uint64_t lat_since_real, lat_since_mono;
	uint64_t fired[ANOMALY__NKINDS];
	uint64_t evaluations, read_errors, relearned;
	char *buf; /* read buffer for /proc/net/dev */
};

const char *anomaly_kind_name(int kind)
{
	static const char *const names[ANOMALY__NKINDS] = { "stop", "drop", "spike", "packet_drops", "latency" };
	return kind >= 0 && kind < ANOMALY__NKINDS ? names[kind] : "unknown";
}

static bool valid_ifname(const char *s, size_t len)
{
	if (len == 0 || len >= ANOMALY_IFNAME)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] <= ' ' || s[i] == '/' || s[i] == ':' || (unsigned char)s[i] >= 0x7f)
			return false;
	return true;
}

int anomaly_new(const struct anomaly_opts *opts, struct anomaly **ret)
{
	struct anomaly *a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->o = *opts;
	struct anomaly_opts *o = &a->o;
	o->interval_ms = o->interval_ms ? o->interval_ms : 500;
	o->drop_ratio = o->drop_ratio > 0 ? o->drop_ratio : 0.6;
	o->stop_ratio = o->stop_ratio > 0 ? o->stop_ratio : 0.05;
	o->spike_ratio = o->spike_ratio > 0 ? o->spike_ratio : 3.0;
	o->latency_ratio = o->latency_ratio > 0 ? o->latency_ratio : 2.0;
	o->min_bytes_per_sec = o->min_bytes_per_sec > 0 ? o->min_bytes_per_sec : 16384;
	o->alpha = o->alpha > 0 ? o->alpha : 0.2;
	o->warmup = o->warmup ? o->warmup : 4;
	o->clear_intervals = o->clear_intervals ? o->clear_intervals : 2;
	o->relearn_ms = o->relearn_ms ? o->relearn_ms : 60000;
	int r = 0;
	if (o->alpha > 1 || o->stop_ratio >= o->drop_ratio || o->drop_ratio >= 1 || o->spike_ratio <= 1 ||
	    o->latency_ratio <= 1)
		r = -EINVAL;
	if (snprintf(a->netdev_path, sizeof(a->netdev_path), "%s", o->netdev_path ? o->netdev_path : "/proc/net/dev") >=
		    (int)sizeof(a->netdev_path) ||
	    snprintf(a->latency_file, sizeof(a->latency_file), "%s", o->latency_file ? o->latency_file : "") >=
		    (int)sizeof(a->latency_file))
		r = -ENAMETOOLONG;
	o->netdev_path = o->latency_file = o->interfaces = NULL; /* not kept: copies above */
	if (r == 0 && opts->interfaces && opts->interfaces[0]) {
		a->explicit_list = true;
		const char *p = opts->interfaces;
		while (*p && r == 0) {
			while (*p == ' ' || *p == ',')
				p++;
			size_t len = strcspn(p, ", ");
			if (len == 0)
				break;
			if (!valid_ifname(p, len) || a->n >= ANOMALY_MAX_IFACES) {
				r = -EINVAL;
				break;
			}
			memcpy(a->ifs[a->n].name, p, len);
			a->ifs[a->n].name[len] = 0;
			a->n++;
			p += len;
		}
	}
	if (r == 0 && !(a->buf = malloc(NETDEV_MAX_BYTES + 1)))
		r = -ENOMEM;
	if (r < 0) {
		anomaly_free(a);
		return r;
	}
	*ret = a;
	return 0;
}

struct anomaly *anomaly_free(struct anomaly *a)
{
	if (a) {
		free(a->buf);
		free(a);
	}
	return NULL;
}

/* ---- parsing ----------------------------------------------------------------------------- */

static int parse_u64(const char **pp, const char *end, uint64_t *ret)
{
	const char *p = *pp;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	if (p >= end || *p < '0' || *p > '9')
		return -EINVAL;
	uint64_t v = 0;
	while (p < end && *p >= '0' && *p <= '9') {
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
		p++;
	}
	*pp = p;
	*ret = v;
	return 0;
}

static int parse_line(const char *p, const char *end, struct anomaly_sample *s)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	const char *colon = memchr(p, ':', (size_t)(end - p));
	if (!colon || !valid_ifname(p, (size_t)(colon - p)))
		return -EINVAL;
	memset(s, 0, sizeof(*s));
	memcpy(s->name, p, (size_t)(colon - p));
	p = colon + 1;
	uint64_t v[16];
	for (int i = 0; i < 16; i++)
		if (parse_u64(&p, end, &v[i]) < 0)
			return -EINVAL;
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\r'))
		p++;
	if (p != end)
		return -EINVAL;
	/* rx: bytes packets errs drop fifo frame compressed multicast; tx: bytes packets errs drop ... */
	s->bytes[ANOMALY_RX] = v[0];
	s->packets[ANOMALY_RX] = v[1];
	s->dropped[ANOMALY_RX] = v[3];
	s->bytes[ANOMALY_TX] = v[8];
	s->packets[ANOMALY_TX] = v[9];
	s->dropped[ANOMALY_TX] = v[11];
	return 0;
}

int anomaly_parse_netdev(const char *buf, size_t len, struct anomaly_sample *out, size_t max)
{
	const char *p = buf, *end = buf + len;
	int line = 0, n = 0;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		if (line == 0 && !(le - p >= 6 && memcmp(p, "Inter-", 6) == 0))
			return -EINVAL;
		if (line == 1 && !memchr(p, '|', (size_t)(le - p)))
			return -EINVAL;
		if (line >= 2 && (size_t)n < max && parse_line(p, le, &out[n]) == 0)
			n++;
		line++;
		p = nl ? nl + 1 : end;
	}
	return line >= 2 ? n : -EINVAL;
}

int anomaly_parse_latency(const char *buf, size_t len, double *ret_us)
{
	char tmp[LATENCY_MAX_BYTES];
	size_t b = 0, e = len;
	while (b < e && (buf[b] == ' ' || buf[b] == '\t' || buf[b] == '\n' || buf[b] == '\r'))
		b++;
	while (e > b && (buf[e - 1] == ' ' || buf[e - 1] == '\t' || buf[e - 1] == '\n' || buf[e - 1] == '\r'))
		e--;
	if (e == b || e - b >= sizeof(tmp))
		return -EINVAL;
	/* digits with at most one '.', nothing else: strtod alone would take hex, inf and nan */
	int dots = 0;
	for (size_t i = b; i < e; i++) {
		if (buf[i] == '.')
			dots++;
		else if (buf[i] < '0' || buf[i] > '9')
			return -EINVAL;
	}
	if (dots > 1 || (e - b == 1 && dots))
		return -EINVAL;
	memcpy(tmp, buf + b, e - b);
	tmp[e - b] = 0;
	char *endp;
	double v = strtod(tmp, &endp);
	if (*endp || !isfinite(v) || v < 0)
		return -EINVAL;
	*ret_us = v;
	return 0;
}

/* ---- evaluation ------------------------------------------------------------------------- */

static struct iface *find_iface(struct anomaly *a, const char *name, bool add)
{
	for (uint32_t i = 0; i < a->n; i++)
		if (strcmp(a->ifs[i].name, name) == 0)
			return &a->ifs[i];
	if (!add || a->explicit_list)
		return NULL;
	struct iface *f = NULL;
	if (a->n < ANOMALY_MAX_IFACES)
		f = &a->ifs[a->n++];
	else
		for (uint32_t i = 0; i < a->n && !f; i++)
			if (!a->ifs[i].present)
				f = &a->ifs[i]; /* reuse the slot of a vanished interface */
	if (f) {
		memset(f, 0, sizeof(*f));
		snprintf(f->name, sizeof(f->name), "%s", name);
	}
	return f;
}

static void raise_sig(struct anomaly *a, struct iface *f, int dir, int kind, bool cond, uint64_t now, uint64_t real)
{
	uint32_t bit = 1u << (dir * ANOMALY__NIFKINDS + kind);
	struct dirstate *d = &f->d[dir];
	if (cond) {
		d->quiet[kind] = 0;
		if (!(f->active & bit)) {
			f->active |= bit;
			d->since_real[kind] = real;
			a->fired[kind]++;
			if (kind != ANOMALY_PACKET_DROPS && !(f->active & (7u << (dir * ANOMALY__NIFKINDS)) & ~bit))
				d->since_mono = now;
		}
	} else if ((f->active & bit) && ++d->quiet[kind] >= a->o.clear_intervals) {
		f->active &= ~bit;
		d->since_real[kind] = 0;
	}
}

static void eval_dir(struct anomaly *a, struct iface *f, int dir, double dt, const struct anomaly_sample *s,
		     uint64_t now, uint64_t real)
{
	struct dirstate *d = &f->d[dir];
	const struct anomaly_opts *o = &a->o;
	d->bps = (double)(s->bytes[dir] - f->prev.bytes[dir]) / dt;
	d->pps = (double)(s->packets[dir] - f->prev.packets[dir]) / dt;
	d->dps = (double)(s->dropped[dir] - f->prev.dropped[dir]) / dt;
	if (d->nsamples < o->warmup) {
		d->base_bps = d->nsamples ? d->base_bps + o->alpha * (d->bps - d->base_bps) : d->bps;
		d->base_dps = d->nsamples ? d->base_dps + o->alpha * (d->dps - d->base_dps) : d->dps;
		d->nsamples++;
		return;
	}
	bool eligible = d->base_bps >= o->min_bytes_per_sec;
	bool stop = eligible && d->bps <= o->stop_ratio * d->base_bps;
	bool drop = eligible && !stop && d->bps < o->drop_ratio * d->base_bps;
	bool spike = eligible && d->bps > o->spike_ratio * d->base_bps;
	bool pdrop = d->dps >= PKT_DROPS_MIN && d->dps > 0.01 * d->pps && d->dps > 3.0 * d->base_dps;
	raise_sig(a, f, dir, ANOMALY_STOP, stop, now, real);
	raise_sig(a, f, dir, ANOMALY_DROP, drop, now, real);
	raise_sig(a, f, dir, ANOMALY_SPIKE, spike, now, real);
	raise_sig(a, f, dir, ANOMALY_PACKET_DROPS, pdrop, now, real);
	uint32_t tmask = 7u << (dir * ANOMALY__NIFKINDS); /* stop, drop, spike */
	if (f->active & tmask) {
		if (now - d->since_mono >= o->relearn_ms) {
			/* a level that lasted this long is the new normal */
			d->base_bps = d->bps;
			f->active &= ~tmask;
			for (int k = 0; k < 3; k++)
				d->since_real[k] = 0;
			a->relearned++;
		}
	} else {
		d->base_bps += o->alpha * (d->bps - d->base_bps);
	}
	if (!(f->active & (1u << (dir * ANOMALY__NIFKINDS + ANOMALY_PACKET_DROPS))))
		d->base_dps += o->alpha * (d->dps - d->base_dps);
}

static void eval_latency(struct anomaly *a, const double *lat, uint64_t now, uint64_t real)
{
	a->lat_valid = lat != NULL;
	if (!lat)
		return;
	a->lat_us = *lat;
	if (a->lat_n < a->o.warmup) {
		a->lat_base = a->lat_n ? a->lat_base + a->o.alpha * (*lat - a->lat_base) : *lat;
		a->lat_n++;
		return;
	}
	bool spike = a->lat_base > 0 && *lat > a->o.latency_ratio * a->lat_base;
	if (spike) {
		a->lat_quiet = 0;
		if (!a->lat_active) {
			a->lat_active = true;
			a->lat_since_real = real;
			a->lat_since_mono = now;
			a->fired[ANOMALY_LATENCY]++;
		} else if (now - a->lat_since_mono >= a->o.relearn_ms) {
			a->lat_base = *lat; /* the new normal */
			a->lat_active = false;
			a->relearned++;
		}
	} else if (a->lat_active && ++a->lat_quiet >= a->o.clear_intervals) {
		a->lat_active = false;
	}
	if (!a->lat_active)
		a->lat_base += a->o.alpha * (*lat - a->lat_base);
}

void anomaly_feed(struct anomaly *a, const struct anomaly_sample *s, size_t n, const double *latency_us,
		  uint64_t now_ms, uint64_t real_ms)
{
	for (uint32_t i = 0; i < a->n; i++)
		a->ifs[i].present = false;
	for (size_t i = 0; i < n; i++) {
		if (!a->explicit_list && strcmp(s[i].name, "lo") == 0)
			continue;
		struct iface *f = find_iface(a, s[i].name, true);
		if (!f)
			continue;
		f->present = true;
		bool reset = false;
		for (int d = 0; d < 2; d++)
			reset |= s[i].bytes[d] < f->prev.bytes[d] || s[i].packets[d] < f->prev.packets[d] ||
				 s[i].dropped[d] < f->prev.dropped[d];
		if (f->have_prev && !reset && now_ms > f->prev_ms) {
			double dt = (double)(now_ms - f->prev_ms) / 1000.0;
			for (int d = 0; d < 2; d++)
				eval_dir(a, f, d, dt, &s[i], now_ms, real_ms);
		}
		f->prev = s[i];
		f->prev_ms = now_ms;
		f->have_prev = true;
	}
	/* an interface that vanished keeps no signal (its counters are gone, not zero) */
	for (uint32_t i = 0; i < a->n; i++)
		if (!a->ifs[i].present) {
			a->ifs[i].active = 0;
			a->ifs[i].have_prev = false;
		}
	eval_latency(a, latency_us, now_ms, real_ms);
	a->evaluations++;
}

static ssize_t read_file(const char *path, char *buf, size_t max)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t n = 0;
	while (n < max) {
		ssize_t r = read(fd, buf + n, max - n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			int e = -errno;
			close(fd);
			return e;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	return (ssize_t)n;
}

int anomaly_tick(struct anomaly *a, uint64_t now_ms, uint64_t real_ms)
{
	if (a->started && now_ms - a->last_ms < a->o.interval_ms)
		return 0;
	a->started = true;
	a->last_ms = now_ms;
	ssize_t len = read_file(a->netdev_path, a->buf, NETDEV_MAX_BYTES);
	struct anomaly_sample s[ANOMALY_MAX_IFACES * 2];
	int n = len < 0 ? (int)len : anomaly_parse_netdev(a->buf, (size_t)len, s, sizeof(s) / sizeof(s[0]));
	if (n < 0) {
		a->read_errors++;
		return n;
	}
	double lat, *latp = NULL;
	if (a->latency_file[0]) {
		char lb[LATENCY_MAX_BYTES];
		ssize_t ll = read_file(a->latency_file, lb, sizeof(lb));
		if (ll > 0 && anomaly_parse_latency(lb, (size_t)ll, &lat) == 0)
			latp = &lat;
	}
	anomaly_feed(a, s, (size_t)n, latp, now_ms, real_ms);
	return 1;
}

bool anomaly_active(const struct anomaly *a)
{
	if (a->lat_active)
		return true;
	for (uint32_t i = 0; i < a->n; i++)
		if (a->ifs[i].active)
			return true;
	return false;
}

size_t anomaly_signals(const struct anomaly *a, struct anomaly_signal *out, size_t max)
{
	size_t n = 0;
	for (uint32_t i = 0; i < a->n; i++) {
		const struct iface *f = &a->ifs[i];
		for (int d = 0; d < 2 && f->active; d++)
			for (int k = 0; k < ANOMALY__NIFKINDS; k++) {
				if (!(f->active & (1u << (d * ANOMALY__NIFKINDS + k))))
					continue;
				if (n < max) {
					struct anomaly_signal *s = &out[n];
					bool pd = k == ANOMALY_PACKET_DROPS;
					memcpy(s->ifname, f->name, sizeof(s->ifname));
					s->dir = (uint8_t)d;
					s->kind = (uint8_t)k;
					s->value = pd ? f->d[d].dps : f->d[d].bps;
					s->baseline = pd ? f->d[d].base_dps : f->d[d].base_bps;
					s->since_ms = f->d[d].since_real[k];
				}
				n++;
			}
	}
	if (a->lat_active) {
		if (n < max)
			out[n] = (struct anomaly_signal){ .kind = ANOMALY_LATENCY, .value = a->lat_us,
							  .baseline = a->lat_base, .since_ms = a->lat_since_real };
		n++;
	}
	return n;
}

void anomaly_view(const struct anomaly *a, struct anomaly_view *v)
{
	memset(v, 0, sizeof(*v));
	v->n = a->n;
	for (uint32_t i = 0; i < a->n; i++) {
		const struct iface *f = &a->ifs[i];
		struct anomaly_iface_view *x = &v->ifs[i];
		memcpy(x->name, f->name, sizeof(x->name));
		x->present = f->present;
		x->warm = f->d[0].nsamples >= a->o.warmup;
		x->active = f->active;
		for (int d = 0; d < 2; d++) {
			x->bytes_per_sec[d] = f->d[d].bps;
			x->packets_per_sec[d] = f->d[d].pps;
			x->drops_per_sec[d] = f->d[d].dps;
			x->baseline_bytes_per_sec[d] = f->d[d].base_bps;
			memcpy(x->since_ms[d], f->d[d].since_real, sizeof(x->since_ms[d]));
		}
	}
	v->latency_configured = a->latency_file[0] != 0;
	v->latency_valid = a->lat_valid;
	v->latency_active = a->lat_active;
	v->latency_us = a->lat_us;
	v->latency_baseline_us = a->lat_base;
	v->latency_since_ms = a->lat_active ? a->lat_since_real : 0;
	v->active = anomaly_active(a);
	memcpy(v->fired, a->fired, sizeof(v->fired));
	v->evaluations = a->evaluations;
	v->read_errors = a->read_errors;
	v->relearned = a->relearned;
	v->interval_ms = a->o.interval_ms;
}
