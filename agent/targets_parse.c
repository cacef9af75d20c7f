/* targets: parsing and formatting of target specs (the text forms of targets.h). */
#include "targets.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[TARGETS__NKINDS] = {
	"flow", "port", "proto", "ifindex", "pid", "cgroup",
};

const char *targets_kind_name(enum targets_kind k)
{
	return (unsigned)k < TARGETS__NKINDS ? kind_names[k] : "unknown";
}

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* Unsigned decimal of 1..digits digits within max; no sign, no spaces. */
static int parse_dec(const char *s, size_t len, uint64_t max, uint64_t *ret)
{
	if (len == 0 || len > 10)
		return -EINVAL;
	uint64_t v = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > max)
		return -EINVAL;
	*ret = v;
	return 0;
}

static void mask_addr(uint8_t *a, unsigned plen)
{
	for (unsigned i = 0; i < 16; i++) {
		unsigned bits = plen > i * 8 ? plen - i * 8 : 0;
		if (bits >= 8)
			continue;
		a[i] &= (uint8_t)(0xff00u >> bits);
	}
}

static void set_v4(struct targets_entry *e, const uint8_t v4[4], unsigned plen)
{
	memset(e->u.net.addr, 0, 16);
	e->u.net.addr[10] = e->u.net.addr[11] = 0xff;
	memcpy(e->u.net.addr + 12, v4, 4);
	e->u.net.plen = (uint8_t)(96 + plen);
	mask_addr(e->u.net.addr, e->u.net.plen);
}

/* "10.1." : 1..3 whole octets followed by a dot. */
static int parse_v4_prefix(const char *v, struct targets_entry *e)
{
	uint8_t o[4] = { 0 };
	unsigned n = 0;
	const char *p = v;
	while (*p) {
		const char *dot = strchr(p, '.');
		uint64_t x;
		if (!dot || n >= 3 || parse_dec(p, (size_t)(dot - p), 255, &x) < 0 || dot - p > 3)
			return -EINVAL;
		o[n++] = (uint8_t)x;
		p = dot + 1;
	}
	if (n == 0)
		return -EINVAL;
	set_v4(e, o, n * 8);
	return 0;
}

/* "fd00:1:" : 1..7 whole groups of 1..4 hex digits, each followed by a colon, no "::". */
static int parse_v6_prefix(const char *v, struct targets_entry *e)
{
	memset(e->u.net.addr, 0, 16);
	unsigned n = 0;
	const char *p = v;
	while (*p) {
		const char *c = strchr(p, ':');
		size_t len = c ? (size_t)(c - p) : 0;
		if (!c || len == 0 || len > 4 || n >= 7)
			return -EINVAL;
		unsigned g = 0;
		for (size_t i = 0; i < len; i++) {
			char ch = p[i];
			unsigned d = ch >= '0' && ch <= '9' ? (unsigned)(ch - '0') :
				     ch >= 'a' && ch <= 'f' ? (unsigned)(ch - 'a' + 10) :
				     ch >= 'A' && ch <= 'F' ? (unsigned)(ch - 'A' + 10) : 16u;
			if (d > 15)
				return -EINVAL;
			g = g << 4 | d;
		}
		e->u.net.addr[2 * n] = (uint8_t)(g >> 8);
		e->u.net.addr[2 * n + 1] = (uint8_t)g;
		n++;
		p = c + 1;
	}
	if (n == 0)
		return -EINVAL;
	e->u.net.plen = (uint8_t)(16 * n);
	return 0;
}

static int parse_addr(const char *s, uint8_t *ret16, bool *ret_v4)
{
	uint8_t v4[4];
	if (inet_pton(AF_INET, s, v4) == 1) {
		memset(ret16, 0, 16);
		ret16[10] = ret16[11] = 0xff;
		memcpy(ret16 + 12, v4, 4);
		*ret_v4 = true;
		return 0;
	}
	if (inet_pton(AF_INET6, s, ret16) == 1) {
		*ret_v4 = false;
		return 0;
	}
	return -EINVAL;
}

static int parse_flow(const char *v, struct targets_entry *e, char *err, size_t errlen)
{
	char buf[64];
	size_t len = strlen(v);
	if (len == 0 || len >= sizeof(buf))
		return fail(err, errlen, "flow '%.64s': expected an address, a CIDR or a prefix such as 10.1.", v);
	memcpy(buf, v, len + 1);
	char *slash = strchr(buf, '/');
	bool v4;
	if (slash) {
		*slash = 0;
		uint64_t plen;
		if (parse_addr(buf, e->u.net.addr, &v4) < 0 ||
		    parse_dec(slash + 1, strlen(slash + 1), v4 ? 32 : 128, &plen) < 0)
			return fail(err, errlen, "flow '%s': not a valid CIDR", v);
		e->u.net.plen = (uint8_t)(plen + (v4 ? 96 : 0));
		mask_addr(e->u.net.addr, e->u.net.plen);
		return 0;
	}
	if (parse_addr(buf, e->u.net.addr, &v4) == 0) {
		e->u.net.plen = 128;
		return 0;
	}
	if (buf[len - 1] == '.' && !strchr(buf, ':') && parse_v4_prefix(buf, e) == 0)
		return 0;
	if (buf[len - 1] == ':' && !strstr(buf, "::") && parse_v6_prefix(buf, e) == 0)
		return 0;
	return fail(err, errlen,
		    "flow '%s': expected an address, a CIDR (10.1.0.0/16) or a prefix of whole octets "
		    "ending in '.' (10.1.) or of whole IPv6 groups ending in ':' (fd00:1:)", v);
}

static int parse_proto(const char *v, struct targets_entry *e, char *err, size_t errlen)
{
	static const struct { const char *name; uint8_t num; } names[] = {
		{ "tcp", 6 }, { "udp", 17 }, { "icmp", 1 }, { "icmpv6", 58 }, { "sctp", 132 }, { "udplite", 136 },
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(v, names[i].name) == 0) {
			e->u.proto = names[i].num;
			return 0;
		}
	uint64_t x;
	if (parse_dec(v, strlen(v), 255, &x) < 0)
		return fail(err, errlen, "proto '%.32s': expected tcp, udp, icmp, icmpv6, sctp, udplite or 0..255", v);
	e->u.proto = (uint8_t)x;
	return 0;
}

static int parse_cgroup(const char *v, struct targets_entry *e, char *err, size_t errlen)
{
	/* normalise: drop empty and "." components, refuse "..", keep it relative */
	char out[sizeof(e->u.cgroup)];
	size_t o = 0;
	const char *p = v;
	bool absolute = v[0] == '/';
	while (*p) {
		while (*p == '/')
			p++;
		const char *end = strchr(p, '/');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len == 0)
			break;
		if (len == 2 && p[0] == '.' && p[1] == '.')
			return fail(err, errlen, "cgroup '%.64s': '..' is not allowed", v);
		if (!(len == 1 && p[0] == '.')) {
			for (size_t i = 0; i < len; i++)
				if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
					return fail(err, errlen, "cgroup path contains a control character");
			if (o + len + 2 > sizeof(out))
				return fail(err, errlen, "cgroup path longer than %zu bytes", sizeof(out) - 2);
			if (o)
				out[o++] = '/';
			memcpy(out + o, p, len);
			o += len;
		}
		p += len;
	}
	out[o] = 0;
	if (!absolute && o == 0)
		return fail(err, errlen, "cgroup: empty path (use / for the root cgroup)");
	memcpy(e->u.cgroup, out, o + 1);
	return 0;
}

int targets_parse(const char *kind, const char *value, struct targets_entry *ret, char *err, size_t errlen)
{
	struct targets_entry e;
	memset(&e, 0, sizeof(e));
	int k = -1;
	for (int i = 0; i < TARGETS__NKINDS; i++)
		if (strcmp(kind, kind_names[i]) == 0)
			k = i;
	if (k < 0)
		return fail(err, errlen, "unknown target type '%.32s' (flow, port, proto, ifindex, pid, cgroup)", kind);
	e.kind = (enum targets_kind)k;
	uint64_t x;
	int r = 0;
	switch (e.kind) {
	case TARGETS_FLOW:
		r = parse_flow(value, &e, err, errlen);
		break;
	case TARGETS_PORT:
		if (parse_dec(value, strlen(value), 65535, &x) < 0)
			return fail(err, errlen, "port '%.32s': expected 0..65535", value);
		e.u.port = (uint16_t)x;
		break;
	case TARGETS_PROTO:
		r = parse_proto(value, &e, err, errlen);
		break;
	case TARGETS_IFINDEX:
		if (parse_dec(value, strlen(value), UINT32_MAX, &x) == 0 && x > 0) {
			e.u.ifindex = (uint32_t)x;
		} else {
			unsigned idx = strlen(value) < IF_NAMESIZE && value[0] ? if_nametoindex(value) : 0;
			if (!idx)
				return fail(err, errlen, "ifindex '%.32s': not an index > 0 nor an interface here", value);
			e.u.ifindex = idx;
		}
		break;
	case TARGETS_PID:
		if (parse_dec(value, strlen(value), 4194304, &x) < 0 || x == 0)
			return fail(err, errlen, "pid '%.32s': expected 1..4194304", value);
		e.u.pid = (uint32_t)x;
		break;
	case TARGETS_CGROUP:
		r = parse_cgroup(value, &e, err, errlen);
		break;
	default:
		r = -EINVAL;
	}
	if (r < 0)
		return r;
	*ret = e;
	return 0;
}

int targets_parse_spec(const char *spec, struct targets_entry *ret, char *err, size_t errlen)
{
	const char *colon = strchr(spec, ':');
	char kind[16];
	if (!colon || (size_t)(colon - spec) >= sizeof(kind))
		return fail(err, errlen, "target '%.64s': expected kind:value (e.g. flow:10.1.)", spec);
	memcpy(kind, spec, (size_t)(colon - spec));
	kind[colon - spec] = 0;
	return targets_parse(kind, colon + 1, ret, err, errlen);
}

int targets_parse_list(const char *list, struct targets_entry *out, size_t max, char *err, size_t errlen)
{
	size_t n = 0;
	const char *p = list;
	while (*p == ' ')
		p++;
	if (!*p)
		return 0;
	for (;;) {
		size_t len = strcspn(p, ",");
		size_t b = 0, e = len;
		while (b < e && p[b] == ' ')
			b++;
		while (e > b && p[e - 1] == ' ')
			e--;
		char item[TARGETS_TEXT_MAX];
		if (e == b)
			return fail(err, errlen, "targets: empty item in the list");
		if (e - b >= sizeof(item))
			return fail(err, errlen, "targets: item longer than %zu bytes", sizeof(item) - 1);
		if (n >= max) {
			if (err && errlen)
				snprintf(err, errlen, "targets: more than %zu items", max);
			return -E2BIG;
		}
		memcpy(item, p + b, e - b);
		item[e - b] = 0;
		int r = targets_parse_spec(item, &out[n], err, errlen);
		if (r < 0)
			return r;
		n++;
		if (!p[len])
			break;
		p += len + 1;
	}
	return (int)n;
}

int targets_format(const struct targets_entry *e, char *buf, size_t len)
{
	int n;
	const char *k = targets_kind_name(e->kind);
	switch (e->kind) {
	case TARGETS_FLOW: {
		char a[INET6_ADDRSTRLEN];
		const uint8_t *x = e->u.net.addr;
		static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
		if (e->u.net.plen >= 96 && memcmp(x, mapped, 12) == 0) {
			inet_ntop(AF_INET, x + 12, a, sizeof(a));
			n = snprintf(buf, len, "%s:%s/%u", k, a, e->u.net.plen - 96u);
		} else {
			inet_ntop(AF_INET6, x, a, sizeof(a));
			n = snprintf(buf, len, "%s:%s/%u", k, a, e->u.net.plen);
		}
		break;
	}
	case TARGETS_PORT: n = snprintf(buf, len, "%s:%u", k, e->u.port); break;
	case TARGETS_PROTO: n = snprintf(buf, len, "%s:%u", k, e->u.proto); break;
	case TARGETS_IFINDEX: n = snprintf(buf, len, "%s:%u", k, e->u.ifindex); break;
	case TARGETS_PID: n = snprintf(buf, len, "%s:%u", k, e->u.pid); break;
	case TARGETS_CGROUP: n = snprintf(buf, len, "%s:/%s", k, e->u.cgroup); break;
	default: n = snprintf(buf, len, "unknown"); break;
	}
	return n < 0 || (size_t)n >= len ? -ENOSPC : n;
}
