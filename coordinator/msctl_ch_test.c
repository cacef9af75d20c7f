/* msctl_ch: argument checks, SQL text, the TabSeparated parser (including a bounded random
 * mutation loop over it, for ASan/valgrind runs) and the folded-stack text. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "msctl_ch.h"

static void since(void **state)
{
	(void)state;
	uint64_t s = 0;
	assert_int_equal(msctl_ch_parse_since("30s", &s), 0);
	assert_int_equal(s, 30);
	assert_int_equal(msctl_ch_parse_since("10m", &s), 0);
	assert_int_equal(s, 600);
	assert_int_equal(msctl_ch_parse_since("2h", &s), 0);
	assert_int_equal(s, 7200);
	assert_int_equal(msctl_ch_parse_since("366d", &s), 0);
	assert_int_equal(s, 366u * 86400u);
	s = 7;
	assert_int_equal(msctl_ch_parse_since("367d", &s), -ERANGE);
	assert_int_equal(msctl_ch_parse_since("0s", &s), -ERANGE);
	assert_int_equal(msctl_ch_parse_since("99999999999999999999999s", &s), -ERANGE);
	assert_int_equal(msctl_ch_parse_since("10", &s), -EINVAL);
	assert_int_equal(msctl_ch_parse_since("5x", &s), -EINVAL);
	assert_int_equal(msctl_ch_parse_since("-1m", &s), -EINVAL);
	assert_int_equal(msctl_ch_parse_since(" 1m", &s), -EINVAL);
	assert_int_equal(msctl_ch_parse_since("1ms", &s), -EINVAL);
	assert_int_equal(msctl_ch_parse_since("", &s), -EINVAL);
	assert_int_equal(msctl_ch_parse_since(NULL, &s), -EINVAL);
	assert_int_equal(s, 7); /* untouched on failure */
}

static void flow_ids(void **state)
{
	(void)state;
	uint64_t v = 0;
	assert_int_equal(msctl_ch_parse_flow("0x835749791e86f597", &v), 0);
	assert_true(v == 0x835749791e86f597ull);
	assert_int_equal(msctl_ch_parse_flow("835749791E86F597", &v), 0);
	assert_true(v == 0x835749791e86f597ull);
	assert_int_equal(msctl_ch_parse_flow("0000000000000010", &v), 0); /* 16 digits: printed hex */
	assert_true(v == 16);
	assert_int_equal(msctl_ch_parse_flow("12345", &v), 0);
	assert_true(v == 12345);
	assert_int_equal(msctl_ch_parse_flow("ff", &v), 0);
	assert_true(v == 255);
	assert_int_equal(msctl_ch_parse_flow("0", &v), 0);
	assert_true(v == 0);
	assert_int_equal(msctl_ch_parse_flow("18446744073709551615", &v), 0);
	assert_true(v == UINT64_MAX);
	v = 3;
	assert_int_equal(msctl_ch_parse_flow("18446744073709551616", &v), -ERANGE);
	assert_int_equal(msctl_ch_parse_flow("0x1ffffffffffffffff", &v), -ERANGE);
	assert_int_equal(msctl_ch_parse_flow("0x", &v), -EINVAL);
	assert_int_equal(msctl_ch_parse_flow("", &v), -EINVAL);
	assert_int_equal(msctl_ch_parse_flow("-1", &v), -EINVAL);
	assert_int_equal(msctl_ch_parse_flow("12g", &v), -EINVAL);
	assert_int_equal(msctl_ch_parse_flow("1 OR 1=1", &v), -EINVAL);
	assert_int_equal(v, 3);
}

static void names(void **state)
{
	(void)state;
	assert_true(msctl_ch_valid_name("microsentinel", true));
	assert_true(msctl_ch_valid_name("_db2", true));
	assert_false(msctl_ch_valid_name("2db", true));
	assert_false(msctl_ch_valid_name("a.b", true));
	assert_false(msctl_ch_valid_name("a-b", true));
	assert_false(msctl_ch_valid_name("", true));
	assert_false(msctl_ch_valid_name(NULL, true));
	assert_true(msctl_ch_valid_name("cpu-clock", false));
	assert_true(msctl_ch_valid_name("mem_load:l3_miss", false));
	assert_false(msctl_ch_valid_name("a'b", false));
	assert_false(msctl_ch_valid_name("a b", false));
	char big[80];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	assert_false(msctl_ch_valid_name(big, false));
}

static void sql_string(void **state)
{
	(void)state;
	struct strbuf sb;
	strbuf_init(&sb, 1024);
	assert_int_equal(msctl_ch_sql_string(&sb, "a'b\\c\n\x7f"), 0);
	assert_string_equal(sb.buf, "'a\\'b\\\\c\\x0a\\x7f'");
	strbuf_release(&sb);
}

static void build_sql(void **state)
{
	(void)state;
	char *hosts[] = { "web-1", "db.2" };
	struct msctl_ch_query q = { .kind = MSCTL_CH_FLOWS, .database = "microsentinel", .since_s = 600, .limit = 20,
				    .has_flow = true, .flow_id = UINT64_MAX, .event = "cpu-clock", .hosts = hosts,
				    .nhosts = 2 };
	struct strbuf sb;
	strbuf_init(&sb, MSCTL_CH_MAX_SQL);
	assert_int_equal(msctl_ch_build_sql(&q, &sb), 0);
	assert_non_null(strstr(sb.buf, "FROM microsentinel.ms_flow_rollup FINAL WHERE ts >= now() - 600 AND host IN "
				       "('web-1', 'db.2') AND event = 'cpu-clock' AND flow_id = 18446744073709551615"));
	assert_non_null(strstr(sb.buf, "microsentinel.ms_flows FINAL"));
	assert_non_null(strstr(sb.buf, "LIMIT 20 FORMAT TabSeparated"));
	strbuf_release(&sb);

	q.kind = MSCTL_CH_FLAME;
	q.limit = 0; /* flame ignores it */
	strbuf_init(&sb, MSCTL_CH_MAX_SQL);
	assert_int_equal(msctl_ch_build_sql(&q, &sb), 0);
	assert_non_null(strstr(sb.buf, "microsentinel.ms_functions FINAL"));
	assert_non_null(strstr(sb.buf, "LIMIT 40000 FORMAT"));
	strbuf_release(&sb);

	/* agent ids may hold a single quote: it is escaped */
	char *quote[] = { "it's" };
	q.hosts = quote;
	q.nhosts = 1;
	strbuf_init(&sb, MSCTL_CH_MAX_SQL);
	assert_int_equal(msctl_ch_build_sql(&q, &sb), 0);
	assert_non_null(strstr(sb.buf, "host IN ('it\\'s')"));
	strbuf_release(&sb);

	/* every check refuses before any text is built */
	struct msctl_ch_query bad[] = { q, q, q, q, q, q, q };
	bad[0].database = "x;DROP";
	bad[1].since_s = 0;
	bad[2].event = "x' OR '1";
	char *evil[] = { "a b" };
	bad[3].hosts = evil;
	bad[3].nhosts = 1;
	bad[4].kind = MSCTL_CH_FUNCTIONS;
	bad[4].limit = 0;
	bad[5].kind = MSCTL_CH_FUNCTIONS;
	bad[5].limit = MSCTL_CH_MAX_LIMIT + 1;
	bad[6].nhosts = MSCTL_CH_MAX_HOSTS + 1;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		strbuf_init(&sb, MSCTL_CH_MAX_SQL);
		if (msctl_ch_build_sql(&bad[i], &sb) != -EINVAL)
			fail_msg("bad[%zu] accepted", i);
		assert_int_equal(sb.len, 0);
		strbuf_release(&sb);
	}
}

static void tsv_ok(void **state)
{
	(void)state;
	const char t[] = "1\ta\\tb\\\\c\\n\n2\t\n";
	struct msctl_ch_rows *r = NULL;
	assert_int_equal(msctl_ch_tsv_parse(t, strlen(t), 2, 10, &r), 0);
	assert_int_equal(r->nrows, 2);
	assert_string_equal(r->cell[0], "1");
	assert_string_equal(r->cell[1], "a\tb\\c\n");
	assert_string_equal(r->cell[2], "2");
	assert_string_equal(r->cell[3], "");
	msctl_ch_rows_free(r);
	assert_int_equal(msctl_ch_tsv_parse("", 0, 3, 10, &r), 0);
	assert_int_equal(r->nrows, 0);
	msctl_ch_rows_free(r);
	assert_int_equal(msctl_ch_tsv_parse(NULL, 0, 3, 10, &r), 0);
	msctl_ch_rows_free(r);
}

static void tsv_bad(void **state)
{
	(void)state;
	struct msctl_ch_rows *r = NULL;
	const char *bad[] = { "1\t2\n3\n", "1\t2\t3\n", "1\t2", "1\t\\N\n", "1\t2\\\n", "\n" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(msctl_ch_tsv_parse(bad[i], strlen(bad[i]), 2, 10, &r), -EBADMSG);
	assert_int_equal(msctl_ch_tsv_parse("1\t\0\n", 4, 2, 10, &r), -EBADMSG);
	assert_int_equal(msctl_ch_tsv_parse("1\t2\n1\t2\n1\t2\n", 12, 2, 2, &r), -E2BIG);
	/* "\N" inside a value is an escaped N, not NULL */
	assert_int_equal(msctl_ch_tsv_parse("a\\Nb\tx\n", 7, 2, 2, &r), 0);
	assert_string_equal(r->cell[0], "aNb");
	msctl_ch_rows_free(r);
}

static struct msctl_ch_result *result(enum msctl_ch_kind k, const char *t, int want)
{
	struct msctl_ch_rows *rows = NULL;
	struct msctl_ch_result *res = NULL;
	assert_int_equal(msctl_ch_tsv_parse(t, strlen(t), k == MSCTL_CH_FLOWS ? 13 : 5, 100, &rows), 0);
	assert_int_equal(msctl_ch_result_from_rows(k, 60, &rows, &res), want);
	msctl_ch_rows_free(rows);
	return res;
}

static void results(void **state)
{
	(void)state;
	struct msctl_ch_result *r = result(MSCTL_CH_FLOWS,
					   "9479252335185204631\t14\t19\t1\t4\t6\t00000000000000000000FFFF0A010203\t"
					   "00000000000000000000ffff0a040506\t40000\t443\trx\t3\t4026531840\n"
					   "0\t5\t19\t0\t0\t0\t00000000000000000000000000000000\t"
					   "00000000000000000000000000000000\t0\t0\tnone\t0\t0\n",
					   0);
	assert_int_equal(r->n, 2);
	assert_true(r->total == 19 && r->shown == 19);
	assert_true(r->flows[0].flow_id == 0x838d1bba1b2ce497ull || r->flows[0].flow_id == 9479252335185204631ull);
	assert_true(r->flows[0].has_tuple);
	assert_int_equal(r->flows[0].saddr[15], 3);
	assert_int_equal(r->flows[0].daddr[12], 10);
	assert_int_equal(r->flows[0].dport, 443);
	assert_string_equal(r->flows[0].dir, "rx");
	assert_int_equal(r->flows[0].netns, 4026531840u);
	assert_false(r->flows[1].has_tuple);
	msctl_ch_result_free(r);

	r = result(MSCTL_CH_FUNCTIONS, "7\t13\t20\ttcp_sendmsg\t[kernel]\n8\t4\t20\t\t\n", 0);
	assert_true(r->n == 2 && r->total == 20 && r->shown == 17);
	assert_string_equal(r->funcs[0].name, "tcp_sendmsg");
	assert_string_equal(r->funcs[1].module, "");
	msctl_ch_result_free(r);

	/* a number out of range, a total that changes between rows, rows above the total */
	assert_null(result(MSCTL_CH_FUNCTIONS, "7\t-1\t20\ta\tb\n", -EBADMSG));
	assert_null(result(MSCTL_CH_FUNCTIONS, "7\t1\t20\ta\tb\n8\t1\t21\ta\tb\n", -EBADMSG));
	/* rows inserted between the total's read and the rows' read: the total becomes what is shown */
	r = result(MSCTL_CH_FUNCTIONS, "7\t30\t20\ta\tb\n", 0);
	assert_true(r && r->total == 30 && r->shown == 30);
	msctl_ch_result_free(r);
	assert_null(result(MSCTL_CH_FUNCTIONS, "18446744073709551616\t1\t20\ta\tb\n", -EBADMSG));
	assert_null(result(MSCTL_CH_FLOWS,
			   "1\t1\t1\t2\t4\t6\t00\t00\t1\t1\trx\t0\t0\n", -EBADMSG));
	assert_null(result(MSCTL_CH_FLOWS,
			   "1\t1\t1\t1\t4\t6\t0000000000000000000000000000000g\t00000000000000000000000000000000\t1\t1\t"
			   "rx\t0\t0\n", -EBADMSG));
	assert_null(result(MSCTL_CH_FLOWS,
			   "1\t1\t1\t1\t4\t6\t00000000000000000000000000000000\t00000000000000000000000000000000\t70000\t1\t"
			   "rx\t0\t0\n", -EBADMSG));
}

static void folded(void **state)
{
	(void)state;
	char out[64];
	struct msctl_ch_func f = { .func_id = 7, .name = "a;b\tc d", .module = "lib;x.so" };
	msctl_ch_folded(&f, out, sizeof(out));
	assert_string_equal(out, "lib:x.so;a:b_c d");
	f = (struct msctl_ch_func){ .func_id = 0x1f, .name = "", .module = "" };
	msctl_ch_folded(&f, out, sizeof(out));
	assert_string_equal(out, "[unknown];0x000000000000001f");
	f = (struct msctl_ch_func){ .func_id = 0, .name = "", .module = "m" };
	msctl_ch_folded(&f, out, sizeof(out));
	assert_string_equal(out, "m;[unknown]");
	f = (struct msctl_ch_func){ .func_id = 1, .name = "function", .module = "module" };
	msctl_ch_folded(&f, out, 5);
	assert_string_equal(out, "modu");
	msctl_ch_folded(&f, out, 8);
	assert_string_equal(out, "module;");
	msctl_ch_folded(&f, out, 10);
	assert_string_equal(out, "module;fu");
}

/* Random and mutated answers: the parser and the conversion must only succeed or refuse. */
static void mutations(void **state)
{
	(void)state;
	const char *seed[] = { "7\t13\t20\ttcp_sendmsg\t[kernel]\n8\t4\t20\t\\\\\\t\t\n",
			       "1\t1\t1\t1\t4\t6\t00000000000000000000FFFF0A010203\t00000000000000000000ffff0a040506\t1\t1\t"
			       "rx\t0\t0\n" };
	const char alphabet[] = "\t\n\\N0123456789abcdefx";
	char buf[256];
	srand(12345);
	for (int it = 0; it < 20000; it++) {
		int which = it & 1;
		size_t n = strlen(seed[which]);
		memcpy(buf, seed[which], n);
		for (int m = rand() % 4; m >= 0; m--) {
			size_t at = (size_t)rand() % n;
			int op = rand() % 3;
			if (op == 0)
				buf[at] = alphabet[rand() % (int)(sizeof(alphabet) - 1)];
			else if (op == 1 && n > 1)
				n = at + 1; /* cut */
			else
				buf[at] = (char)(rand() & 0xff);
		}
		struct msctl_ch_rows *rows = NULL;
		struct msctl_ch_result *res = NULL;
		size_t ncols = which ? 13 : 5;
		if (msctl_ch_tsv_parse(buf, n, ncols, 4, &rows) == 0) {
			for (size_t i = 0; i < rows->nrows * rows->ncols; i++)
				assert_true(strlen(rows->cell[i]) <= n);
			if (msctl_ch_result_from_rows(which ? MSCTL_CH_FLOWS : MSCTL_CH_FUNCTIONS, 60, &rows, &res) == 0) {
				assert_true(res->shown <= res->total);
				char out[300];
				for (size_t i = 0; !which && i < res->n; i++)
					msctl_ch_folded(&res->funcs[i], out, sizeof(out));
			}
		}
		msctl_ch_result_free(res);
		msctl_ch_rows_free(rows);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(since),   cmocka_unit_test(flow_ids), cmocka_unit_test(names),
		cmocka_unit_test(sql_string), cmocka_unit_test(build_sql), cmocka_unit_test(tsv_ok),
		cmocka_unit_test(tsv_bad), cmocka_unit_test(results),  cmocka_unit_test(folded),
		cmocka_unit_test(mutations),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
