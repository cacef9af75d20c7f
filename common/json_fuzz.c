/* json_fuzz: parses arbitrary bytes with tight limits; whatever parses is written back with
 * jsonw, which must succeed, parse again to an equal document, and write back byte-identically
 * (the writer's output is canonical). Any violation aborts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "jsonw.h"

static int same(const struct json_value *a, const struct json_value *b)
{
	if (json_type(a) != json_type(b))
		return 0;
	const char *sa, *sb, *ka, *kb;
	size_t na, nb, kla, klb;
	bool ba, bb;
	switch (json_type(a)) {
	case JSON_BOOL:
		json_get_bool(a, &ba);
		json_get_bool(b, &bb);
		return ba == bb;
	case JSON_NUMBER:
		json_get_number_text(a, &sa, &na);
		json_get_number_text(b, &sb, &nb);
		return na == nb && memcmp(sa, sb, na) == 0;
	case JSON_STRING:
		json_get_string(a, &sa, &na);
		json_get_string(b, &sb, &nb);
		return na == nb && memcmp(sa, sb, na) == 0;
	case JSON_ARRAY:
		if (json_len(a) != json_len(b))
			return 0;
		for (size_t i = 0; i < json_len(a); i++)
			if (!same(json_arr_at(a, i), json_arr_at(b, i)))
				return 0;
		return 1;
	case JSON_OBJECT:
		if (json_len(a) != json_len(b))
			return 0;
		for (size_t i = 0; i < json_len(a); i++) {
			const struct json_value *va = json_obj_at(a, i, &ka, &kla);
			const struct json_value *vb = json_obj_at(b, i, &kb, &klb);
			if (kla != klb || memcmp(ka, kb, kla) != 0 || !same(va, vb))
				return 0;
		}
		return 1;
	default:
		return 1;
	}
}

/* Exercises the getters on every scalar; they must not crash whatever the text. */
static void touch(const struct json_value *v)
{
	int64_t i;
	uint64_t u;
	double d;
	for (size_t k = 0; k < json_len(v); k++) {
		touch(json_arr_at(v, k));
		touch(json_obj_at(v, k, NULL, NULL));
	}
	json_get_i64(v, &i);
	json_get_u64(v, &u);
	json_get_double(v, &d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct json_limits lim = {
		.max_input = 1 << 20, .max_depth = 64, .max_nodes = 20000, .max_string = 1 << 16,
	};
	struct json_doc *doc = NULL, *doc2 = NULL;
	struct json_error err;
	if (json_parse((const char *)data, size, &lim, &doc, &err) < 0)
		return 0;
	touch(json_doc_root(doc));
	static const char *const allowed[] = { "mode", "ttl_s", NULL };
	json_obj_only_keys(json_doc_root(doc), allowed, &err);

	/* Worst-case growth is 6x (DEL written as \u007f). */
	struct jsonw *w = NULL, *w2 = NULL;
	if (jsonw_new(size * 6 + 16, &w) < 0 || jsonw_new(size * 6 + 16, &w2) < 0)
		abort();
	const char *out, *out2;
	size_t n, n2;
	if (jsonw_value(w, json_doc_root(doc)) < 0 || jsonw_result(w, &out, &n) < 0)
		abort();
	struct json_limits lim2 = lim;
	lim2.max_input = n + 1;
	if (json_parse(out, n, &lim2, &doc2, &err) < 0)
		abort();
	if (!same(json_doc_root(doc), json_doc_root(doc2)))
		abort();
	if (jsonw_value(w2, json_doc_root(doc2)) < 0 || jsonw_result(w2, &out2, &n2) < 0)
		abort();
	if (n != n2 || memcmp(out, out2, n) != 0)
		abort();
	jsonw_free(w2);
	jsonw_free(w);
	json_doc_free(doc2);
	json_doc_free(doc);
	return 0;
}
