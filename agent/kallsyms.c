/* kallsyms: kernel text symbols (see kallsyms.h). */
#include "kallsyms.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ksym {
	uint64_t addr;
	uint32_t name_off, mod_off; /* into pool; mod_off 0 = "" */
	uint32_t seq;               /* line number: the last tie-break, for a stable order */
	uint8_t rank;               /* T, W, t, w: global before weak before local */
	uint8_t _pad[3];
};

struct kallsyms {
	struct ksym *syms;
	size_t n, cap;
	char *pool;
	size_t pool_len, pool_cap;
	size_t bad, lines, nonzero;
	uint32_t last_mod_off;
	size_t last_mod_len;
};

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int kallsyms_parse_line(const char *line, size_t len, uint64_t *ret_addr, char *ret_type,
			const char **ret_name, size_t *ret_name_len, const char **ret_mod, size_t *ret_mod_len)
{
	if (len > KALLSYMS_LINE_MAX || memchr(line, '\0', len))
		return -EINVAL;
	const char *p = line, *end = line + len;
	uint64_t a = 0;
	unsigned nd = 0;
	int d;
	while (p < end && (d = hexval(*p)) >= 0) {
		if (++nd > 16)
			return -EINVAL;
		a = a << 4 | (uint64_t)d;
		p++;
	}
	if (nd == 0 || end - p < 4 || p[0] != ' ' || p[2] != ' ' || p[1] == ' ' || p[1] == '\t')
		return -EINVAL;
	char type = p[1];
	p += 3;
	const char *name = p;
	while (p < end && *p != '\t' && *p != ' ')
		p++;
	size_t nlen = (size_t)(p - name);
	const char *mod = "";
	size_t mlen = 0;
	if (nlen == 0)
		return -EINVAL;
	if (p < end) {
		/* "\t[module]" and nothing after it */
		if (*p != '\t' || end - p < 4 || p[1] != '[' || end[-1] != ']')
			return -EINVAL;
		mod = p + 2;
		mlen = (size_t)(end - 1 - mod);
		if (memchr(mod, ']', mlen) || memchr(mod, ' ', mlen))
			return -EINVAL;
	}
	*ret_addr = a;
	*ret_type = type;
	*ret_name = name;
	*ret_name_len = nlen;
	*ret_mod = mod;
	*ret_mod_len = mlen;
	return 0;
}

static int pool_add(struct kallsyms *ks, const char *s, size_t len, uint32_t *ret_off)
{
	if (ks->pool_len + len + 1 > UINT32_MAX)
		return -ENOSPC;
	if (ks->pool_len + len + 1 > ks->pool_cap) {
		size_t cap = ks->pool_cap ? ks->pool_cap : 1 << 16;
		while (cap < ks->pool_len + len + 1)
			cap *= 2;
		char *np = realloc(ks->pool, cap);
		if (!np)
			return -ENOMEM;
		ks->pool = np;
		ks->pool_cap = cap;
	}
	memcpy(ks->pool + ks->pool_len, s, len);
	ks->pool[ks->pool_len + len] = '\0';
	*ret_off = (uint32_t)ks->pool_len;
	ks->pool_len += len + 1;
	return 0;
}

static int rank_of(char t)
{
	switch (t) {
	case 'T':
		return 0;
	case 'W':
		return 1;
	case 't':
		return 2;
	case 'w':
		return 3;
	default:
		return -1;
	}
}

static int add_line(struct kallsyms *ks, const char *line, size_t len, size_t max)
{
	uint64_t addr;
	char type;
	const char *name, *mod;
	size_t nlen, mlen;
	if (kallsyms_parse_line(line, len, &addr, &type, &name, &nlen, &mod, &mlen) < 0) {
		ks->bad++;
		return 0;
	}
	ks->lines++;
	int rank = rank_of(type);
	if (addr)
		ks->nonzero++;
	if (rank < 0 || addr == 0 || ks->n >= max)
		return 0;
	if (ks->n == ks->cap) {
		size_t cap = ks->cap ? ks->cap * 2 : 4096;
		struct ksym *ns = realloc(ks->syms, cap * sizeof(*ns));
		if (!ns)
			return -ENOMEM;
		ks->syms = ns;
		ks->cap = cap;
	}
	struct ksym *s = &ks->syms[ks->n];
	int r = pool_add(ks, name, nlen, &s->name_off);
	if (r < 0)
		return r == -ENOSPC ? 0 : r;
	s->mod_off = 0;
	if (mlen) {
		/* a module's symbols are consecutive: reuse the previous line's copy of its name */
		if (ks->last_mod_len == mlen && memcmp(ks->pool + ks->last_mod_off, mod, mlen) == 0)
			s->mod_off = ks->last_mod_off;
		else if ((r = pool_add(ks, mod, mlen, &s->mod_off)) < 0)
			return r == -ENOSPC ? 0 : r;
		ks->last_mod_off = s->mod_off;
		ks->last_mod_len = mlen;
	}
	s->addr = addr;
	s->rank = (uint8_t)rank;
	s->seq = (uint32_t)ks->lines;
	ks->n++;
	return 0;
}

static int ksym_cmp(const void *pa, const void *pb)
{
	const struct ksym *a = pa, *b = pb;
	if (a->addr != b->addr)
		return a->addr < b->addr ? -1 : 1;
	if (a->rank != b->rank)
		return a->rank < b->rank ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

int kallsyms_load(const char *path, size_t max_symbols, struct kallsyms **ret_ks)
{
	FILE *f = fopen(path ? path : "/proc/kallsyms", "re");
	if (!f)
		return -errno;
	if (!max_symbols)
		max_symbols = KALLSYMS_DEFAULT_MAX_SYMBOLS;
	struct kallsyms *ks = calloc(1, sizeof(*ks));
	char buf[KALLSYMS_LINE_MAX + 2];
	int r = ks ? pool_add(ks, "", 0, &ks->last_mod_off) : -ENOMEM;
	while (r == 0 && fgets(buf, sizeof(buf), f)) {
		size_t len = strlen(buf);
		if (len && buf[len - 1] == '\n') {
			r = add_line(ks, buf, len - 1, max_symbols);
			continue;
		}
		if (feof(f)) { /* last line without '\n' */
			r = add_line(ks, buf, len, max_symbols);
			continue;
		}
		ks->bad++; /* over-long: skip to the end of the line */
		int c;
		while ((c = fgetc(f)) != EOF && c != '\n')
			;
	}
	if (r == 0 && ferror(f))
		r = -EIO;
	fclose(f);
	if (r < 0) {
		kallsyms_free(ks);
		return r;
	}
	ks->last_mod_len = 0;
	if (ks->n > 1)
		qsort(ks->syms, ks->n, sizeof(*ks->syms), ksym_cmp);
	size_t out = 0;
	for (size_t i = 0; i < ks->n; i++)
		if (out == 0 || ks->syms[out - 1].addr != ks->syms[i].addr)
			ks->syms[out++] = ks->syms[i];
	ks->n = out;
	*ret_ks = ks;
	return 0;
}

struct kallsyms *kallsyms_free(struct kallsyms *ks)
{
	if (ks) {
		free(ks->syms);
		free(ks->pool);
		free(ks);
	}
	return NULL;
}

bool kallsyms_restricted(const struct kallsyms *ks)
{
	return ks->lines > 0 && ks->nonzero == 0;
}

int kallsyms_lookup(const struct kallsyms *ks, uint64_t addr, struct kallsyms_hit *ret_hit)
{
	size_t lo = 0, hi = ks->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (ks->syms[mid].addr <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return -ENOENT;
	const struct ksym *s = &ks->syms[lo - 1];
	uint64_t end = lo < ks->n ? ks->syms[lo].addr : s->addr + KALLSYMS_MAX_SPAN;
	if (addr >= end || addr - s->addr >= KALLSYMS_MAX_SPAN)
		return -ENOENT;
	ret_hit->name = ks->pool + s->name_off;
	ret_hit->module = ks->pool + s->mod_off;
	ret_hit->start = s->addr;
	return 0;
}

size_t kallsyms_count(const struct kallsyms *ks)
{
	return ks->n;
}

size_t kallsyms_bad_lines(const struct kallsyms *ks)
{
	return ks->bad;
}

size_t kallsyms_mem_bytes(const struct kallsyms *ks)
{
	return sizeof(*ks) + ks->cap * sizeof(*ks->syms) + ks->pool_cap;
}
