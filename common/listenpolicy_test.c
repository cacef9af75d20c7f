/* listenpolicy_test: loopback hosts and nng URLs, wildcards, the check and its message. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "listenpolicy.h"

static void test_hosts(void **state)
{
	assert_true(listenpolicy_host_is_loopback("127.0.0.1"));
	assert_true(listenpolicy_host_is_loopback("127.9.8.7"));
	assert_true(listenpolicy_host_is_loopback("::1"));
	assert_true(listenpolicy_host_is_loopback("[::1]"));
	assert_true(listenpolicy_host_is_loopback("localhost"));
	assert_false(listenpolicy_host_is_loopback("0.0.0.0"));
	assert_false(listenpolicy_host_is_loopback("::"));
	assert_false(listenpolicy_host_is_loopback("*"));
	assert_false(listenpolicy_host_is_loopback(""));
	assert_false(listenpolicy_host_is_loopback(NULL));
	assert_false(listenpolicy_host_is_loopback("10.1.2.3"));
	assert_false(listenpolicy_host_is_loopback("[]"));
	assert_false(listenpolicy_host_is_loopback("no-such-host.invalid"));
}

static void test_urls(void **state)
{
	assert_true(listenpolicy_url_is_loopback("tcp://127.0.0.1:9300"));
	assert_true(listenpolicy_url_is_loopback("tls+tcp://localhost:9300"));
	assert_true(listenpolicy_url_is_loopback("tcp://[::1]:9300"));
	assert_true(listenpolicy_url_is_loopback("ws://127.0.0.1:80/path"));
	assert_true(listenpolicy_url_is_loopback("ipc:///tmp/ms.sock"));
	assert_true(listenpolicy_url_is_loopback("inproc://x"));
	assert_false(listenpolicy_url_is_loopback("tcp://0.0.0.0:9300"));
	assert_false(listenpolicy_url_is_loopback("tcp://:9300"));
	assert_false(listenpolicy_url_is_loopback("tcp://*:9300"));
	assert_false(listenpolicy_url_is_loopback("tcp://[::]:9300"));
	assert_false(listenpolicy_url_is_loopback("tls+tcp://10.0.0.1:9300"));
	assert_false(listenpolicy_url_is_loopback("127.0.0.1:9300"));
	assert_false(listenpolicy_url_is_loopback(""));
	assert_false(listenpolicy_url_is_loopback(NULL));
}

static void test_check(void **state)
{
	char msg[256] = "";
	assert_int_equal(listenpolicy_check("grpc_address", "127.0.0.1", false, false, "token_file", msg, sizeof(msg)), 0);
	assert_int_equal(listenpolicy_check("grpc_address", "0.0.0.0", false, true, "token_file", msg, sizeof(msg)), 0);
	assert_string_equal(msg, "");
	assert_int_equal(listenpolicy_check("grpc_address", "0.0.0.0", false, false, "token_file", msg, sizeof(msg)),
			 -EPERM);
	assert_string_equal(msg, "grpc_address 0.0.0.0 is not loopback: refusing to serve it without token_file");
	assert_int_equal(listenpolicy_check("listen_url", "tcp://:1", true, false, "x", msg, sizeof(msg)), -EPERM);
	assert_non_null(strstr(msg, "listen_url tcp://:1"));
	assert_int_equal(listenpolicy_check("metrics_address", "", false, false, "x", msg, sizeof(msg)), -EPERM);
	assert_non_null(strstr(msg, "(all addresses)"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hosts),
		cmocka_unit_test(test_urls),
		cmocka_unit_test(test_check),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
