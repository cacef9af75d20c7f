/* Flow id: the C/BPF hash (ms_abi.h) must equal the documented reference computation
 * (tests/lib/flowid.py, docs/FLOW_ID.md) for IPv4 and IPv6, and react to every identity field. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <string.h>

#include "ms_abi.h"

static void tuple_v4(struct ms_flow_tuple *t, const char *s, uint16_t sp, const char *d, uint16_t dp)
{
	memset(t, 0, sizeof(*t));
	t->family = MS_FAMILY_V4;
	t->saddr[10] = t->saddr[11] = 0xff;
	t->daddr[10] = t->daddr[11] = 0xff;
	inet_pton(AF_INET, s, t->saddr + 12);
	inet_pton(AF_INET, d, t->daddr + 12);
	t->sport = sp;
	t->dport = dp;
}

static void test_reference_v4(void **state)
{
	struct ms_flow_tuple t;
	tuple_v4(&t, "10.1.2.3", 40000, "10.4.5.6", 443);
	t.proto = 6;
	t.dir = MS_DIR_RX;
	t.netns = 4026531840u;
	/* python3 tests/lib/flowid.py */
	assert_int_equal(ms_flow_hash(&t), 0x835749791e86f597ULL);
}

static void test_reference_v6(void **state)
{
	struct ms_flow_tuple t;
	memset(&t, 0, sizeof(t));
	t.family = MS_FAMILY_V6;
	inet_pton(AF_INET6, "fd00::1", t.saddr);
	inet_pton(AF_INET6, "fd00::2", t.daddr);
	t.sport = 5353;
	t.dport = 53;
	t.proto = 17;
	t.dir = MS_DIR_TX;
	t.netns = 4026532000u;
	assert_int_equal(ms_flow_hash(&t), 0x21691ff2d1228066ULL);
}

static void test_attributes_not_identity(void **state)
{
	struct ms_flow_tuple a, b;
	tuple_v4(&a, "10.0.0.1", 1, "10.0.0.2", 2);
	a.proto = 6;
	a.dir = MS_DIR_TX;
	b = a;
	b.ifindex = 7;
	b.vlan = 12;
	b.flags = MS_FLOW_F_ENCAP;
	assert_int_equal(ms_flow_hash(&a), ms_flow_hash(&b));
}

static void test_identity_fields_change_id(void **state)
{
	struct ms_flow_tuple a, b;
	tuple_v4(&a, "10.0.0.1", 1000, "10.0.0.2", 2000);
	a.proto = 6;
	a.dir = MS_DIR_RX;
	a.netns = 1;
	uint64_t base = ms_flow_hash(&a);
	b = a; b.dir = MS_DIR_TX; assert_true(ms_flow_hash(&b) != base);
	b = a; b.proto = 17; assert_true(ms_flow_hash(&b) != base);
	b = a; b.netns = 2; assert_true(ms_flow_hash(&b) != base);
	b = a; b.sport = 1001; assert_true(ms_flow_hash(&b) != base);
	b = a; b.dport = 2001; assert_true(ms_flow_hash(&b) != base);
	b = a; b.saddr[15] ^= 1; assert_true(ms_flow_hash(&b) != base);
	b = a; b.daddr[15] ^= 1; assert_true(ms_flow_hash(&b) != base);
	/* swapping endpoints is a different flow (direction of the wire) */
	tuple_v4(&b, "10.0.0.2", 2000, "10.0.0.1", 1000);
	b.proto = 6; b.dir = MS_DIR_RX; b.netns = 1;
	assert_true(ms_flow_hash(&b) != base);
	assert_true(base != 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reference_v4),
		cmocka_unit_test(test_reference_v6),
		cmocka_unit_test(test_attributes_not_identity),
		cmocka_unit_test(test_identity_fields_change_id),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
