/* msctl_ch: see msctl_ch.h. */
#include "msctl_ch.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

int msctl_ch_parse_since(const char *s, uint64_t *ret_s)
{
	if (!s || !isdigit((unsigned char)s[0]))
		return -EINVAL;
	uint64_t v = 0;
	const char *p = s;
	for (; isdigit((unsigned char)*p); p++) {
		if (v > MSCTL_CH_MAX_SINCE_S)
			return -ERANGE; /* stop before the digits can overflow */
		v = v * 10 + (uint64_t)(*p - '0');
	}
	uint64_t unit;
	if (!strcmp(p, "s"))
		unit = 1;
	else if (!strcmp(p, "m"))
		unit = 60;
	else if (!strcmp(p, "h"))
		unit = 3600;
	else if (!strcmp(p, "d"))
		unit = 86400;
	else
		return -EINVAL;
	if (v == 0 || v > MSCTL_CH_MAX_SINCE_S / unit)
		return -ERANGE;
	*ret_s = v * unit;
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int msctl_ch_parse_flow(const char *s, uint64_t *ret_id)
{
	if (!s || !*s)
		return -EINVAL;
	bool hex = false;
	const char *p = s;
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		hex = true;
		p += 2;
	}
	size_t n = strlen(p);
	if (!n)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		int v = hexval(p[i]);
		if (v < 0)
			return -EINVAL;
		if (v > 9)
			hex = true;
	}
	if (n == 16)
		hex = true;
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		int d = hexval(p[i]);
		if (!hex && d > 9)
			return -EINVAL;
		if (hex ? v >> 60 : v > (UINT64_MAX - (uint64_t)d) / 10)
			return -ERANGE;
		v = hex ? v << 4 | (uint64_t)d : v * 10 + (uint64_t)d;
	}
	*ret_id = v;
	return 0;
}

bool msctl_ch_valid_name(const char *s, bool database)
{
	if (!s || !*s || strlen(s) >= MSCTL_CH_MAX_NAME)
		return false;
	if (database && !isalpha((unsigned char)s[0]) && s[0] != '_')
		return false;
	for (const char *p = s; *p; p++) {
		if (isalnum((unsigned char)*p) || *p == '_')
			continue;
		if (!database && (*p == '.' || *p == ':' || *p == '-'))
			continue;
		return false;
	}
	return true;
}

int msctl_ch_sql_string(struct strbuf *sb, const char *s)
{
	strbuf_append(sb, "'", 1);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '\\' || *p == '\'')
			strbuf_appendf(sb, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			strbuf_appendf(sb, "\\x%02x", *p);
		else
			strbuf_append(sb, (const char *)p, 1);
	}
	return strbuf_append(sb, "'", 1);
}

/* The selection every part of a query shares: window start, hosts, event, flow. */
static void where(struct strbuf *sb, const struct msctl_ch_query *q)
{
	strbuf_appendf(sb, " FROM %s.ms_flow_rollup FINAL WHERE ts >= now() - %" PRIu64, q->database, q->since_s);
	if (q->nhosts) {
		strbuf_appendf(sb, " AND host IN (");
		for (size_t i = 0; i < q->nhosts; i++) {
			if (i)
				strbuf_append(sb, ", ", 2);
			msctl_ch_sql_string(sb, q->hosts[i]);
		}
		strbuf_append(sb, ")", 1);
	}
	if (q->event) {
		strbuf_appendf(sb, " AND event = ");
		msctl_ch_sql_string(sb, q->event);
	}
	if (q->has_flow)
		strbuf_appendf(sb, " AND flow_id = %" PRIu64, q->flow_id);
}

int msctl_ch_check(const struct msctl_ch_query *q)
{
	if (!q || !msctl_ch_valid_name(q->database, true) || !q->since_s || q->since_s > MSCTL_CH_MAX_SINCE_S ||
	    (q->event && !msctl_ch_valid_name(q->event, false)) || q->nhosts > MSCTL_CH_MAX_HOSTS ||
	    (q->nhosts && !q->hosts) || q->kind > MSCTL_CH_FLAME)
		return -EINVAL;
	if (q->kind != MSCTL_CH_FLAME && (!q->limit || q->limit > MSCTL_CH_MAX_LIMIT))
		return -EINVAL;
	for (size_t i = 0; i < q->nhosts; i++)
		if (!q->hosts[i] || !wire_valid_agent_id(q->hosts[i]))
			return -EINVAL;
	return 0;
}

/* Sums are per id over the selection; the dictionary side is cut to the ids the selection uses
 * (its tables hold every flow and function ever seen) and to one row per id (ANY join). The
 * selection is read twice more (total, ids): FINAL merges on read, so each read costs about the
 * same as the sum itself; one query keeps now() the same for all three. */
int msctl_ch_build_sql(const struct msctl_ch_query *q, struct strbuf *sb)
{
	int r = msctl_ch_check(q);
	if (r < 0)
		return r;
	bool flows = q->kind == MSCTL_CH_FLOWS, flame = q->kind == MSCTL_CH_FLAME;
	const char *id = flows ? "flow_id" : "func_id";
	strbuf_appendf(sb, "WITH (SELECT sum(samples)");
	where(sb, q);
	if (flows)
		strbuf_appendf(sb, ") AS total SELECT flow_id, s, total, has_tuple, family, proto, hex(saddr), hex(daddr), "
				   "sport, dport, toString(direction), ifindex, netns");
	else if (flame) /* one line per (module, name): builds of one binary have different func_ids */
		strbuf_appendf(sb, ") AS total SELECT any(func_id), sum(s) AS fs, any(total), fname, module FROM (SELECT "
				   "func_id, s, multiIf(name != '', name, func_id = 0, '[unknown]', concat('0x', "
				   "lower(hex(func_id)))) AS fname, module");
	else
		strbuf_appendf(sb, ") AS total SELECT func_id, s, total, name, module");
	strbuf_appendf(sb, " FROM (SELECT %s, sum(samples) AS s", id);
	where(sb, q);
	strbuf_appendf(sb, " GROUP BY %s) ANY LEFT JOIN (SELECT ", id);
	if (flows)
		strbuf_appendf(sb, "flow_id, has_tuple, family, proto, saddr, daddr, sport, dport, direction, ifindex, "
				   "netns FROM %s.ms_flows FINAL WHERE flow_id IN (SELECT flow_id",
			       q->database);
	else
		strbuf_appendf(sb, "func_id, any(name) AS name, any(module) AS module FROM %s.ms_functions FINAL "
				   "WHERE func_id IN (SELECT func_id",
			       q->database);
	where(sb, q);
	if (flows)
		strbuf_appendf(sb, ") ORDER BY has_tuple DESC, ts DESC LIMIT 1 BY flow_id)");
	else
		strbuf_appendf(sb, ") GROUP BY func_id)");
	if (flame)
		strbuf_appendf(sb, " USING func_id) GROUP BY fname, module ORDER BY fs DESC, module, fname LIMIT %u",
			       MSCTL_CH_MAX_FLAME);
	else
		strbuf_appendf(sb, " USING %s ORDER BY s DESC, %s LIMIT %" PRIu32, id, id, q->limit);
	strbuf_appendf(sb, " FORMAT TabSeparated");
	return strbuf_error(sb);
}

struct msctl_ch_rows *msctl_ch_rows_free(struct msctl_ch_rows *r)
{
	if (r) {
		free(r->cell);
		free(r->text);
		free(r);
	}
	return NULL;
}

static char unescape(char c)
{
	switch (c) {
	case 'b': return '\b';
	case 'f': return '\f';
	case 'r': return '\r';
	case 'n': return '\n';
	case 't': return '\t';
	case '0': return '\0';
	default: return c; /* \\ \' and anything else stand for themselves */
	}
}

int msctl_ch_tsv_parse(const char *text, size_t len, size_t ncols, size_t max_rows, struct msctl_ch_rows **ret)
{
	if ((!text && len) || !ncols || ncols > 64 || !ret)
		return -EINVAL;
	if (len && (text[len - 1] != '\n' || memchr(text, 0, len)))
		return -EBADMSG;
	size_t nrows = 0;
	for (const char *p = text; len && (p = memchr(p, '\n', len - (size_t)(p - text))) != NULL; p++)
		if (++nrows > max_rows)
			return -E2BIG;
	struct msctl_ch_rows *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->ncols = ncols;
	r->text = malloc(len + 1);
	r->cell = nrows ? calloc(nrows * ncols, sizeof(char *)) : NULL; /* nrows <= max_rows: no overflow */
	if (!r->text || (nrows && !r->cell)) {
		msctl_ch_rows_free(r);
		return -ENOMEM;
	}
	/* unescaped copy: a field is never longer than its escaped text and its NUL takes the
	 * separator's place, so len + 1 bytes suffice */
	char *w = r->text;
	size_t i = 0;
	for (size_t row = 0; row < nrows; row++) {
		for (size_t col = 0;; col++) {
			if (col == ncols)
				goto bad;
			r->cell[row * ncols + col] = w;
			char *start = w;
			while (text[i] != '\t' && text[i] != '\n') {
				if (text[i] == '\\') {
					if (text[i + 1] == '\n' || (text[i + 1] == 'N' && w == start &&
								    (text[i + 2] == '\t' || text[i + 2] == '\n')))
						goto bad; /* escape at a row end (cut text) or a NULL */
					*w++ = unescape(text[i + 1]);
					i += 2;
				} else {
					*w++ = text[i++];
				}
			}
			*w++ = 0;
			if (text[i++] == '\n') {
				if (col + 1 != ncols)
					goto bad;
				break;
			}
		}
	}
	r->nrows = nrows;
	*ret = r;
	return 0;
bad:
	msctl_ch_rows_free(r);
	return -EBADMSG;
}

static int num(const char *s, uint64_t max, uint64_t *ret)
{
	if (!isdigit((unsigned char)s[0]))
		return -EBADMSG;
	uint64_t v = 0;
	for (; *s; s++) {
		if (!isdigit((unsigned char)*s))
			return -EBADMSG;
		uint64_t d = (uint64_t)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -EBADMSG;
		v = v * 10 + d;
	}
	if (v > max)
		return -EBADMSG;
	*ret = v;
	return 0;
}

static int addr16(const char *hex, uint8_t out[16])
{
	if (strlen(hex) != 32)
		return -EBADMSG;
	for (int i = 0; i < 16; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -EBADMSG;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

static int flow_row(char **c, struct msctl_ch_flow *f)
{
	uint64_t v[6];
	int r = 0;
	r |= num(c[3], 1, &v[0]) | num(c[4], 255, &v[1]) | num(c[5], 255, &v[2]);
	r |= num(c[8], UINT16_MAX, &v[3]) | num(c[9], UINT16_MAX, &v[4]);
	r |= addr16(c[6], f->saddr) | addr16(c[7], f->daddr);
	uint64_t ifindex, netns;
	r |= num(c[11], UINT32_MAX, &ifindex) | num(c[12], UINT32_MAX, &netns);
	if (r || strlen(c[10]) >= sizeof(f->dir))
		return -EBADMSG;
	f->has_tuple = v[0] && f->flow_id;
	f->family = (uint8_t)v[1];
	f->proto = (uint8_t)v[2];
	f->sport = (uint16_t)v[3];
	f->dport = (uint16_t)v[4];
	snprintf(f->dir, sizeof(f->dir), "%s", c[10]);
	f->ifindex = (uint32_t)ifindex;
	f->netns = (uint32_t)netns;
	return 0;
}

int msctl_ch_result_from_rows(enum msctl_ch_kind kind, uint64_t since_s, struct msctl_ch_rows **rows,
			      struct msctl_ch_result **ret)
{
	struct msctl_ch_rows *rw = *rows;
	if (!rw || rw->ncols != (kind == MSCTL_CH_FLOWS ? 13u : 5u))
		return -EINVAL;
	struct msctl_ch_result *res = calloc(1, sizeof(*res));
	if (!res)
		return -ENOMEM;
	res->kind = kind;
	res->since_s = since_s;
	res->n = rw->nrows;
	if (res->n) {
		if (kind == MSCTL_CH_FLOWS)
			res->flows = calloc(res->n, sizeof(*res->flows));
		else
			res->funcs = calloc(res->n, sizeof(*res->funcs));
		if (!res->flows && !res->funcs) {
			free(res);
			return -ENOMEM;
		}
	}
	res->rows = rw;
	*rows = NULL;
	for (size_t i = 0; i < res->n; i++) {
		char **c = &rw->cell[i * rw->ncols];
		uint64_t id, s, total;
		if (num(c[0], UINT64_MAX, &id) < 0 || num(c[1], UINT64_MAX, &s) < 0 || num(c[2], UINT64_MAX, &total) < 0 ||
		    res->shown + s < s || (i && total != res->total))
			goto bad;
		res->total = total;
		res->shown += s;
		if (kind == MSCTL_CH_FLOWS) {
			res->flows[i].flow_id = id;
			res->flows[i].samples = s;
			if (flow_row(c, &res->flows[i]) < 0)
				goto bad;
		} else {
			res->funcs[i] = (struct msctl_ch_func){ .func_id = id, .samples = s, .name = c[3], .module = c[4] };
		}
	}
	/* The total is a scalar subquery: ClickHouse reads it from the parts present when it runs,
	 * and the rows from those present a moment later, so windows landing in between make the
	 * rows sum past the total (seen while agents stream). The total is at least what is shown. */
	if (res->shown > res->total)
		res->total = res->shown;
	*ret = res;
	return 0;
bad:
	msctl_ch_result_free(res);
	return -EBADMSG;
}

struct msctl_ch_result *msctl_ch_result_free(struct msctl_ch_result *r)
{
	if (r) {
		free(r->flows);
		free(r->funcs);
		msctl_ch_rows_free(r->rows);
		free(r);
	}
	return NULL;
}

int msctl_ch_open(const char *url, const char *user, const char *password_file, uint32_t timeout_ms,
		  struct chhttp **ret)
{
	if (!url || (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)))
		return -EINVAL;
	char pw[CHHTTP_MAX_CRED] = "";
	int r = password_file ? chhttp_read_password_file(password_file, pw, sizeof(pw)) : 0;
	if (r >= 0) {
		struct chhttp_opts o = { .endpoint = url, .user = user, .password = pw, .timeout_ms = timeout_ms };
		r = chhttp_new(&o, ret);
	}
	explicit_bzero(pw, sizeof(pw));
	return r < 0 ? r : 0;
}

int msctl_ch_run(struct chhttp *h, const struct msctl_ch_query *q, uint32_t timeout_ms, struct msctl_ch_result **ret)
{
	struct strbuf sql, out;
	strbuf_init(&sql, MSCTL_CH_MAX_SQL);
	strbuf_init(&out, MSCTL_CH_MAX_RESPONSE);
	int r = msctl_ch_build_sql(q, &sql);
	if (r == 0) {
		/* readonly=1: a server-side guard beside the checks above. max_execution_time is in
		 * seconds, rounded up so the server gives up no earlier than the client. */
		char settings[96];
		snprintf(settings, sizeof(settings), "readonly=1&max_execution_time=%" PRIu32,
			 timeout_ms / 1000 + 1);
		r = chhttp_query(h, sql.buf, settings, &out);
	}
	struct msctl_ch_rows *rows = NULL;
	if (r == 0) {
		size_t max = q->kind == MSCTL_CH_FLAME ? MSCTL_CH_MAX_FLAME : q->limit;
		r = msctl_ch_tsv_parse(out.buf, out.len, q->kind == MSCTL_CH_FLOWS ? 13 : 5, max, &rows);
	}
	if (r == 0)
		r = msctl_ch_result_from_rows(q->kind, q->since_s, &rows, ret);
	msctl_ch_rows_free(rows);
	strbuf_release(&sql);
	strbuf_release(&out);
	return r;
}

const char *msctl_ch_strerror(int r)
{
	switch (r) {
	case -EACCES: return "authentication refused";
	case -ENOENT: return "database or table not found";
	case -EREMOTEIO: return "query failed";
	case -EBADMSG: return "unexpected answer";
	case -E2BIG: return "answer has more rows than asked";
	case -ENOSPC: return "answer too large";
	default: return strerror(-r);
	}
}

static size_t put_clean(char *out, size_t cap, size_t at, const char *s)
{
	for (; *s && at + 1 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		out[at++] = c == ';' ? ':' : (c < 0x20 || c == 0x7f) ? '_' : (char)c;
	}
	out[at] = 0;
	return at;
}

void msctl_ch_folded(const struct msctl_ch_func *f, char *out, size_t cap)
{
	if (!cap)
		return;
	char idname[24];
	snprintf(idname, sizeof(idname), "0x%016" PRIx64, f->func_id);
	size_t at = put_clean(out, cap, 0, f->module && f->module[0] ? f->module : "[unknown]");
	if (at + 1 < cap) {
		out[at++] = ';';
		out[at] = 0;
	}
	put_clean(out, cap, at, f->name && f->name[0] ? f->name : f->func_id ? idname : "[unknown]");
}
