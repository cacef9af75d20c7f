/* msctl_ch: msctl's reads of ClickHouse (`top flows|functions`, `flame`), straight over its HTTP
 * interface (chhttp): turns the operator's arguments into checked values, builds the SQL from
 * them (ids, durations and limits are numbers; database, host and event names are checked
 * against a narrow alphabet and escaped as well), runs it read-only and parses the TabSeparated
 * answer into bounded, typed results. It does not print (msctl_out does) and is not a general
 * query tool. Thread-safety: none (msctl is one thread). */
#ifndef MS_MSCTL_CH_H
#define MS_MSCTL_CH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chhttp.h"
#include "strbuf.h"

#define MSCTL_CH_MAX_LIMIT 1000              /* rows of a top table */
/* folded lines; each answer row is at most ~320 bytes, so 40,000 fit the answer bound; the
 * rest of the selection is one "[other]" line */
#define MSCTL_CH_MAX_FLAME 40000
#define MSCTL_CH_MAX_SINCE_S (366u * 86400u) /* --since: longest look-back */
#define MSCTL_CH_MAX_HOSTS 256                /* agents of one query (a --label may match many) */
#define MSCTL_CH_MAX_NAME 64                 /* database and event names, including the NUL */
#define MSCTL_CH_MAX_SQL (256u << 10)
#define MSCTL_CH_MAX_RESPONSE CHHTTP_MAX_RESPONSE /* TabSeparated answer bytes */

enum msctl_ch_kind { MSCTL_CH_FLOWS, MSCTL_CH_FUNCTIONS, MSCTL_CH_FLAME };

/* What to read. Every field is checked by msctl_ch_build_sql. */
struct msctl_ch_query {
	enum msctl_ch_kind kind;
	const char *database;      /* msctl_ch_valid_name */
	uint64_t since_s;          /* windows that started in the last since_s seconds; 1..MAX_SINCE_S */
	uint32_t limit;            /* 1..MSCTL_CH_MAX_LIMIT (flame: ignored, MSCTL_CH_MAX_FLAME) */
	bool has_flow;             /* only this flow (0 = the unattributed samples) */
	uint64_t flow_id;
	const char *event;         /* NULL = every event; else msctl_ch_valid_name */
	char *const *hosts;        /* agent ids (wire_valid_agent_id); none = every host */
	size_t nhosts;             /* <= MSCTL_CH_MAX_HOSTS */
};

/* --since: digits with s, m, h or d ("30s", "10m", "2h", "1d"); 1 s .. MSCTL_CH_MAX_SINCE_S.
 * Returns 0 or -EINVAL (syntax), -ERANGE (0 or too long). */
int msctl_ch_parse_since(const char *s, uint64_t *ret_s);

/* A flow id as the product prints it: "0x" + hex, or exactly 16 hex digits (the agent's and
 * msctl's "%016x"), or any other run of hex digits containing a-f; otherwise decimal (what
 * ClickHouse prints). Returns 0 or -EINVAL (syntax), -ERANGE (over 64 bits). */
int msctl_ch_parse_flow(const char *s, uint64_t *ret_id);

/* A database or event name: 1..63 bytes of [A-Za-z0-9_], '.', ':' or '-' (events: "cpu-clock",
 * "mem_load:l3_miss"); a database must also start with a letter or '_' and have neither ':' nor
 * '-' nor '.'. */
bool msctl_ch_valid_name(const char *s, bool database);

/* Appends s as a single-quoted ClickHouse string literal ('\\' and '\'' escaped, control bytes
 * as \xHH). Returns 0 or the strbuf's sticky error. */
int msctl_ch_sql_string(struct strbuf *sb, const char *s);

/* 0 when every field of q passes its check (limit, since, names, hosts), else -EINVAL. */
int msctl_ch_check(const struct msctl_ch_query *q);

/* The one query of q: a TabSeparated answer whose rows are
 *   flows:           flow_id samples total has_tuple family proto hex(saddr) hex(daddr) sport
 *                    dport direction ifindex netns
 *   functions/flame: func_id samples total name module
 * ordered by samples (descending), then id. Flame rows are per (module, name) (func_id: one of
 * them; an unnamed function is named "0x<hex id>", function 0 "[unknown]"). total is Σ samples of the whole selection (also the
 * rows not shown). Returns 0, -EINVAL (a field of q fails its check) or -ENOSPC. */
int msctl_ch_build_sql(const struct msctl_ch_query *q, struct strbuf *sb);

/* TabSeparated rows, unescaped, NUL-terminated fields of a private copy of the text. */
struct msctl_ch_rows {
	size_t nrows, ncols;
	char **cell;               /* nrows * ncols */
	char *text;
};

/* Parses text[0..len) as rows of exactly ncols fields, each row ended by '\n' (a missing final
 * newline means a cut answer). Returns 0, -EBADMSG (a row with another number of fields, a
 * missing final newline, "\N" NULL, a NUL byte), -E2BIG (more than max_rows rows) or -ENOMEM.
 * Cost: two passes over the text; memory: the text plus one pointer per field. */
int msctl_ch_tsv_parse(const char *text, size_t len, size_t ncols, size_t max_rows,
		       struct msctl_ch_rows **ret);
struct msctl_ch_rows *msctl_ch_rows_free(struct msctl_ch_rows *r);

/* One row of a top flows answer. */
struct msctl_ch_flow {
	uint64_t flow_id, samples;
	bool has_tuple;            /* false: no ms_flows row with a tuple (or the unattributed flow) */
	uint8_t family, proto;
	uint8_t saddr[16], daddr[16];  /* IPv4 mapped into IPv6, network byte order */
	uint16_t sport, dport;
	char dir[8];               /* "none", "rx", "tx" */
	uint32_t ifindex, netns;
};

/* One row of a top functions or flame answer; name and module point into the result ("" when
 * the function has no ms_functions row). */
struct msctl_ch_func {
	uint64_t func_id, samples;
	const char *name, *module;
};

struct msctl_ch_result {
	enum msctl_ch_kind kind;
	uint64_t since_s;
	uint64_t total;            /* Σ samples of the selection */
	uint64_t shown;            /* Σ samples of the rows below */
	size_t n;
	struct msctl_ch_flow *flows;   /* kind FLOWS */
	struct msctl_ch_func *funcs;   /* kind FUNCTIONS, FLAME */
	struct msctl_ch_rows *rows;    /* owns the strings */
};

/* Converts a parsed answer of msctl_ch_build_sql's shape. -EBADMSG when a field is not what the
 * query makes (a number out of range, a short address...), -ENOMEM. */
int msctl_ch_result_from_rows(enum msctl_ch_kind kind, uint64_t since_s, struct msctl_ch_rows **rows,
			      struct msctl_ch_result **ret);
struct msctl_ch_result *msctl_ch_result_free(struct msctl_ch_result *r);

/* A ClickHouse connection for msctl: url "http://host:port" (or https), user NULL = the server's
 * default, the password read from password_file (NULL = none) by chhttp_read_password_file (the
 * file must not be readable or writable by others: -EPERM). Returns 0, -EINVAL (bad url),
 * -ENAMETOOLONG, -ENOMEM, or the file's -errno. */
int msctl_ch_open(const char *url, const char *user, const char *password_file, uint32_t timeout_ms,
		  struct chhttp **ret);

/* Builds, runs (read-only, max_execution_time from timeout_ms) and converts q. Returns 0 (n may
 * be 0), chhttp_query's errors (transport: -ECONNREFUSED, -ETIMEDOUT...; -EACCES; -ENOENT;
 * -EREMOTEIO, with h's last error telling more), or the errors above. */
int msctl_ch_run(struct chhttp *h, const struct msctl_ch_query *q, uint32_t timeout_ms,
		 struct msctl_ch_result **ret);

/* A short text for msctl_ch_run's error r ("database or table not found" for -ENOENT...). */
const char *msctl_ch_strerror(int r);

/* Writes a function's folded-stack frame text into out: "module;name" with ';' replaced by ':'
 * and control bytes by '_' (flamegraph tools split on ';' and read the count after the last
 * space); "[unknown]" for an empty part, "0x<id>" for an unnamed function. */
void msctl_ch_folded(const struct msctl_ch_func *f, char *out, size_t cap);

#endif
