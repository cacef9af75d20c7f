/* stacks: stack-map ids to stable, symbolized stacks with an injected map (the real map is
 * exercised by the agent with --stacks); equal call chains through different addresses share a
 * stable id, return addresses symbolize by the call before them, missing ids drop the stack,
 * idle ids are reclaimed once the map is half full. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stacks.h"
#include "symbolizer.h"
#include "window.h"

#define PID ((uint32_t)getpid())
#define BAD 0xfffffff2u /* -EFAULT from bpf_get_stackid */

struct fake_map {
	uint64_t ips[16][STACKS_MAP_FRAMES];
	int present[16];
	int dropped[16];
};

static int fake_lookup(void *ctx, uint32_t id, uint64_t *ips)
{
	struct fake_map *m = ctx;
	if (id >= 16 || !m->present[id])
		return -ENOENT;
	memcpy(ips, m->ips[id], sizeof(m->ips[id]));
	return 0;
}

static int fake_drop(void *ctx, uint32_t id)
{
	struct fake_map *m = ctx;
	m->dropped[id]++;
	m->present[id] = 0;
	return 0;
}

static const struct stacks_ops fake_ops = { .lookup = fake_lookup, .drop = fake_drop };

static void put(struct fake_map *m, uint32_t id, const uint64_t *ips, int n)
{
	memset(m->ips[id], 0, sizeof(m->ips[id]));
	memcpy(m->ips[id], ips, (size_t)n * sizeof(*ips));
	m->present[id] = 1;
}

static uint64_t func_id(struct symbolizer *s, uint64_t ip)
{
	struct sym_result r;
	symbolizer_resolve(s, PID, ip, true, &r);
	return r.func_id;
}

static void test_stable_ids(void **state)
{
	struct symbolizer *sym;
	assert_int_equal(symbolizer_new(NULL, &sym), 0);
	symbolizer_register_region(sym, PID, 0x1000, 0x100, "f_leaf", "app");
	symbolizer_register_region(sym, PID, 0x1100, 0x100, "f_mid", "app");
	symbolizer_register_region(sym, PID, 0x1200, 0x100, "f_main", "app");
	struct fake_map m = { 0 };
	put(&m, 5, (uint64_t[]){ 0x1010, 0x1150, 0x1250 }, 3);
	put(&m, 6, (uint64_t[]){ 0x1020, 0x1160, 0x1260 }, 3); /* same chain, other addresses */
	put(&m, 7, (uint64_t[]){ 0x1010, 0x1250 }, 2);
	put(&m, 8, (uint64_t[]){ 0x1010, 0x1100 }, 2);         /* return address = f_mid's first byte */
	struct stacks *st;
	struct stacks_opts o = { .ops = &fake_ops, .ctx = &m, .sym = sym, .map_entries = 16 };
	assert_int_equal(stacks_new(&o, &st), 0);

	struct window *w = window_alloc(8, 1);
	uint64_t raw[] = { 5ull << 32 | BAD, 6ull << 32 | BAD, 7ull << 32 | BAD, WINDOW_NO_STACK, 9ull << 32 | BAD,
			   8ull << 32 | BAD };
	for (int i = 0; i < 6; i++)
		w->rows[i] = (struct window_row){ .stack_id = raw[i], .pid = PID, .user_mode = 1, .samples = 1 };
	w->nrows = 6;
	w->addrs = calloc(1, sizeof(*w->addrs));
	w->addrs[0] = (struct window_addr){ .stack_id = raw[0], .pid = PID, .user_mode = 1 };
	w->naddrs = 1;
	assert_int_equal(stacks_window(st, w), 0);

	uint64_t leaf = func_id(sym, 0x1010), mid = func_id(sym, 0x1150), top = func_id(sym, 0x1250);
	uint64_t h = SYMBOLIZER_FNV_SEED, zero = 0;
	h = symbolizer_fnv1a64(h, &zero, 8);
	h = symbolizer_fnv1a64(h, &leaf, 8);
	h = symbolizer_fnv1a64(h, &mid, 8);
	h = symbolizer_fnv1a64(h, &top, 8);
	assert_int_equal(w->rows[0].stack_id, h);
	assert_int_equal(w->rows[1].stack_id, h);
	assert_int_not_equal(w->rows[2].stack_id, h);
	assert_int_equal(w->rows[3].stack_id, WINDOW_NO_STACK);
	assert_int_equal(w->rows[4].stack_id, WINDOW_NO_STACK); /* id 9 is not in the map */
	assert_int_equal(w->addrs[0].stack_id, h);
	assert_int_equal(w->nstacks, 3);
	assert_int_equal(w->stacks[0].nkernel, 0);
	assert_int_equal(w->stacks[0].nuser, 3);
	assert_int_equal(w->stacks[0].func[0], leaf);
	assert_int_equal(w->stacks[0].func[2], top);
	/* the call that returns to 0x1100 is the last instruction of f_leaf */
	const struct window_stack *s8 = NULL;
	for (uint32_t i = 0; i < w->nstacks; i++)
		if (w->stacks[i].stack_id == w->rows[5].stack_id)
			s8 = &w->stacks[i];
	assert_non_null(s8);
	assert_int_equal(s8->func[1], leaf);
	assert_non_null(window_find_func(w, mid));
	assert_string_equal(window_find_func(w, top)->name, "f_main");
	struct stacks_stats ss;
	stacks_stats(st, &ss);
	assert_int_equal(ss.ids_missing, 1);
	assert_int_equal(ss.stacks, 3);
	window_free(w);

	/* reclaim: ids 5..8 tracked (half of 16 is 8: not yet); track 4 more, then let 5..8 idle */
	for (uint32_t id = 10; id < 14; id++)
		put(&m, id, (uint64_t[]){ 0x1010 }, 1);
	for (int round = 0; round < 10; round++) {
		w = window_alloc(4, 1);
		for (uint32_t k = 0; k < 4; k++)
			w->rows[k] = (struct window_row){ .stack_id = (uint64_t)(10 + k) << 32 | BAD, .pid = PID,
							  .user_mode = 1, .samples = 1 };
		w->nrows = 4;
		assert_int_equal(stacks_window(st, w), 0);
		window_free(w);
	}
	stacks_stats(st, &ss);
	assert_int_equal(ss.reclaimed, 4);
	for (int id = 5; id <= 8; id++)
		assert_int_equal(m.dropped[id], 1);
	for (int id = 10; id < 14; id++)
		assert_int_equal(m.dropped[id], 0);
	stacks_free(st);
	symbolizer_free(sym);
}

static void test_bad_opts(void **state)
{
	struct stacks *st;
	struct stacks_opts o = { .ops = &fake_ops };
	assert_int_equal(stacks_new(&o, &st), -EINVAL);
	assert_null(stacks_free(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stable_ids),
		cmocka_unit_test(test_bad_opts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
