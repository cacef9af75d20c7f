/* Targets: the guide's "10.1." prefix, CIDRs on either endpoint, ports, protocols, interfaces,
 * pids, AND across kinds / OR within a kind, and cgroup v2 paths resolved to ids so that a
 * process started in the cgroup later matches (needs root and a cgroup2 mount, else skipped). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "targets.h"

static struct ms_sample sample(const char *src, const char *dst, uint16_t sport, uint16_t dport, uint8_t proto)
{
	struct ms_sample s;
	memset(&s, 0, sizeof(s));
	s.flow_id = 42;
	s.pid = 100;
	s.cgroup_id = 1;
	s.flow.proto = proto;
	s.flow.sport = sport;
	s.flow.dport = dport;
	s.flow.ifindex = 3;
	unsigned a[4];
	if (sscanf(src, "%u.%u.%u.%u", &a[0], &a[1], &a[2], &a[3]) == 4) {
		s.flow.family = MS_FAMILY_V4;
		s.flow.saddr[10] = s.flow.saddr[11] = s.flow.daddr[10] = s.flow.daddr[11] = 0xff;
		for (int i = 0; i < 4; i++)
			s.flow.saddr[12 + i] = (uint8_t)a[i];
		sscanf(dst, "%u.%u.%u.%u", &a[0], &a[1], &a[2], &a[3]);
		for (int i = 0; i < 4; i++)
			s.flow.daddr[12 + i] = (uint8_t)a[i];
	} else {
		s.flow.family = MS_FAMILY_V6;
		inet_pton(AF_INET6, src, s.flow.saddr);
		inet_pton(AF_INET6, dst, s.flow.daddr);
	}
	return s;
}

static struct targets *build(const char *const *specs, size_t n)
{
	struct targets_entry e[TARGETS_MAX];
	char err[256];
	for (size_t i = 0; i < n; i++) {
		int r = targets_parse_spec(specs[i], &e[i], err, sizeof(err));
		if (r < 0)
			fail_msg("%s: %s", specs[i], err);
	}
	struct targets *t;
	assert_int_equal(targets_new(e, n, NULL, &t, err, sizeof(err)), 0);
	return t;
}

static void test_guide_prefix(void **state)
{
	const char *spec[] = { "flow:10.1." };
	struct targets *t = build(spec, 1);
	struct ms_sample a = sample("10.1.7.9", "192.168.0.1", 1000, 80, 6);
	struct ms_sample b = sample("192.168.0.1", "10.1.0.1", 1000, 80, 6); /* either endpoint */
	struct ms_sample c = sample("10.10.0.1", "10.2.0.1", 1000, 80, 6);   /* 10.10 is not 10.1. */
	struct ms_sample d = a;
	d.flow_id = 0; /* unattributed never matches a flow filter */
	assert_true(targets_match(t, &a));
	assert_true(targets_match(t, &b));
	assert_false(targets_match(t, &c));
	assert_false(targets_match(t, &d));
	char buf[TARGETS_TEXT_MAX];
	assert_true(targets_format(targets_get(t, 0), buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "flow:10.1.0.0/16");
	targets_free(t);
}

static void test_flow_forms(void **state)
{
	struct targets_entry e;
	char err[256], buf[TARGETS_TEXT_MAX];
	static const struct { const char *in, *out; } ok[] = {
		{ "flow:10.", "flow:10.0.0.0/8" },
		{ "flow:10.1.2.", "flow:10.1.2.0/24" },
		{ "flow:10.1.2.3", "flow:10.1.2.3/32" },
		{ "flow:10.1.2.3/12", "flow:10.0.0.0/12" },
		{ "flow:0.0.0.0/0", "flow:0.0.0.0/0" },
		{ "flow:fd77:1:", "flow:fd77:1::/32" },
		{ "flow:fd77::/16", "flow:fd77::/16" },
		{ "flow:fd77::2", "flow:fd77::2/128" },
		{ "port:443", "port:443" },
		{ "proto:udp", "proto:17" },
		{ "proto:TCP", "proto:6" },
		{ "proto:47", "proto:47" },
		{ "ifindex:7", "ifindex:7" },
		{ "ifindex:lo", "ifindex:1" },
		{ "pid:1234", "pid:1234" },
		{ "cgroup:/system.slice//x.service/", "cgroup:/system.slice/x.service" },
		{ "cgroup:/", "cgroup:/" },
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		if (targets_parse_spec(ok[i].in, &e, err, sizeof(err)) < 0)
			fail_msg("%s: %s", ok[i].in, err);
		assert_true(targets_format(&e, buf, sizeof(buf)) > 0);
		assert_string_equal(buf, ok[i].out);
	}
	static const char *const bad[] = {
		"flow:10.1", "flow:10.1.2.3.", "flow:256.", "flow:10..", "flow:", "flow:10.0.0.0/33",
		"flow:fd77::/129", "flow:fd77", "flow:1:2:3:4:5:6:7:8:", "flow:10.0.0.0/", "flow:10.0.0.0/-1",
		"flow:x", "port:65536", "port:-1", "port:", "port:44 3", "proto:foo", "proto:256",
		"pid:0", "pid:4194305", "pid:12a", "ifindex:0", "ifindex:no-such-if0", "cgroup:a/../b",
		"cgroup:", "kind:1", "noseparator", "flow:0001.2.", ":x",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		if (targets_parse_spec(bad[i], &e, err, sizeof(err)) != -EINVAL)
			fail_msg("accepted %s", bad[i]);
		assert_true(err[0] != 0);
	}
}

static void test_and_or(void **state)
{
	const char *spec[] = { "flow:10.1.", "flow:fd00::/8", "port:443", "port:80", "proto:tcp" };
	struct targets *t = build(spec, 5);
	struct ms_sample a = sample("10.1.0.1", "10.9.0.1", 5555, 443, 6);
	struct ms_sample b = sample("fd00::1", "fd01::1", 80, 5555, 6);
	struct ms_sample c = sample("10.1.0.1", "10.9.0.1", 5555, 8080, 6); /* port fails */
	struct ms_sample d = sample("10.1.0.1", "10.9.0.1", 5555, 443, 17); /* proto fails */
	struct ms_sample e = sample("10.2.0.1", "10.9.0.1", 5555, 443, 6);  /* flow fails */
	assert_true(targets_match(t, &a));
	assert_true(targets_match(t, &b));
	assert_false(targets_match(t, &c));
	assert_false(targets_match(t, &d));
	assert_false(targets_match(t, &e));
	assert_int_equal(targets_single_pid(t), 0);
	targets_free(t);

	const char *spec2[] = { "pid:100", "ifindex:3" };
	t = build(spec2, 2);
	assert_true(targets_match(t, &a));
	a.pid = 101;
	assert_false(targets_match(t, &a));
	assert_int_equal(targets_single_pid(t), 100);
	targets_free(t);

	/* the empty set matches everything, unattributed samples included */
	t = build(NULL, 0);
	a.flow_id = 0;
	assert_true(targets_match(t, &a));
	assert_true(targets_empty(t));
	targets_free(t);
	assert_true(targets_match(NULL, &a));
}

static void test_limits(void **state)
{
	struct targets_entry e[TARGETS_MAX + 1];
	memset(e, 0, sizeof(e));
	for (int i = 0; i <= TARGETS_MAX; i++) {
		e[i].kind = TARGETS_PORT;
		e[i].u.port = (uint16_t)i;
	}
	struct targets *t;
	char err[128];
	assert_int_equal(targets_new(e, TARGETS_MAX + 1, NULL, &t, err, sizeof(err)), -E2BIG);
	assert_int_equal(targets_new(e, TARGETS_MAX, NULL, &t, err, sizeof(err)), 0);
	assert_int_equal(targets_count(t), TARGETS_MAX);
	targets_free(t);
	/* a cgroup that does not exist is refused with its path */
	struct targets_entry c;
	assert_int_equal(targets_parse_spec("cgroup:/no/such/cgroup-ms", &c, err, sizeof(err)), 0);
	err[0] = 0;
	assert_true(targets_new(&c, 1, NULL, &t, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "no/such/cgroup-ms"));
	char longp[400];
	memset(longp, 'a', sizeof(longp));
	memcpy(longp, "cgroup:", 7);
	longp[sizeof(longp) - 1] = 0;
	assert_int_equal(targets_parse_spec(longp, &c, err, sizeof(err)), -EINVAL);
}

/* Real cgroup v2: a child started in the cgroup after the filter was built matches by id. */
static void test_cgroup_live(void **state)
{
	struct targets_entry e;
	char err[256];
	struct targets *root;
	assert_int_equal(targets_parse_spec("cgroup:/", &e, err, sizeof(err)), 0);
	if (geteuid() != 0 || targets_new(&e, 1, NULL, &root, err, sizeof(err)) < 0) {
		print_message("skipped: %s\n", "needs root and a cgroup v2 mount");
		skip();
	}
	targets_free(root);
	char rootdir[256], dir[300];
	/* find the mount the module found, by resolving a known cgroup relative to it */
	static const char *const guesses[] = { "/sys/fs/cgroup", "/sys/fs/cgroup/unified" };
	uint64_t id = 0;
	rootdir[0] = 0;
	for (int i = 0; i < 2 && !rootdir[0]; i++)
		if (targets_cgroup_id(guesses[i], &id) == 0)
			snprintf(rootdir, sizeof(rootdir), "%s", guesses[i]);
	if (!rootdir[0]) {
		print_message("skipped: %s\n", "cgroup2 mounted elsewhere");
		skip();
	}
	snprintf(dir, sizeof(dir), "%s/ms-targets-test-%d", rootdir, (int)getpid());
	if (mkdir(dir, 0755) < 0) {
		print_message("skipped: %s\n", "cannot create a cgroup");
		skip();
	}
	char sub[400];
	snprintf(sub, sizeof(sub), "%s/child", dir);
	assert_int_equal(mkdir(sub, 0755), 0);
	char spec[512];
	snprintf(spec, sizeof(spec), "cgroup:%s", dir); /* absolute form */
	assert_int_equal(targets_parse_spec(spec, &e, err, sizeof(err)), 0);
	struct targets *t;
	assert_int_equal(targets_new(&e, 1, NULL, &t, err, sizeof(err)), 0);
	assert_int_equal(targets_cgroup_ids(t), 2); /* itself and its child */
	uint64_t cid, subid;
	assert_int_equal(targets_cgroup_id(dir, &cid), 0);
	assert_int_equal(targets_cgroup_id(sub, &subid), 0);
	struct ms_sample s = sample("10.0.0.1", "10.0.0.2", 1, 2, 6);
	s.cgroup_id = cid;
	assert_true(targets_match(t, &s));
	s.cgroup_id = subid;
	assert_true(targets_match(t, &s));
	s.cgroup_id = id;
	assert_false(targets_match(t, &s));
	/* a cgroup created later is picked up by refresh */
	char sub2[400];
	snprintf(sub2, sizeof(sub2), "%s/late", dir);
	assert_int_equal(mkdir(sub2, 0755), 0);
	assert_int_equal(targets_refresh(t), 3);
	/* the id of a process that joins later is what the kernel reports for it */
	pid_t pid = fork();
	if (pid == 0) {
		char procs[450], me[32];
		snprintf(procs, sizeof(procs), "%s/cgroup.procs", sub2);
		int fd = open(procs, O_WRONLY);
		int n = snprintf(me, sizeof(me), "%d", (int)getpid());
		_exit(fd >= 0 && write(fd, me, (size_t)n) == n ? 0 : 1);
	}
	int st;
	waitpid(pid, &st, 0);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	uint64_t lateid;
	assert_int_equal(targets_cgroup_id(sub2, &lateid), 0);
	s.cgroup_id = lateid;
	assert_true(targets_match(t, &s));
	targets_free(t);
	rmdir(sub2);
	rmdir(sub);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_guide_prefix),
		cmocka_unit_test(test_flow_forms),
		cmocka_unit_test(test_and_or),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_cgroup_live),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
