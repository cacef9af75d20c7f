/* analyze: one window through the memory analyzers with everything injected — code and data
 * regions registered in a real symbolizer (for this process), a two-node NUMA model —
 * checking object attribution, the rows moved onto (object, memory node) keys with their cost,
 * NUMA hotspots, a falsely shared line with its object and function, and the bounds. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "analyze.h"
#include "events.h"
#include "falseshare.h"
#include "numa.h"
#include "symbolizer.h"
#include "window.h"

/* this process: registrations win over its real maps, and the exit sweep keeps it */
#define PID ((uint32_t)getpid())
#define CODE 0x400000ull
#define OBJ_X 0x10000000ull
#define OBJ_Y 0x20000000ull

static int two_cpu_nodes(void *ctx, int16_t *cpu_node, uint32_t ncpu)
{
	for (uint32_t i = 0; i < ncpu; i++)
		cpu_node[i] = i < 2 ? 0 : i < 4 ? 1 : NUMA_NODE_UNKNOWN;
	return 2;
}

/* OBJ_X lives on node 0, OBJ_Y on node 1 */
static int page_nodes(void *ctx, uint32_t pid, uint32_t n, const uint64_t *pages, int *status)
{
	for (uint32_t i = 0; i < n; i++)
		status[i] = pages[i] >= OBJ_Y ? 1 : 0;
	return 0;
}

static const struct numa_ops model = { .cpu_nodes = two_cpu_nodes, .page_nodes = page_nodes };

struct fixture {
	struct symbolizer *sym;
	struct analyze *an;
	uint64_t fn_a, fn_b;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_int_equal(symbolizer_new(NULL, &f->sym), 0);
	assert_int_equal(symbolizer_register_region(f->sym, PID, CODE, 0x1000, "fn_a", "app"), 0);
	assert_int_equal(symbolizer_register_region(f->sym, PID, CODE + 0x1000, 0x1000, "fn_b", "app"), 0);
	assert_int_equal(symbolizer_register_data(f->sym, PID, OBJ_X, 0x10000, "obj_x"), 0);
	assert_int_equal(symbolizer_register_data(f->sym, PID, OBJ_Y, 0x10000, "obj_y"), 0);
	struct sym_result r;
	symbolizer_resolve(f->sym, PID, CODE + 0x10, true, &r);
	f->fn_a = r.func_id;
	symbolizer_resolve(f->sym, PID, CODE + 0x1010, true, &r);
	f->fn_b = r.func_id;
	struct analyze_opts o = { .sym = f->sym, .numa_ops = &model, .max_objects = 8 };
	assert_int_equal(analyze_new(&o, &f->an), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	analyze_free(f->an);
	symbolizer_free(f->sym);
	free(f);
	return 0;
}

static void add_addr(struct window *w, uint64_t addr, uint64_t ip, uint32_t tid, uint32_t cpu, uint8_t access)
{
	w->addrs[w->naddrs++] = (struct window_addr){ .addr = addr, .ip = ip, .flow_id = 5, .period = 100,
						      .stack_id = WINDOW_NO_STACK, .pid = PID, .tid = tid, .cpu = cpu,
						      .event = 1, .access = access, .user_mode = 1, .dir = MS_DIR_RX,
						      .iclass = EVENTS_IC_DATA_PATH };
}

static const struct window_row *find_row(const struct window *w, uint64_t func, uint64_t obj, int node)
{
	for (uint32_t i = 0; i < w->nrows; i++)
		if (w->rows[i].func_id == func && w->rows[i].object_id == obj && w->rows[i].numa_node == node)
			return &w->rows[i];
	return NULL;
}

static void test_window(void **state)
{
	struct fixture *f = *state;
	struct window *w = window_alloc(4, 1);
	w->start_ns = 0;
	w->end_ns = 1000000000;
	w->nflows = 1;
	w->flows[0].flow_id = 5;
	w->flows[0].tuple.ifindex = 7;
	/* the symbolized rows: fn_a 10 samples (cost 1000), fn_b 3 samples */
	struct window_row base = { .flow_id = 5, .stack_id = WINDOW_NO_STACK, .pid = PID, .event = 1, .numa_node = -1,
				   .dir = MS_DIR_RX, .iclass = EVENTS_IC_DATA_PATH, .user_mode = 1 };
	w->rows[0] = base;
	w->rows[0].func_id = f->fn_a;
	w->rows[0].samples = 10;
	w->rows[0].norm_cost = 1000;
	w->rows[1] = base;
	w->rows[1].func_id = f->fn_b;
	w->rows[1].samples = 3;
	w->rows[1].norm_cost = 30;
	w->nrows = 2;
	w->funcs = calloc(2, sizeof(*w->funcs));
	w->funcs[0].func_id = f->fn_a;
	w->funcs[1].func_id = f->fn_b;
	w->nfuncs = 2;
	/* 10 address samples of fn_a: 6 stores into obj_x by two threads on CPUs 0 and 3 at offsets 0
	 * and 8 of one line (false sharing), 4 loads from obj_y on CPU 0 (remote: node 1) */
	w->addrs = calloc(16, sizeof(*w->addrs));
	for (int i = 0; i < 3; i++) {
		add_addr(w, OBJ_X + 0x40, CODE + 0x10, 11, 0, EVENTS_ACC_STORE);
		add_addr(w, OBJ_X + 0x48, CODE + 0x10, 12, 3, EVENTS_ACC_STORE);
	}
	for (int i = 0; i < 4; i++)
		add_addr(w, OBJ_Y + 0x2000 + 64 * (uint64_t)i, CODE + 0x10, 11, 0, EVENTS_ACC_NONE);

	assert_int_equal(analyze_window(f->an, w), 0);
	assert_null(w->addrs);
	assert_int_equal(w->naddrs, 0);
	assert_int_equal(w->mem.addr_samples, 10);
	assert_int_equal(w->mem.objects_resolved, 10);
	/* objects */
	assert_int_equal(w->nobjects, 2);
	assert_string_equal(w->objects[0].name, "obj_x");
	assert_int_equal(w->objects[0].samples, 6);
	assert_string_equal(w->objects[1].name, "obj_y");
	uint64_t ox = w->objects[0].object_id, oy = w->objects[1].object_id;
	/* rows: fn_a's 10 samples moved onto (obj_x, node 0) x6 and (obj_y, node 1) x4 with their
	 * share of the cost; fn_b untouched; the emptied row gone */
	assert_int_equal(w->nrows, 3);
	assert_null(find_row(w, f->fn_a, 0, -1));
	const struct window_row *rx = find_row(w, f->fn_a, ox, 0), *ry = find_row(w, f->fn_a, oy, 1);
	assert_non_null(rx);
	assert_non_null(ry);
	assert_int_equal(rx->samples, 6);
	assert_int_equal(ry->samples, 4);
	assert_true(rx->norm_cost > 599.99 && rx->norm_cost < 600.01);
	assert_true(ry->norm_cost > 399.99 && ry->norm_cost < 400.01);
	assert_int_equal(find_row(w, f->fn_b, 0, -1)->samples, 3);
	assert_int_equal(w->mem.rows_refined, 10);
	/* NUMA: 4 remote (obj_y on node 1 from CPU 0), obj_x local from CPU 0 and remote from CPU 3 */
	assert_int_equal(w->mem.numa_remote, 4 + 3);
	assert_int_equal(w->mem.numa_local, 3);
	assert_true(w->nnuma == 3);
	bool seen = false;
	for (uint32_t i = 0; i < w->nnuma; i++)
		if (w->numa[i].object_id == oy) {
			assert_int_equal(w->numa[i].mem_node, 1);
			assert_int_equal(w->numa[i].cpu_node, 0);
			assert_int_equal(w->numa[i].samples, 4);
			assert_int_equal(w->numa[i].ifindex, 7);
			seen = true;
		}
	assert_true(seen);
	/* false sharing: the obj_x line, offsets 0 and 8, fn_a named in the dictionary */
	assert_int_equal(w->nfs, 1);
	assert_int_equal(w->fs[0].line, OBJ_X + 0x40);
	assert_int_equal(w->fs[0].cls, FS_CLASS_FALSE);
	assert_int_equal(w->fs[0].object_id, ox);
	assert_int_equal(w->fs[0].written, (1ull << 0) | (1ull << 8));
	assert_int_equal(w->fs[0].func_id[0], f->fn_a);
	assert_non_null(window_find_func(w, f->fn_a));
	struct analyze_stats st;
	analyze_stats(f->an, &st);
	assert_int_equal(st.windows, 1);
	assert_int_equal(st.fs_lines, 1);
	assert_int_equal(st.numa_remote, 7);
	window_free(w);
}

static void test_bounds_and_coarsened_rows(void **state)
{
	struct fixture *f = *state;
	/* more objects than max_objects (8), and samples whose row was coarsened (ip dropped) */
	struct window *w = window_alloc(1, 1);
	w->rows[0] = (struct window_row){ .flow_id = 5, .func_id = 1, .stack_id = WINDOW_NO_STACK, .pid = PID,
					  .event = 1, .numa_node = -1, .dir = MS_DIR_RX, .iclass = EVENTS_IC_DATA_PATH,
					  .user_mode = 1, .samples = 20, .norm_cost = 2000 };
	w->nrows = 1;
	w->addrs = calloc(20, sizeof(*w->addrs));
	for (int i = 0; i < 10; i++)
		symbolizer_register_data(f->sym, PID, 0x30000000ull + 0x1000 * (uint64_t)i, 0x1000, (char[]){ (char)('a' + i), 0 });
	for (int i = 0; i < 20; i++)
		add_addr(w, 0x30000000ull + 0x1000 * (uint64_t)(i % 10), CODE + 0x10, 1, 0, EVENTS_ACC_NONE);
	assert_int_equal(analyze_window(f->an, w), 0);
	assert_int_equal(w->nobjects, 8);
	struct analyze_stats st;
	analyze_stats(f->an, &st);
	assert_int_equal(st.objects_overflow, 4);      /* the 9th and 10th objects, twice each */
	assert_int_equal(st.rows_unmatched, 20);       /* fn_a's row does not exist: it was coarsened */
	assert_int_equal(w->nrows, 1);
	assert_int_equal(w->rows[0].samples, 20);
	window_free(w);
	/* a window without address samples gets empty sections */
	w = window_alloc(1, 1);
	assert_int_equal(analyze_window(f->an, w), 0);
	assert_int_equal(w->nobjects + w->nfs + w->nnuma, 0);
	window_free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_window, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bounds_and_coarsened_rows, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
