/* privdrop_test: the kept masks per kernel, the name formatting, and a real drop in a forked
 * child (single-threaded: applied and checked; with a second thread: refused). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "privdrop.h"

#define CAP_NET_BIND_SERVICE_ 10
#define CAP_NET_ADMIN_ 12
#define CAP_SYS_PTRACE_ 19
#define CAP_SYS_ADMIN_ 21
#define CAP_SYS_RESOURCE_ 24
#define CAP_SYSLOG_ 34
#define CAP_PERFMON_ 38
#define CAP_BPF_ 39
#define CAP_CHECKPOINT_RESTORE_ 40
#define CAP_DAC_READ_SEARCH_ 2

static void test_agent_modern_kernel(void **state)
{
	struct privdrop_env e = { .last_cap = 40, .perf_paranoid = 2 };
	uint64_t k = privdrop_agent_keep(&e);
	assert_true(k == (PRIVDROP_BIT(CAP_BPF_) | PRIVDROP_BIT(CAP_PERFMON_) | PRIVDROP_BIT(CAP_SYS_PTRACE_) |
			  PRIVDROP_BIT(CAP_DAC_READ_SEARCH_) | PRIVDROP_BIT(CAP_SYSLOG_) |
			  PRIVDROP_BIT(CAP_CHECKPOINT_RESTORE_)));
	assert_false(k & PRIVDROP_BIT(CAP_SYS_ADMIN_));
	assert_false(k & PRIVDROP_BIT(CAP_NET_ADMIN_));
	assert_false(k & PRIVDROP_BIT(CAP_SYS_RESOURCE_));
	e.low_port = true;
	assert_true(privdrop_agent_keep(&e) == (k | PRIVDROP_BIT(CAP_NET_BIND_SERVICE_)));
}

static void test_agent_old_kernels(void **state)
{
	/* 5.8: CAP_BPF but no CAP_CHECKPOINT_RESTORE -> map_files needs CAP_SYS_ADMIN */
	struct privdrop_env e = { .last_cap = 39, .perf_paranoid = 2 };
	uint64_t k = privdrop_agent_keep(&e);
	assert_true(k & PRIVDROP_BIT(CAP_SYS_ADMIN_));
	assert_true(k & PRIVDROP_BIT(CAP_BPF_));
	assert_false(k & PRIVDROP_BIT(CAP_CHECKPOINT_RESTORE_));
	/* 5.4: neither CAP_BPF nor CAP_PERFMON exist; nothing above last_cap is ever set */
	e.last_cap = 37;
	k = privdrop_agent_keep(&e);
	assert_true(k & PRIVDROP_BIT(CAP_SYS_ADMIN_));
	assert_int_equal(k & ~privdrop_all(37), 0);
	/* perf_event_paranoid 3 patch checks CAP_SYS_ADMIN */
	e = (struct privdrop_env){ .last_cap = 40, .perf_paranoid = 3 };
	assert_true(privdrop_agent_keep(&e) & PRIVDROP_BIT(CAP_SYS_ADMIN_));
}

static void test_synthetic_and_coordinator(void **state)
{
	struct privdrop_env e = { .last_cap = 40, .perf_paranoid = 2, .synthetic = true };
	assert_int_equal(privdrop_agent_keep(&e), 0);
	assert_int_equal(privdrop_coordinator_keep(&e), 0);
	e.low_port = true;
	assert_true(privdrop_agent_keep(&e) == PRIVDROP_BIT(CAP_NET_BIND_SERVICE_));
	assert_true(privdrop_coordinator_keep(&e) == PRIVDROP_BIT(CAP_NET_BIND_SERVICE_));
}

static void test_all_and_names(void **state)
{
	char buf[512];
	assert_true(privdrop_all(40) == 0x1ffffffffffull);
	assert_true(privdrop_all(63) == UINT64_MAX);
	assert_int_equal(privdrop_all(-1), 0);
	assert_string_equal(privdrop_names(0, buf, sizeof(buf)), "none");
	assert_string_equal(privdrop_names(PRIVDROP_BIT(CAP_BPF_) | PRIVDROP_BIT(CAP_PERFMON_), buf, sizeof(buf)),
			    "cap_perfmon,cap_bpf");
	assert_string_equal(privdrop_names(PRIVDROP_BIT(50), buf, sizeof(buf)), "cap_50");
	/* too small: cut at a whole name, never mid-name */
	privdrop_names(privdrop_all(40), buf, 20);
	assert_true(strlen(buf) < 20);
	struct privdrop_env env;
	privdrop_read_env(&env);
	assert_in_range(env.last_cap, 30, 63);
}

static int child_drop(void)
{
	struct privdrop_env env;
	privdrop_read_env(&env);
	uint64_t keep = PRIVDROP_BIT(CAP_BPF_);
	struct privdrop_result res;
	if (privdrop_apply(keep, env.last_cap, &res) < 0)
		return 10;
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
		return 11;
	if (res.after & ~keep)
		return 12;
	if (res.had_setpcap && (res.bounding & ~keep))
		return 13;
	if ((res.before & keep) != res.after)
		return 14;
	return 0;
}

static void test_apply_in_child(void **state)
{
	pid_t p = fork();
	assert_true(p >= 0);
	if (p == 0)
		_exit(child_drop());
	int st;
	assert_int_equal(waitpid(p, &st, 0), p);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void *sleeper(void *arg)
{
	(void)arg;
	pause();
	return NULL;
}

static void test_refused_with_threads(void **state)
{
	pid_t p = fork();
	assert_true(p >= 0);
	if (p == 0) {
		pthread_t t;
		if (pthread_create(&t, NULL, sleeper, NULL) != 0)
			_exit(20);
		_exit(privdrop_apply(0, 40, NULL) == -EBUSY ? 0 : 21);
	}
	int st;
	assert_int_equal(waitpid(p, &st, 0), p);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_agent_modern_kernel),
		cmocka_unit_test(test_agent_old_kernels),
		cmocka_unit_test(test_synthetic_and_coordinator),
		cmocka_unit_test(test_all_and_names),
		cmocka_unit_test(test_apply_in_child),
		cmocka_unit_test(test_refused_with_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
