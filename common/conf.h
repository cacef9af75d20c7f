/* conf: table-driven configuration engine shared by the agent, the coordinator and msctl:
 * a `key=value` file plus command-line flags (`--key-name=VALUE`, underscores as dashes), where
 * the command line wins. A program describes its keys once in a `struct conf_key` table that
 * stores parsed values straight into its own config struct (by offset); the engine does
 * defaults, parsing, range/syntax validation, error messages that name the file, the line and
 * the key, and `--help`. It is not a general option parser: positional arguments are returned
 * to the caller untouched.
 * Thread-safety: none needed; it runs once at start-up (and in the API on a private copy). */
#ifndef MS_CONF_H
#define MS_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Bounds on untrusted input. A file larger than CONF_MAX_FILE is refused (-EFBIG) rather than
 * read partially; a line longer than CONF_MAX_LINE bytes (newline excluded) is an error. Key
 * names are at most CONF_NAME_MAX bytes so every flag and message fits a fixed buffer. */
#define CONF_MAX_FILE (1u << 20)
#define CONF_MAX_LINE 4096
#define CONF_NAME_MAX 64

enum conf_type {
	CONF_BOOL,     /* bool: true|false|1|0|yes|no|on|off; flags --key / --no-key / --key=V */
	CONF_INT,      /* int64_t within [min, max] */
	CONF_UINT64,   /* uint64_t within [min, max] (min/max read as uint64) */
	CONF_DOUBLE,   /* double; finite */
	CONF_STRING,   /* char[str_size]; longer values are an error, never truncated */
	CONF_ENUM,     /* int: the value of the matching choice */
	CONF_PORT,     /* uint16_t 0..65535 (0 allowed only when min is 0) */
	CONF_HOST,     /* char[str_size]: IPv4 literal, IPv6 literal (optionally [..]) or RFC 1123 hostname */
	CONF_DURATION, /* uint64_t milliseconds: "500", "500ms", "10s", "5m", "1h" */
};

struct conf_choice {
	const char *name;
	int value;
};

struct conf_key {
	const char *name;      /* snake_case; its flag is --name-with-dashes */
	enum conf_type type;
	size_t offset;         /* of the field in the caller's config struct */
	size_t str_size;       /* CONF_STRING / CONF_HOST: sizeof the char array */
	const char *def;       /* default as text (parsed like any value); NULL = zero/empty */
	int64_t min, max;      /* CONF_INT/UINT64/PORT bounds when min != max; else unbounded.
	                        * CONF_DURATION: bounds in ms (read as uint64) when min != max. */
	const struct conf_choice *choices; /* CONF_ENUM: terminated by {NULL, 0} */
	const char *help;      /* one line for --help */
};

struct conf_schema {
	const char *prog;      /* program name for --help */
	const char *summary;   /* one paragraph for --help */
	const struct conf_key *keys;
	size_t nkeys;
};

/* Human-readable reason of the first error, e.g.
 * "agent.conf:12: key 'metrics_port': 70000 is out of range 0..65535". */
struct conf_error {
	char msg[512];
};

/* Results of conf_parse_args beyond the config values. */
struct conf_args {
	const char *config_path; /* --config=PATH if given, else NULL (points into argv) */
	bool help;               /* --help or -h was given */
	bool version;            /* --version was given */
	int npositional;         /* arguments not starting with "--", in order */
	char **positional;       /* points into argv (caller's storage); NULL when npositional 0 */
};

/* Fills every key with its default. Returns 0 or -EINVAL (a bad default is a programmer error
 * and the message says which key). It also checks the schema itself (snake_case names of at
 * most CONF_NAME_MAX bytes, no duplicates, none of the reserved config/help/version, sizes and
 * choices present, min <= max), so a program that calls it first learns of schema bugs at once.
 * Every function below takes err == NULL (no message) and writes cfg fields only with values
 * that passed validation; after an error, keys set earlier in the same call keep their values. */
int conf_defaults(const struct conf_schema *s, void *cfg, struct conf_error *err);

/* Sets one key from text; origin ("agent.conf:12" or "--metrics-port") prefixes the error. */
int conf_set(const struct conf_schema *s, void *cfg, const char *key, const char *value,
	     const char *origin, struct conf_error *err);

/* Loads a key=value file: '#' starts a comment line, blank lines are skipped, whitespace
 * around key and value is trimmed, values may be double-quoted. Unknown keys, a line without
 * '=', a repeated key and bad values are errors naming the line. -ENOENT etc. for I/O errors.
 * Details: the key ends at the first '=', so values may contain '=' (and '#': comments are whole
 * lines only); a quoted value knows only the escapes \" and \\ and nothing may follow its closing
 * quote; CRLF line ends and a UTF-8 byte-order mark are accepted; a NUL byte is an error.
 * Errors: -EINVAL (content), -EFBIG (over CONF_MAX_FILE), -ENOMEM, or the I/O errno. */
int conf_load_file(const struct conf_schema *s, void *cfg, const char *path,
		   struct conf_error *err);

/* Parses a buffer with the same rules as conf_load_file; name is used in messages. buf need
 * not be NUL-terminated. */
int conf_load_buffer(const struct conf_schema *s, void *cfg, const char *name,
		     const char *buf, size_t len, struct conf_error *err);

/* Applies command-line flags to cfg. Recognises --config=PATH (also "--config PATH"), --help,
 * -h, --version; every key as --key-name=VALUE or "--key-name VALUE"; bools also as --key-name
 * and --no-key-name. Unknown flags are errors. Call it twice in the usual sequence:
 *   conf_defaults → conf_parse_args(pass to find --config; values applied)
 *   → conf_load_file → conf_parse_args again (so the command line wins).
 * argv[0] is the program name and is skipped. A non-bool flag without "=" takes the next
 * argument as its value whatever it looks like; a bool never does. A repeated flag: the last one
 * wins. "--" ends the flags. ret_args is written only on success (it may be NULL); on success
 * argv is also reordered, stably, so that flags (with their values, and "--") come first and
 * the positional arguments last, which is how ret_args->positional can point into argv; the
 * reordered argv parses to the same result, so the second call sees the same thing.
 * Errors: -EINVAL (unknown flag, missing or bad value), -ENOMEM. */
int conf_parse_args(const struct conf_schema *s, void *cfg, int argc, char **argv,
		    struct conf_args *ret_args, struct conf_error *err);

/* Prints usage: summary, then every key as flag, type, default and help. */
void conf_print_help(const struct conf_schema *s, FILE *out);

/* Finds a key by snake_case name or dashed flag name (without "--"); NULL if none. */
const struct conf_key *conf_find(const struct conf_schema *s, const char *name);

/* Validators reused by modules that parse addresses themselves.
 * conf_valid_host: IPv4 dotted quad, IPv6 literal with or without [brackets], or an RFC 1123
 * host name (labels of 1..63 [A-Za-z0-9-] not starting or ending with '-', at most 253 bytes,
 * no trailing dot). A name whose last label is numeric ("10.1", "1.2.3", "0x7f") is refused:
 * resolvers read such names as IPv4 shorthand, i.e. as a different address than it appears.
 * conf_parse_duration_ms: digits then "" or "ms" (milliseconds), "s", "m" or "h"; no sign, no
 * spaces, no fractions. Returns 0, -EINVAL (syntax) or -ERANGE (does not fit 64 bits). */
bool conf_valid_host(const char *s);
int conf_parse_duration_ms(const char *s, uint64_t *ret_ms);

#define CONF_FIELD(type, field) offsetof(type, field)
#define CONF_STR_FIELD(type, field) offsetof(type, field), sizeof(((type *)0)->field)

#endif
