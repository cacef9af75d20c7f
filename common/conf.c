/* conf: see conf.h. Parsing is strict on purpose: a value is either exactly what its key's type
 * accepts or an error naming where it came from; nothing is clamped, truncated or guessed. */
#include "conf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SHOW_MAX 64                  /* bytes of untrusted text echoed in a message */
#define SHOW_BUF (SHOW_MAX + 4)
#define FLAG_BUF (CONF_NAME_MAX + 3) /* "--" + dashed key name + NUL */

/* Both error helpers return their error code so a failure path is one statement. */
static __attribute__((format(printf, 3, 4))) int set_err(struct conf_error *err, int code,
							   const char *fmt, ...)
{
	va_list ap;
	if (err) {
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return code;
}

/* -EINVAL with "origin: key 'name': why"; the reason is formatted first so the prefix is never
 * the part that gets cut off. */
static __attribute__((format(printf, 4, 5))) int
key_err(struct conf_error *err, const char *origin, const struct conf_key *k, const char *fmt, ...)
{
	char why[320];
	va_list ap;
	if (err) {
		va_start(ap, fmt);
		vsnprintf(why, sizeof(why), fmt, ap);
		va_end(ap);
		snprintf(err->msg, sizeof(err->msg), "%s%skey '%s': %s", origin ? origin : "",
			 origin ? ": " : "", k->name, why);
	}
	return -EINVAL;
}

/* Untrusted text in a message: at most SHOW_MAX bytes and control bytes shown as '?', so one bad
 * line can neither flood the log nor drive the operator's terminal. Text that may be a secret
 * (a string value, a whole line, a mistyped flag's value) is never echoed. */
static const char *show(char buf[SHOW_BUF], const char *s)
{
	size_t i = 0;
	for (; s[i] && i < SHOW_MAX; i++)
		buf[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
	if (s[i]) {
		memcpy(buf + i, "...", 3);
		i += 3;
	}
	buf[i] = '\0';
	return buf;
}

/* A mistyped or invented secret key ("token", "--clickhouse-password") gets the reason it does
 * not exist: secrets are read only from files (secretfile.h), never from values or flags. */
static const char *secret_hint(const char *name)
{
	if (!name)
		return "";
	size_t n = strlen(name);
	bool file = n >= 5 && (!strcmp(name + n - 5, "_file") || !strcmp(name + n - 5, "-file"));
	bool secret = strcasestr(name, "token") || strcasestr(name, "password") || strcasestr(name, "secret") ||
		      strcasestr(name, "passwd");
	return secret && !file ? " (secrets are never config values or flags: put it in a mode 0600 file named by "
				  "the matching *_file key, e.g. token_file, clickhouse_password_file)" : "";
}

/* Own character class: the <ctype.h> ones follow the locale, the config grammar must not. */
static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Consumes [0-9]* at *s into *ret_v and returns how many digits; sets *over on overflow but
 * scans on, so that a syntax error after the digits still wins over the overflow. */
static size_t digits(const char **s, uint64_t *ret_v, bool *over)
{
	const char *start = *s, *p = start;
	uint64_t v = 0;
	for (; is_digit(*p); p++) {
		unsigned d = (unsigned)(*p - '0');
		*over |= v > (UINT64_MAX - d) / 10;
		v = v * 10 + d;
	}
	*ret_v = v;
	*s = p;
	return (size_t)(p - start);
}

/* Names compare with '-' and '_' as the same character: "metrics-port" finds metrics_port. */
static bool names_equal(const char *a, const char *b)
{
	for (;; a++, b++) {
		char x = *a == '-' ? '_' : *a, y = *b == '-' ? '_' : *b;
		if (x != y)
			return false;
		if (!x)
			return true;
	}
}

static void flag_name(char buf[FLAG_BUF], const char *name)
{
	size_t i = 0;
	buf[0] = buf[1] = '-';
	for (; name[i] && i < CONF_NAME_MAX; i++)
		buf[i + 2] = name[i] == '_' ? '-' : name[i];
	buf[i + 2] = '\0';
}

const struct conf_key *conf_find(const struct conf_schema *s, const char *name)
{
	for (size_t i = 0; s && name && i < s->nkeys; i++)
		if (names_equal(s->keys[i].name, name))
			return &s->keys[i];
	return NULL;
}

/* CONF_INT, CONF_UINT64 and CONF_PORT: [+-]?[0-9]+, decimal only (a leading 0 is not octal),
 * within the key's bounds compared as signed (INT, PORT) or unsigned (UINT64). A port's bounds
 * are intersected with 0..65535, so a port is never stored truncated. */
static int set_int(const struct conf_key *k, char *field, const char *v, const char *origin,
		   struct conf_error *err)
{
	char sv[SHOW_BUF];
	const char *p = v + (*v == '+' || *v == '-');
	bool neg = *v == '-', over = false, sign = k->type != CONF_UINT64, ok;
	bool bounded = k->min != k->max;
	int64_t lo = bounded ? k->min : sign ? INT64_MIN : 0;
	int64_t hi = bounded ? k->max : sign ? INT64_MAX : -1;
	uint64_t mag, bits;
	if (k->type == CONF_PORT) {
		lo = bounded && lo > 0 ? lo : 0;
		hi = bounded && hi < 65535 ? hi : 65535;
	}
	if (!digits(&p, &mag, &over) || *p)
		return key_err(err, origin, k, "'%s' is not an integer", show(sv, v));
	/* bits is the two's complement; 2^63 is the one magnitude valid only when negative. */
	bits = neg ? (uint64_t)0 - mag : mag;
	if (sign)
		ok = !over && mag <= (uint64_t)INT64_MAX + neg && (int64_t)bits >= lo &&
		     (int64_t)bits <= hi;
	else
		ok = !over && !(neg && mag) && mag >= (uint64_t)lo && mag <= (uint64_t)hi;
	if (!ok && sign)
		return key_err(err, origin, k, "%s is out of range %" PRId64 "..%" PRId64,
			       show(sv, v), lo, hi);
	if (!ok)
		return key_err(err, origin, k, "%s is out of range %" PRIu64 "..%" PRIu64,
			       show(sv, v), (uint64_t)lo, (uint64_t)hi);
	if (k->type == CONF_INT)
		*(int64_t *)field = (int64_t)bits;
	else if (k->type == CONF_UINT64)
		*(uint64_t *)field = bits;
	else
		*(uint16_t *)field = (uint16_t)bits;
	return 0;
}

/* [+-]?digits[.digits][e[+-]digits] checked by hand first: strtod alone would also take hex,
 * "inf", "nan" and leading spaces. */
static int parse_double(const char *s, double *ret)
{
	const char *p = s + (*s == '+' || *s == '-');
	uint64_t ignored;
	bool over = false;
	char *end;
	size_t n = digits(&p, &ignored, &over);
	if (*p == '.') {
		p++;
		n += digits(&p, &ignored, &over);
	}
	if (!n)
		return -EINVAL;
	if (*p == 'e' || *p == 'E') {
		p += 1 + (p[1] == '+' || p[1] == '-');
		if (!digits(&p, &ignored, &over))
			return -EINVAL;
	}
	if (*p)
		return -EINVAL;
	double d = strtod(s, &end);
	if (end != p)
		return -EINVAL; /* a locale with another decimal point */
	if (!isfinite(d))
		return -ERANGE;
	*ret = d;
	return 0;
}

int conf_parse_duration_ms(const char *s, uint64_t *ret_ms)
{
	static const struct { const char *unit; uint64_t mult; } units[] = {
		{ "", 1 }, { "ms", 1 }, { "s", 1000 }, { "m", 60 * 1000 }, { "h", 3600 * 1000 },
	};
	uint64_t v;
	bool over = false;
	if (!s || !digits(&s, &v, &over))
		return -EINVAL;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(s, units[i].unit))
			continue;
		if (over || v > UINT64_MAX / units[i].mult)
			return -ERANGE;
		*ret_ms = v * units[i].mult;
		return 0;
	}
	return -EINVAL;
}

static int parse_bool(const char *s)
{
	static const char *const words[] = { "false", "true", "0", "1", "no", "yes", "off", "on" };
	for (int i = 0; i < 8; i++)
		if (strcasecmp(s, words[i]) == 0)
			return i & 1;
	return -EINVAL;
}

/* RFC 1123 name. The last label must not look like a number (decimal, or 0x hex): glibc's
 * resolver hands such names to inet_aton, so "10.1" would silently mean 10.0.0.1. */
static bool hostname_ok(const char *s, size_t n)
{
	size_t label = 0;
	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i <= n; i++) {
		char c = s[i];
		bool alnum = is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
		if (c == '.' || c == '\0') {
			if (label == 0 || label > 63 || s[i - 1] == '-')
				return false;
			label = 0;
		} else if ((label++ == 0 && c == '-') || (!alnum && c != '-')) {
			return false;
		}
	}
	const char *p = strrchr(s, '.');
	p = p ? p + 1 : s;
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
		return false;
	return p[strspn(p, "0123456789")] != '\0';
}

/* On success ret_off and ret_len locate the host without its [brackets]. */
static bool host_parse(const char *s, size_t *ret_off, size_t *ret_len)
{
	unsigned char addr[16];
	char tmp[64];
	size_t n = strlen(s);
	*ret_off = 0;
	*ret_len = n;
	if (s[0] == '[') {
		if (n < 3 || s[n - 1] != ']' || n - 2 >= sizeof(tmp))
			return false;
		memcpy(tmp, s + 1, n - 2);
		tmp[n - 2] = '\0';
		*ret_off = 1;
		*ret_len = n - 2;
		return inet_pton(AF_INET6, tmp, addr) == 1;
	}
	if (strchr(s, ':'))
		return inet_pton(AF_INET6, s, addr) == 1;
	return inet_pton(AF_INET, s, addr) == 1 || hostname_ok(s, n);
}

bool conf_valid_host(const char *s)
{
	size_t off, len;
	return s && host_parse(s, &off, &len);
}

static int set_text(const struct conf_key *k, char *field, const char *v, size_t len,
		    const char *origin, struct conf_error *err)
{
	if (len >= k->str_size)
		return key_err(err, origin, k, "value is too long (%zu bytes, at most %zu)", len,
			       k->str_size - 1);
	memset(field, 0, k->str_size);
	memcpy(field, v, len);
	return 0;
}

static int set_enum(const struct conf_key *k, int *field, const char *v, const char *origin,
		    struct conf_error *err)
{
	char sv[SHOW_BUF], list[256] = "";
	size_t used = 0;
	for (const struct conf_choice *c = k->choices; c && c->name; c++) {
		if (strcmp(c->name, v) == 0) {
			*field = c->value;
			return 0;
		}
		if (used < sizeof(list)) /* the message keeps what fits */
			used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s",
						 used ? ", " : "", c->name);
	}
	return key_err(err, origin, k, "'%s' is not one of: %s", show(sv, v), list);
}

static int set_duration(const struct conf_key *k, uint64_t *field, const char *v,
			const char *origin, struct conf_error *err)
{
	char sv[SHOW_BUF];
	uint64_t ms = 0, lo = (uint64_t)k->min, hi = (uint64_t)k->max;
	int r = conf_parse_duration_ms(v, &ms);
	if (r == -EINVAL)
		return key_err(err, origin, k, "'%s' is not a duration (e.g. 500, 500ms, 10s, 5m, 1h)",
			       show(sv, v));
	if (lo == hi)
		lo = 0, hi = UINT64_MAX;
	if (r < 0 || ms < lo || ms > hi)
		return key_err(err, origin, k, "%s is out of range %" PRIu64 "..%" PRIu64 " ms",
			       show(sv, v), lo, hi);
	*field = ms;
	return 0;
}

/* Parses v for k and stores it; the field is written only when v is valid. */
static int set_key(const struct conf_key *k, void *cfg, const char *v, const char *origin,
		   struct conf_error *err)
{
	char sv[SHOW_BUF], *field = (char *)cfg + k->offset;
	size_t off, len;
	double d;
	int r;

	switch (k->type) {
	case CONF_BOOL:
		if ((r = parse_bool(v)) < 0)
			return key_err(err, origin, k, "'%s' is not a boolean "
				       "(true|false|1|0|yes|no|on|off)", show(sv, v));
		*(bool *)field = r;
		return 0;
	case CONF_INT:
	case CONF_UINT64:
	case CONF_PORT:
		return set_int(k, field, v, origin, err);
	case CONF_DOUBLE:
		if ((r = parse_double(v, &d)) < 0)
			return key_err(err, origin, k, r == -ERANGE ? "%s is out of range"
				       : "'%s' is not a number", show(sv, v));
		*(double *)field = d;
		return 0;
	case CONF_DURATION:
		return set_duration(k, (uint64_t *)field, v, origin, err);
	case CONF_ENUM:
		return set_enum(k, (int *)field, v, origin, err);
	case CONF_STRING:
		return set_text(k, field, v, strlen(v), origin, err);
	case CONF_HOST:
		if (!*v && k->def && *k->def)
			return key_err(err, origin, k, "an address or host name is required");
		if (*v && !host_parse(v, &off, &len))
			return key_err(err, origin, k, "'%s' is not an IPv4/IPv6 address or a host "
				       "name", show(sv, v));
		return set_text(k, field, v + (*v ? off : 0), *v ? len : 0, origin, err);
	}
	return key_err(err, origin, k, "unknown type %d", (int)k->type);
}

int conf_set(const struct conf_schema *s, void *cfg, const char *key, const char *value,
	     const char *origin, struct conf_error *err)
{
	char sv[SHOW_BUF];
	const struct conf_key *k = conf_find(s, key);
	if (!k)
		return set_err(err, -EINVAL, "%s%sunknown key '%s'%s", origin ? origin : "",
			       origin ? ": " : "", show(sv, key ? key : "(null)"), secret_hint(key));
	if (!cfg || !value)
		return key_err(err, origin, k, "no value or no config");
	return set_key(k, cfg, value, origin, err);
}

/* Programmer errors in the table, caught once at start-up instead of misparsing later. */
static int check_key(const struct conf_schema *s, size_t i, struct conf_error *err)
{
	const struct conf_key *k = &s->keys[i];
	const char *why = NULL, *p = k->name;
	bool u = k->type == CONF_UINT64 || k->type == CONF_DURATION;
	while (p && ((*p >= 'a' && *p <= 'z') || is_digit(*p) || *p == '_'))
		p++;
	if (!p || *p || p == k->name || p - k->name > CONF_NAME_MAX || is_digit(k->name[0]))
		return set_err(err, -EINVAL, "schema: key %zu: name must be 1..%d of [a-z0-9_], "
			       "starting with a letter", i, CONF_NAME_MAX);
	if (!strcmp(k->name, "config") || !strcmp(k->name, "help") || !strcmp(k->name, "version"))
		why = "is reserved";
	for (size_t j = 0; j < i; j++)
		if (names_equal(k->name, s->keys[j].name))
			why = "is defined twice";
	if ((unsigned)k->type > CONF_DURATION)
		why = "has an unknown type";
	else if ((k->type == CONF_STRING || k->type == CONF_HOST) && k->str_size == 0)
		why = "has no str_size";
	else if (k->type == CONF_ENUM && (!k->choices || !k->choices[0].name))
		why = "has no choices";
	else if (k->min != k->max && (u ? (uint64_t)k->min > (uint64_t)k->max : k->min > k->max))
		why = "has min > max";
	return why ? set_err(err, -EINVAL, "schema: key '%s' %s", k->name, why) : 0;
}

int conf_defaults(const struct conf_schema *s, void *cfg, struct conf_error *err)
{
	static const size_t width[] = {
		[CONF_BOOL] = sizeof(bool), [CONF_INT] = sizeof(int64_t),
		[CONF_UINT64] = sizeof(uint64_t), [CONF_DOUBLE] = sizeof(double),
		[CONF_ENUM] = sizeof(int), [CONF_PORT] = sizeof(uint16_t),
		[CONF_DURATION] = sizeof(uint64_t),
	};
	if (!s || !cfg || (s->nkeys && !s->keys))
		return set_err(err, -EINVAL, "schema: no schema, keys or config");
	for (size_t i = 0; i < s->nkeys; i++) {
		const struct conf_key *k = &s->keys[i];
		int r = check_key(s, i, err);
		if (r == 0 && k->def)
			r = set_key(k, cfg, k->def, "default", err);
		else if (r == 0) /* all-zero bytes are false, 0, 0.0 and "" on our platforms */
			memset((char *)cfg + k->offset, 0,
			       k->type == CONF_STRING || k->type == CONF_HOST ? k->str_size
									      : width[k->type]);
		if (r < 0)
			return r;
	}
	return 0;
}

static char *trim(char *s)
{
	size_t n;
	s += strspn(s, " \t\r\f\v");
	for (n = strlen(s); n && strchr(" \t\r\f\v", s[n - 1]); n--)
		;
	s[n] = '\0';
	return s;
}

/* In place: the unescaped value is never longer than the quoted one. Returns why it is bad. */
static const char *unquote(char *v)
{
	char *w = v, c;
	const char *r = v + 1;
	while ((c = *r++) != '"') {
		if (c == '\0')
			return "unterminated quoted value";
		if (c == '\\' && (c = *r++) != '"' && c != '\\')
			return "bad escape in quoted value (only \\\" and \\\\)";
		*w++ = c;
	}
	if (*r)
		return "text after the closing quote";
	*w = '\0';
	return NULL;
}

static int load_line(const struct conf_schema *s, void *cfg, const char *origin, char *line,
		     unsigned lineno, unsigned *seen, struct conf_error *err)
{
	char sv[SHOW_BUF], *p = trim(line), *eq = strchr(p, '=');
	const char *why;
	if (!*p || *p == '#')
		return 0;
	if (!eq)
		return set_err(err, -EINVAL, "%s: expected key=value", origin);
	*eq = '\0';
	char *key = trim(p), *val = trim(eq + 1);
	const struct conf_key *k = conf_find(s, key);
	if (!k)
		return set_err(err, -EINVAL, "%s: %s '%s'%s", origin,
			       *key ? "unknown key" : "missing key before '='", show(sv, key), secret_hint(key));
	size_t idx = (size_t)(k - s->keys);
	if (seen[idx])
		return key_err(err, origin, k, "repeated (first set on line %u)", seen[idx]);
	seen[idx] = lineno;
	if (*val == '"' && (why = unquote(val)))
		return key_err(err, origin, k, "%s", why);
	return set_key(k, cfg, val, origin, err);
}

int conf_load_buffer(const struct conf_schema *s, void *cfg, const char *name,
		     const char *buf, size_t len, struct conf_error *err)
{
	char line[CONF_MAX_LINE + 1], origin[320];
	unsigned lineno = 0, *seen;
	int r = 0;
	name = name ? name : "(buffer)";
	if (!s || !cfg || (len && !buf) || (s->nkeys && !s->keys))
		return set_err(err, -EINVAL, "%s: no schema, config or buffer", name);
	if (len > CONF_MAX_FILE)
		return set_err(err, -EFBIG, "%s: file too large (more than %u bytes)", name,
			       CONF_MAX_FILE);
	/* Line of the first assignment of each key, for "repeated" errors: one word per key. */
	if (!(seen = calloc(s->nkeys ? s->nkeys : 1, sizeof(*seen))))
		return set_err(err, -ENOMEM, "%s: out of memory", name);
	size_t pos = len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0 ? 3 : 0; /* UTF-8 BOM */
	while (pos < len && r == 0) {
		const char *start = buf + pos, *nl = memchr(start, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - start) : len - pos;
		pos += n + (nl != NULL);
		snprintf(origin, sizeof(origin), "%s:%u", name, ++lineno);
		n -= n && start[n - 1] == '\r';
		if (n > CONF_MAX_LINE) {
			r = set_err(err, -EINVAL, "%s: line too long (more than %d bytes)", origin,
				    CONF_MAX_LINE);
		} else if (memchr(start, '\0', n)) {
			r = set_err(err, -EINVAL, "%s: NUL byte in line", origin);
		} else {
			memcpy(line, start, n);
			line[n] = '\0';
			r = load_line(s, cfg, origin, line, lineno, seen, err);
		}
	}
	free(seen);
	return r;
}

int conf_load_file(const struct conf_schema *s, void *cfg, const char *path,
		   struct conf_error *err)
{
	char ebuf[128];
	FILE *f = path ? fopen(path, "re") : NULL;
	if (!f) {
		int e = path ? errno : EINVAL;
		return set_err(err, -e, "%s: cannot open: %s", path ? path : "(null)",
			       strerror_r(e, ebuf, sizeof(ebuf)));
	}
	/* Reading one byte past the limit tells "too large" without reading the whole file. The
	 * 1 MiB buffer is address space; only the pages the file fills are touched. */
	char *buf = malloc(CONF_MAX_FILE + 1);
	size_t len = buf ? fread(buf, 1, CONF_MAX_FILE + 1, f) : 0;
	int r = !buf ? -ENOMEM : ferror(f) ? -(errno ? errno : EIO) : 0;
	fclose(f);
	if (r == 0)
		r = conf_load_buffer(s, cfg, path, buf, len, err);
	else
		set_err(err, r, "%s: cannot read: %s", path, strerror_r(-r, ebuf, sizeof(ebuf)));
	free(buf);
	return r;
}

/* --help, --version, --config[=]PATH: 1 if arg named one of them, 0 if not, or an error. */
static int parse_builtin(const char *name, const char *val, int argc, char **argv, int *i,
			 struct conf_args *a, struct conf_error *err)
{
	if (strcmp(name, "help") && strcmp(name, "version") && !names_equal(name, "config"))
		return 0;
	if (name[0] != 'c' && val)
		return set_err(err, -EINVAL, "--%s: takes no value", name);
	if (name[0] != 'c') {
		*(name[0] == 'h' ? &a->help : &a->version) = true;
		return 1;
	}
	if (!val && *i + 1 < argc)
		val = argv[++*i];
	if (!val || !*val)
		return set_err(err, -EINVAL, "--config: missing file name");
	a->config_path = val;
	return 1;
}

/* One "--name[=value]" argument at argv[*i]; may consume argv[*i + 1] as the value. */
static int parse_flag(const struct conf_schema *s, void *cfg, int argc, char **argv, int *i,
		      struct conf_args *a, struct conf_error *err)
{
	char sv[SHOW_BUF], name[CONF_NAME_MAX + 4], origin[FLAG_BUF]; /* name: room for "no-" */
	const char *arg = argv[*i] + 2, *eq = strchr(arg, '='), *val = eq ? eq + 1 : NULL;
	size_t n = eq ? (size_t)(eq - arg) : strlen(arg);
	const struct conf_key *k = NULL;
	int r;
	memcpy(name, arg, n < sizeof(name) ? n : sizeof(name) - 1);
	name[n < sizeof(name) ? n : sizeof(name) - 1] = '\0';
	if (n && n < sizeof(name)) {
		if ((r = parse_builtin(name, val, argc, argv, i, a, err)) != 0)
			return r < 0 ? r : 0;
		k = conf_find(s, name);
		if (!k && (!strncmp(name, "no-", 3) || !strncmp(name, "no_", 3))) {
			k = conf_find(s, name + 3);
			k = k && k->type == CONF_BOOL ? k : NULL;
			if (k && val)
				return set_err(err, -EINVAL, "--%s: takes no value", name);
			val = k ? "false" : val;
		}
	}
	if (!k)
		return set_err(err, -EINVAL, "unknown flag '--%s'%s", show(sv, name), secret_hint(name));
	flag_name(origin, k->name);
	if (!val)
		val = k->type == CONF_BOOL ? "true" : *i + 1 < argc ? argv[++*i] : NULL;
	if (!val)
		return key_err(err, origin, k, "missing value");
	return set_key(k, cfg, val, origin, err);
}

int conf_parse_args(const struct conf_schema *s, void *cfg, int argc, char **argv,
		    struct conf_args *ret_args, struct conf_error *err)
{
	struct conf_args a = { 0 };
	bool rest = false;
	int r = 0, w = 1;
	if (!s || !cfg || argc < 0 || (argc && !argv))
		return set_err(err, -EINVAL, "conf_parse_args: no schema, config or argv");
	/* One allocation: the reordered argv, then one "is positional" byte per argument. */
	char **tmp = malloc((size_t)argc * (sizeof(char *) + 1) + 1);
	if (!tmp)
		return set_err(err, -ENOMEM, "conf_parse_args: out of memory");
	unsigned char *is_pos = memset(tmp + argc, 0, (size_t)argc);
	for (int i = 1; i < argc && r == 0; i++) {
		const char *arg = argv[i];
		if (!arg) {
			r = set_err(err, -EINVAL, "conf_parse_args: argv[%d] is NULL", i);
		} else if (!rest && !strcmp(arg, "--")) {
			rest = true;
		} else if (!rest && !strcmp(arg, "-h")) {
			a.help = true;
		} else if (rest || strncmp(arg, "--", 2)) {
			is_pos[i] = 1;
			a.npositional++;
		} else {
			r = parse_flag(s, cfg, argc, argv, &i, &a, err);
		}
	}
	if (r == 0) {
		/* Stable partition: flags keep their order and values stay right after their flag. */
		for (int pass = 0; pass < 2; pass++)
			for (int i = 1; i < argc; i++)
				if (is_pos[i] == pass)
					tmp[w++] = argv[i];
		if (argc > 1)
			memcpy(argv + 1, tmp + 1, (size_t)(argc - 1) * sizeof(char *));
		a.positional = a.npositional ? argv + argc - a.npositional : NULL;
		if (ret_args)
			*ret_args = a;
	}
	free(tmp);
	return r;
}

/* "range 1..10; one of: a, b; default: x": what an operator needs to write a valid value. */
static void key_extra(const struct conf_key *k, char *buf, size_t size)
{
	const char *def = k->def;
	size_t used = 0;
	buf[0] = '\0';
	if (k->min != k->max && k->type != CONF_ENUM && k->type != CONF_BOOL) {
		bool u = k->type == CONF_UINT64 || k->type == CONF_DURATION;
		snprintf(buf, size, u ? "range %" PRIu64 "..%" PRIu64 "%s; " : "range %" PRId64
			 "..%" PRId64 "%s; ", k->min, k->max, k->type == CONF_DURATION ? " ms" : "");
	}
	for (const struct conf_choice *c = k->type == CONF_ENUM ? k->choices : NULL; c && c->name;
	     c++) {
		used = strlen(buf);
		snprintf(buf + used, size - used, "%s%s%s", c == k->choices ? "one of: " : ", ",
			 c->name, c[1].name ? "" : "; ");
		if (!def && c->value == 0)
			def = c->name;
	}
	if (!def && k->type != CONF_STRING && k->type != CONF_HOST && k->type != CONF_ENUM)
		def = k->type == CONF_BOOL ? "false" : "0";
	used = strlen(buf);
	if (def && *def)
		snprintf(buf + used, size - used, "default: %s", def);
	else if (used >= 2)
		buf[used - 2] = '\0'; /* drop the trailing "; " */
}

static void help_line(FILE *out, const char *flag, const char *help, const char *extra)
{
	fprintf(out, "  %-30s %s%s%s%s\n", flag, help ? help : "", *extra ? " (" : "", extra,
		*extra ? ")" : "");
}

void conf_print_help(const struct conf_schema *s, FILE *out)
{
	static const char *const meta[] = {
		[CONF_BOOL] = "bool", [CONF_INT] = "int", [CONF_UINT64] = "uint",
		[CONF_DOUBLE] = "number", [CONF_STRING] = "string", [CONF_ENUM] = "enum",
		[CONF_PORT] = "port", [CONF_HOST] = "host", [CONF_DURATION] = "duration",
	};
	char flag[FLAG_BUF], text[FLAG_BUF * 2 + 16], extra[384];
	fprintf(out, "Usage: %s [--config=FILE] [--key-name=VALUE ...]\n\n", s->prog);
	if (s->summary)
		fprintf(out, "%s\n\n", s->summary);
	fprintf(out, "Options:\n");
	help_line(out, "--config=FILE", "read key=value settings from FILE (flags win)", "");
	for (size_t i = 0; i < s->nkeys; i++) {
		const struct conf_key *k = &s->keys[i];
		flag_name(flag, k->name);
		if (k->type == CONF_BOOL)
			snprintf(text, sizeof(text), "%s, --no-%s", flag, flag + 2);
		else
			snprintf(text, sizeof(text), "%s=<%s>", flag,
				 (unsigned)k->type <= CONF_DURATION ? meta[k->type] : "?");
		key_extra(k, extra, sizeof(extra));
		help_line(out, text, k->help, extra);
	}
	help_line(out, "--help, -h", "print this help and exit", "");
	help_line(out, "--version", "print the version and exit", "");
	fprintf(out, "\nDurations: 500 (ms), 500ms, 10s, 5m, 1h. In the config file every key is "
		     "written key_name=value.\n");
}
