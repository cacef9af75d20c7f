/* synth: see synth.h. xorshift64* drives every choice; flow popularity is skewed (product of
 * two uniforms) so top-K views have a real head and tail. */
#include "synth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "numa.h"

#define LINE_ADDR SYNTH_DATA_BASE
#define TABLE_ADDR (SYNTH_DATA_BASE + (1ULL << 20))
#define TABLE_SIZE (64ULL << 12)

struct synth {
	struct synth_opts o;
	uint64_t state;
	uint64_t n;
	uint64_t ts;
};

static inline uint64_t next_rand(struct synth *s)
{
	uint64_t x = s->state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	s->state = x;
	return x * 0x2545F4914F6CDD1DULL;
}

int synth_new(const struct synth_opts *opts, struct synth **ret)
{
	if (opts->nflows == 0 || opts->nevents == 0 || opts->unattributed_pct > 100)
		return -EINVAL;
	struct synth *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->o = *opts;
	s->state = opts->seed ? opts->seed : 0x9e3779b97f4a7c15ULL;
	s->ts = 1000000000ULL;
	*ret = s;
	return 0;
}

void synth_flow_tuple(uint32_t i, struct ms_flow_tuple *t)
{
	memset(t, 0, sizeof(*t));
	t->family = MS_FAMILY_V4;
	t->saddr[10] = t->saddr[11] = 0xff;
	t->daddr[10] = t->daddr[11] = 0xff;
	t->saddr[12] = 10;
	t->saddr[13] = 1;
	t->saddr[14] = (uint8_t)(i >> 8);
	t->saddr[15] = (uint8_t)i;
	t->daddr[12] = 10;
	t->daddr[13] = 2;
	t->daddr[14] = (uint8_t)(i >> 16);
	t->daddr[15] = 1;
	t->sport = (uint16_t)(10000 + i % 50000);
	t->dport = (i & 1) ? 443 : 80;
	t->proto = (i % 4 == 3) ? 17 : 6;
	t->dir = (i % 3 == 2) ? MS_DIR_TX : MS_DIR_RX;
	t->ifindex = 2;
	t->netns = SYNTH_NETNS;
}

void synth_func_name(uint32_t i, char *buf, unsigned len)
{
	snprintf(buf, len, "synth_func_%02u", i);
}

/* From bits the stream already drew (mixed), so the rest of the stream does not change: the
 * thread's own 8-byte counter on the shared line, or a word of the table in one of the thread's
 * own lines (line index = thread mod 8), so that the counters line is the only shared one. */
static uint64_t data_addr(uint32_t tid, uint64_t r)
{
	uint64_t t = (tid - SYNTH_PID) % SYNTH_LINE_THREADS;
	if ((r & 3) == 0)
		return LINE_ADDR + t * 8;
	uint64_t line = ((r >> 8) % (TABLE_SIZE / 64 / SYNTH_LINE_THREADS)) * SYNTH_LINE_THREADS + t;
	return TABLE_ADDR + line * 64 + ((r >> 40) & 7) * 8;
}

int synth_data_object(uint32_t i, struct synth_object *ret_obj)
{
	static const struct synth_object objs[SYNTH_NOBJECTS] = {
		{ LINE_ADDR, 64, "synth_thread_counters" },
		{ TABLE_ADDR, TABLE_SIZE, "synth_table" },
	};
	if (i >= SYNTH_NOBJECTS)
		return -EINVAL;
	*ret_obj = objs[i];
	return 0;
}

static int numa_cpu_nodes(void *ctx, int16_t *cpu_node, uint32_t ncpu)
{
	for (uint32_t c = 0; c < ncpu; c++)
		cpu_node[c] = (int16_t)(c % 2);
	return 2;
}

static int numa_page_nodes(void *ctx, uint32_t pid, uint32_t n, const uint64_t *pages, int *ret_status)
{
	if (pid != SYNTH_PID)
		return -ESRCH;
	for (uint32_t i = 0; i < n; i++) {
		bool mapped = (pages[i] >= LINE_ADDR && pages[i] < LINE_ADDR + 64) ||
			      (pages[i] >= TABLE_ADDR && pages[i] < TABLE_ADDR + TABLE_SIZE);
		ret_status[i] = mapped ? (int)((pages[i] >> 12) % 2) : -EFAULT;
	}
	return 0;
}

const struct numa_ops synth_numa_ops = {
	.cpu_nodes = numa_cpu_nodes,
	.page_nodes = numa_page_nodes,
};

void synth_next(struct synth *s, struct ms_sample *out)
{
	uint64_t r1 = next_rand(s), r2 = next_rand(s);
	memset(out, 0, sizeof(*out));
	out->magic = MS_SAMPLE_MAGIC;
	out->version = MS_SAMPLE_VERSION;
	out->cpu = (uint32_t)(r1 & 1);
	out->pid = SYNTH_PID;
	out->tid = SYNTH_PID + (uint32_t)((r1 >> 8) & 7);
	out->event = (uint32_t)((r1 >> 16) % s->o.nevents);
	s->ts += 1000;
	out->ts_ns = s->ts;
	uint32_t fn = (uint32_t)((r2 >> 8) % SYNTH_NFUNCS);
	/* hot loops have a few hot instructions: skewed offset within the function */
	uint64_t off = (((r2 >> 20) & 0x3f) * ((r2 >> 26) & 0x3f)) >> 6;
	out->ip = SYNTH_CODE_BASE + (uint64_t)fn * SYNTH_FUNC_SIZE + off * 4;
	out->user_mode = 1;
	out->period = 1000;
	out->cgroup_id = 1;
	out->kstack_id = -1;
	out->ustack_id = -1;
	out->gso_segs = 1;
	if ((r1 >> 32) % 100 < s->o.unattributed_pct) {
		out->flow_id = 0;
		out->attr_rule = MS_ATTR_NONE;
	} else {
		uint64_t n = s->o.nflows;
		uint32_t idx = (uint32_t)(((r1 >> 40) % n) * ((r2 >> 40) % n) / n);
		synth_flow_tuple(idx, &out->flow);
		out->flow_id = ms_flow_hash(&out->flow);
		out->attr_rule = MS_ATTR_THREAD;
		out->ctx_age_ns = (r2 & 0xfffff);
	}
	if (s->o.data_addr)
		out->addr = data_addr(out->tid, ms_mix64(r1 ^ r2));
	s->n++;
}

uint64_t synth_count(const struct synth *s)
{
	return s->n;
}

struct synth *synth_free(struct synth *s)
{
	free(s);
	return NULL;
}
