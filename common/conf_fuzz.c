/* conf_fuzz: the input as a config file (conf_load_buffer), then its lines as argv
 * (conf_parse_args) and each line through the exported validators, against a schema that covers
 * every type. Besides "never crashes" it checks what the contract promises: a result of 0 or a
 * negative errno, a NUL-terminated message on error, string fields terminated within their size,
 * bounded values inside their bounds, and positional arguments pointing into argv. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Lines beyond this are not passed as argv: the interesting cases need only a few. */
#define FUZZ_MAX_ARGS 64

struct fcfg {
	bool flag;
	int64_t num;
	int64_t any;
	uint64_t big;
	double ratio;
	char text[8];
	int mode;
	uint16_t port;
	uint16_t port_hi;
	char host[32];
	uint64_t wait_ms;
	uint64_t span_ms;
};

static const struct conf_choice f_modes[] = { { "a", 1 }, { "bb", 2 }, { NULL, 0 } };

#define K(n, t) .name = #n, .type = t, .offset = offsetof(struct fcfg, n)
static const struct conf_key f_keys[] = {
	{ K(flag, CONF_BOOL) },
	{ K(num, CONF_INT), .def = "1", .min = -3, .max = 3 },
	{ K(any, CONF_INT) },
	{ K(big, CONF_UINT64), .def = "5", .min = 5, .max = -2 },
	{ K(ratio, CONF_DOUBLE), .def = "1.5" },
	{ K(text, CONF_STRING), .str_size = 8, .def = "x" },
	{ K(mode, CONF_ENUM), .def = "bb", .choices = f_modes },
	{ K(port, CONF_PORT), .def = "80" },
	{ K(port_hi, CONF_PORT), .def = "1024", .min = 1024, .max = 2048 },
	{ K(host, CONF_HOST), .str_size = 32 },
	{ K(wait_ms, CONF_DURATION), .def = "1m" },
	{ K(span_ms, CONF_DURATION), .def = "100", .min = 10, .max = 1000 },
};

static const struct conf_schema f_schema = {
	.prog = "fuzz", .keys = f_keys, .nkeys = sizeof(f_keys) / sizeof(f_keys[0]),
};

static void check(int r, const struct fcfg *c, const struct conf_error *err)
{
	if (r > 0 || (r < 0 && !memchr(err->msg, '\0', sizeof(err->msg))))
		abort();
	if (!memchr(c->text, '\0', sizeof(c->text)) || !memchr(c->host, '\0', sizeof(c->host)))
		abort();
	if (c->num < -3 || c->num > 3 || c->big < 5 || c->port_hi < 1024 || c->port_hi > 2048)
		abort();
	if (c->span_ms < 10 || c->span_ms > 1000 || (c->mode != 1 && c->mode != 2))
		abort();
	if (c->host[0] && !conf_valid_host(c->host))
		abort();
}

static void run_args(struct fcfg *c, char *text, size_t len)
{
	char *argv[FUZZ_MAX_ARGS + 1] = { "fuzz" }, *copy[FUZZ_MAX_ARGS + 1];
	struct conf_error err;
	struct conf_args a;
	int argc = 1;
	uint64_t ms;
	for (char *p = text; p < text + len && argc < FUZZ_MAX_ARGS;) {
		char *nl = memchr(p, '\n', (size_t)(text + len - p));
		if (nl)
			*nl = '\0';
		argv[argc++] = p;
		(void)conf_valid_host(p);
		(void)conf_parse_duration_ms(p, &ms);
		p = nl ? nl + 1 : text + len;
	}
	argv[argc] = NULL;
	memcpy(copy, argv, sizeof(argv));
	int r = conf_parse_args(&f_schema, c, argc, argv, &a, &err);
	check(r, c, &err);
	if (r == 0 && a.npositional && a.positional != argv + argc - a.npositional)
		abort();
	if (r < 0 && memcmp(copy, argv, sizeof(argv)))
		abort(); /* argv is reordered only on success */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fcfg c;
	struct conf_error err;
	memset(&c, 0, sizeof(c));
	if (conf_defaults(&f_schema, &c, &err) != 0)
		abort();
	int r = conf_load_buffer(&f_schema, &c, "fuzz.conf", (const char *)data, size, &err);
	check(r, &c, &err);
	/* As argv: NUL bytes cut arguments short, which is what a real argv would do. */
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	run_args(&c, text, size);
	free(text);
	return 0;
}
