/* falseshare: see falseshare.h.
 * Layout: a dense array of max_lines line states (about 420 bytes each: per offset three
 * 8-bit masks of thread slots) and an open-addressing index of 2 x max_lines u32 slots, both
 * allocated once. One window costs one hash probe per sample plus O(64) per tracked line. */
#include "falseshare.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ms_abi.h"

#define FS_DEFAULT_LINES 4096u
#define FS_DEFAULT_REPORT 64u
#define FS_MAX_LINES (1u << 20)
#define FS_NO_SLOT UINT32_MAX

struct line_state {
	uint64_t line;
	uint32_t pid;
	uint8_t nthreads;
	uint8_t ncpus;
	uint8_t _pad[2];
	uint32_t tids[FS_MAX_THREADS];
	uint32_t cpus[FS_MAX_THREADS];
	uint8_t wr[FS_LINE_BYTES];   /* thread-slot mask of store samples per offset */
	uint8_t rd[FS_LINE_BYTES];   /* ... of plain load samples */
	uint8_t hm[FS_LINE_BYTES];   /* ... of HITM load samples */
	uint64_t samples, loads, stores, hitm, overflow;
	uint64_t hitm_events, all_events;
	uint64_t ip[FS_TOP_IPS], ipn[FS_TOP_IPS];
	uint64_t sample_addr;
};

struct falseshare {
	uint32_t max_lines, max_report;
	uint32_t icap, imask;
	uint32_t *index;             /* icap entries: line slot or FS_NO_SLOT */
	uint32_t *index_pos;         /* index position of each line, to clear them in O(lines) */
	struct line_state *lines;    /* max_lines entries */
	uint32_t nlines;
	uint32_t *order;             /* scratch for the report: max_lines entries */
	double *score;               /* scratch: max_lines entries */
};

int falseshare_new(const struct falseshare_opts *opts, struct falseshare **ret_fs)
{
	uint32_t ml = opts && opts->max_lines ? opts->max_lines : FS_DEFAULT_LINES;
	uint32_t mr = opts && opts->max_report ? opts->max_report : FS_DEFAULT_REPORT;
	if (ml > FS_MAX_LINES || mr > ml)
		return -EINVAL;
	struct falseshare *fs = calloc(1, sizeof(*fs));
	if (!fs)
		return -ENOMEM;
	fs->max_lines = ml;
	fs->max_report = mr;
	fs->icap = 16;
	while (fs->icap < 2 * ml)
		fs->icap <<= 1;
	fs->imask = fs->icap - 1;
	fs->index = malloc(fs->icap * sizeof(*fs->index));
	fs->index_pos = calloc(ml, sizeof(*fs->index_pos));
	fs->lines = calloc(ml, sizeof(*fs->lines));
	fs->order = calloc(ml, sizeof(*fs->order));
	fs->score = calloc(ml, sizeof(*fs->score));
	if (!fs->index || !fs->index_pos || !fs->lines || !fs->order || !fs->score) {
		falseshare_free(fs);
		return -ENOMEM;
	}
	memset(fs->index, 0xff, fs->icap * sizeof(*fs->index));
	*ret_fs = fs;
	return 0;
}

struct falseshare *falseshare_free(struct falseshare *fs)
{
	if (!fs)
		return NULL;
	free(fs->index);
	free(fs->index_pos);
	free(fs->lines);
	free(fs->order);
	free(fs->score);
	free(fs);
	return NULL;
}

uint32_t falseshare_max_report(const struct falseshare *fs)
{
	return fs->max_report;
}

const char *falseshare_class_name(uint8_t cls)
{
	switch (cls) {
	case FS_CLASS_FALSE: return "false";
	case FS_CLASS_TRUE: return "true";
	case FS_CLASS_MIXED: return "mixed";
	case FS_CLASS_CONTENDED: return "contended";
	default: return "none";
	}
}

const char *falseshare_access_name(uint8_t access)
{
	switch (access) {
	case FS_ACC_LOAD: return "load";
	case FS_ACC_STORE: return "store";
	case FS_ACC_HITM: return "hitm";
	default: return "none";
	}
}

/* The line state of (pid, line), created while there is room; NULL when the table is full. */
static struct line_state *line_get(struct falseshare *fs, uint32_t pid, uint64_t line)
{
	uint32_t i = (uint32_t)ms_mix64(line ^ ((uint64_t)pid << 32 | pid)) & fs->imask;
	for (;;) {
		uint32_t slot = fs->index[i];
		if (slot == FS_NO_SLOT) {
			if (fs->nlines >= fs->max_lines)
				return NULL;
			slot = fs->nlines++;
			fs->index[i] = slot;
			fs->index_pos[slot] = i;
			struct line_state *ls = &fs->lines[slot];
			memset(ls, 0, sizeof(*ls));
			ls->line = line;
			ls->pid = pid;
			return ls;
		}
		struct line_state *ls = &fs->lines[slot];
		if (ls->line == line && ls->pid == pid)
			return ls;
		i = (i + 1) & fs->imask;
	}
}

/* Thread slot of tid in the line, added while there is room; -1 when the line is full. */
static int thread_slot(struct line_state *ls, uint32_t tid, uint32_t cpu)
{
	for (int i = 0; i < ls->nthreads; i++)
		if (ls->tids[i] == tid)
			return i;
	if (ls->nthreads >= FS_MAX_THREADS)
		return -1;
	ls->tids[ls->nthreads] = tid;
	bool seen = false;
	for (int i = 0; i < ls->ncpus; i++)
		seen |= ls->cpus[i] == cpu;
	if (!seen)
		ls->cpus[ls->ncpus++] = cpu;
	return ls->nthreads++;
}

/* Space-saving top-k of code addresses: a new address replaces the least counted one and
 * inherits its count, so heavy hitters survive with a bounded over-count. */
static void top_ip_add(struct line_state *ls, uint64_t ip)
{
	int min = 0;
	for (int i = 0; i < FS_TOP_IPS; i++) {
		if (ls->ipn[i] && ls->ip[i] == ip) {
			ls->ipn[i]++;
			return;
		}
		if (ls->ipn[i] < ls->ipn[min])
			min = i;
	}
	ls->ip[min] = ip;
	ls->ipn[min]++;
}

static void add_sample(struct falseshare *fs, const struct fs_sample *s, struct fs_stats *st)
{
	struct line_state *ls = line_get(fs, s->pid, s->addr & ~(uint64_t)(FS_LINE_BYTES - 1));
	if (!ls) {
		st->lines_dropped++;
		return;
	}
	uint64_t ev = s->period ? s->period : 1;
	ls->samples++;
	ls->all_events += ev;
	if (!ls->sample_addr)
		ls->sample_addr = s->addr;
	top_ip_add(ls, s->ip);
	switch (s->access) {
	case FS_ACC_LOAD: ls->loads++; break;
	case FS_ACC_STORE: ls->stores++; break;
	default:
		ls->hitm++;
		ls->hitm_events += ev;
		break;
	}
	int t = thread_slot(ls, s->tid, s->cpu);
	if (t < 0) {
		ls->overflow++;
		return;
	}
	unsigned off = (unsigned)(s->addr & (FS_LINE_BYTES - 1));
	uint8_t bit = (uint8_t)(1u << t);
	if (s->access == FS_ACC_STORE)
		ls->wr[off] |= bit;
	else if (s->access == FS_ACC_LOAD)
		ls->rd[off] |= bit;
	else
		ls->hm[off] |= bit;
}

/* Applies the rules of the header to one line; fills the report's class and offset maps. */
static void classify(const struct line_state *ls, struct fs_report *r)
{
	uint8_t w[FS_LINE_BYTES], u[FS_LINE_BYTES];
	r->inferred = ls->stores == 0 && ls->hitm > 0;
	for (int o = 0; o < FS_LINE_BYTES; o++) {
		w[o] = ls->wr[o] | (r->inferred ? ls->hm[o] : 0);
		u[o] = ls->wr[o] | ls->rd[o] | ls->hm[o];
		if (w[o])
			r->written |= 1ull << o;
		if (u[o])
			r->accessed |= 1ull << o;
		for (int t = 0; t < ls->nthreads; t++)
			if (w[o] & (1u << t))
				r->thread_written[t] |= 1ull << o;
	}
	/* users of every offset but o: prefix and suffix ORs make the false-sharing test O(64) */
	uint8_t pre[FS_LINE_BYTES + 1], suf[FS_LINE_BYTES + 1];
	pre[0] = 0;
	suf[FS_LINE_BYTES] = 0;
	for (int o = 0; o < FS_LINE_BYTES; o++)
		pre[o + 1] = pre[o] | u[o];
	for (int o = FS_LINE_BYTES - 1; o >= 0; o--)
		suf[o] = suf[o + 1] | u[o];
	bool is_true = false, is_false = false;
	for (int o = 0; o < FS_LINE_BYTES; o++) {
		if (!w[o])
			continue;
		if (__builtin_popcount(u[o]) >= 2)
			is_true = true;
		uint8_t others = pre[o] | suf[o + 1];
		if (__builtin_popcount(w[o]) >= 2 ? others != 0 : (others & (uint8_t)~w[o]) != 0)
			is_false = true;
	}
	if (is_true && is_false)
		r->cls = FS_CLASS_MIXED;
	else if (is_false)
		r->cls = FS_CLASS_FALSE;
	else if (is_true)
		r->cls = FS_CLASS_TRUE;
	else if (ls->hitm)
		r->cls = FS_CLASS_CONTENDED;
	else
		r->cls = FS_CLASS_NONE;
}

static void fill_report(const struct line_state *ls, double secs, struct fs_report *r)
{
	memset(r, 0, sizeof(*r));
	r->line = ls->line;
	r->pid = ls->pid;
	r->nthreads = ls->nthreads;
	r->ncpus = ls->ncpus;
	r->samples = ls->samples;
	r->loads = ls->loads;
	r->stores = ls->stores;
	r->hitm = ls->hitm;
	r->thread_overflow = ls->overflow;
	r->sample_addr = ls->sample_addr;
	memcpy(r->tids, ls->tids, sizeof(r->tids));
	memcpy(r->cpus, ls->cpus, sizeof(r->cpus));
	classify(ls, r);
	r->score = (double)(ls->hitm ? ls->hitm_events : ls->all_events) / secs;
	/* top addresses, most sampled first (insertion sort of four) */
	uint64_t ip[FS_TOP_IPS], n[FS_TOP_IPS];
	memcpy(ip, ls->ip, sizeof(ip));
	memcpy(n, ls->ipn, sizeof(n));
	for (int i = 0; i < FS_TOP_IPS; i++) {
		int best = i;
		for (int j = i + 1; j < FS_TOP_IPS; j++)
			if (n[j] > n[best])
				best = j;
		uint64_t ti = ip[i], tn = n[i];
		ip[i] = ip[best], n[i] = n[best];
		ip[best] = ti, n[best] = tn;
		r->top_ip[i] = n[i] ? ip[i] : 0;
		r->top_ip_samples[i] = n[i];
	}
}

static int cmp_score_desc(const void *a, const void *b, void *arg)
{
	const double *score = arg;
	double x = score[*(const uint32_t *)a], y = score[*(const uint32_t *)b];
	if (x != y)
		return x < y ? 1 : -1;
	/* equal scores: lower slot (earlier line) first, so reports are deterministic */
	return *(const uint32_t *)a < *(const uint32_t *)b ? -1 : 1;
}

int falseshare_analyze(struct falseshare *fs, const struct fs_sample *samples, uint32_t n, uint64_t window_ns,
		       struct fs_report *ret_reports, struct fs_stats *ret_stats)
{
	struct fs_stats st = { 0 };
	double secs = window_ns ? (double)window_ns / 1e9 : 1.0;
	/* clear only the index slots used last time: O(lines), not O(capacity) */
	for (uint32_t i = 0; i < fs->nlines; i++)
		fs->index[fs->index_pos[i]] = FS_NO_SLOT;
	fs->nlines = 0;
	for (uint32_t i = 0; i < n; i++) {
		const struct fs_sample *s = &samples[i];
		st.samples++;
		if (!s->addr || s->access < FS_ACC_LOAD || s->access > FS_ACC_HITM) {
			st.ignored++;
			continue;
		}
		add_sample(fs, s, &st);
	}
	st.lines = fs->nlines;
	/* classify every line once into the scratch scores; only contended ones are candidates */
	uint32_t nc = 0;
	struct fs_report tmp;
	for (uint32_t i = 0; i < fs->nlines; i++) {
		fill_report(&fs->lines[i], secs, &tmp);
		if (tmp.cls == FS_CLASS_NONE)
			continue;
		fs->score[i] = tmp.score;
		fs->order[nc++] = i;
	}
	st.contended = nc;
	qsort_r(fs->order, nc, sizeof(*fs->order), cmp_score_desc, fs->score);
	uint32_t out = nc < fs->max_report ? nc : fs->max_report;
	for (uint32_t i = 0; i < out; i++)
		fill_report(&fs->lines[fs->order[i]], secs, &ret_reports[i]);
	st.reported = out;
	if (ret_stats)
		*ret_stats = st;
	return (int)out;
}
