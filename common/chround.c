/* chround: see chround.h. */
#include "chround.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int chround_prepare(struct chround *r, uint32_t ntables, uint32_t parallel)
{
	if (r->chunks)
		return 0;
	size_t total = 0;
	uint32_t tables = 0;
	for (uint32_t t = 0; t < ntables; t++) {
		total += r->rows[t] ? r->nunits : 0;
		tables += r->rows[t] != 0;
	}
	r->chunks = malloc((total ? total : 1) * sizeof(*r->chunks));
	uint64_t *crows = malloc((total ? total : 1) * sizeof(*crows));
	if (!r->chunks || !crows) {
		free(crows);
		free(r->chunks);
		r->chunks = NULL;
		return -ENOMEM;
	}
	size_t k = 0;
	r->nsecs = 0;
	for (uint32_t t = 0; t < ntables; t++) {
		if (!r->rows[t])
			continue;
		tables--;
		size_t first = k;
		uint64_t bytes = 0;
		for (const struct chwriter_unit *u = r->head; u; u = u->next)
			if (u->data[t].len) {
				crows[k] = u->rows[t];
				bytes += u->data[t].len;
				r->chunks[k++] = (struct chhttp_chunk){ u->data[t].buf, u->data[t].len };
			}
		uint64_t parts = bytes >= CHWRITER_SPLIT_BYTES && parallel > 1 ? parallel : 1;
		if (parts > k - first)
			parts = k - first;
		if (parts > CHBATCH_MAX_SECTIONS - r->nsecs - tables)
			parts = CHBATCH_MAX_SECTIONS - r->nsecs - tables;
		uint64_t acc = 0;
		size_t c = first;
		for (uint64_t p = 0; p < parts; p++) {
			struct chsend_section *x = &r->secs[r->nsecs++];
			memset(x, 0, sizeof(*x));
			x->table = t;
			x->chunks = r->chunks + c;
			/* the last part takes the rest; the others stop once past their share */
			while (c < k && (p == parts - 1 || acc < bytes * (p + 1) / parts)) {
				acc += r->chunks[c].len;
				x->rows += crows[c];
				c++;
			}
			x->nchunks = (size_t)(r->chunks + c - x->chunks);
		}
	}
	free(crows);
	return 0;
}

static uint64_t section_bytes(const struct chsend_section *x)
{
	uint64_t n = 0;
	for (size_t i = 0; i < x->nchunks; i++)
		n += x->chunks[i].len;
	return n;
}

uint32_t chround_hold_small(struct chround *r, uint64_t big_rows)
{
	uint32_t small = 0, big = 0;
	for (uint32_t i = 0; i < r->nsecs; i++) {
		struct chsend_section *x = &r->secs[i];
		if (x->done || !x->rows)
			continue;
		x->hold = x->rows < big_rows && section_bytes(x) < CHWRITER_SPLIT_BYTES;
		small += x->hold;
		big += !x->hold;
	}
	if (small && big)
		return small;
	chround_release_hold(r);
	return 0;
}

void chround_release_hold(struct chround *r)
{
	for (uint32_t i = 0; i < r->nsecs; i++)
		r->secs[i].hold = false;
}

bool chround_spooled(const struct chround *r)
{
	for (uint32_t i = 0; i < r->nsecs; i++)
		if (r->secs[i].spooled)
			return true;
	return false;
}

uint64_t chround_pending_rows(const struct chround *r)
{
	uint64_t n = 0;
	for (uint32_t i = 0; i < r->nsecs; i++)
		n += r->secs[i].done ? 0 : r->secs[i].rows;
	return n;
}

int chround_merge(const struct chround *list, uint32_t ntables, struct chround_merge *m)
{
	memset(m, 0, sizeof(*m));
	size_t total = 0;
	for (const struct chround *r = list; r; r = r->next)
		for (uint32_t i = 0; i < r->nsecs; i++)
			total += r->secs[i].done ? 0 : r->secs[i].nchunks;
	m->chunks = malloc((total ? total : 1) * sizeof(*m->chunks));
	if (!m->chunks)
		return -ENOMEM;
	size_t k = 0;
	for (uint32_t t = 0; t < ntables; t++) {
		struct chsend_section *x = &m->secs[m->nsecs];
		memset(x, 0, sizeof(*x));
		x->table = t;
		x->chunks = m->chunks + k;
		for (const struct chround *r = list; r; r = r->next)
			for (uint32_t i = 0; i < r->nsecs; i++) {
				const struct chsend_section *s = &r->secs[i];
				if (s->done || s->table != t)
					continue;
				memcpy(m->chunks + k, s->chunks, s->nchunks * sizeof(*s->chunks));
				k += s->nchunks;
				x->rows += s->rows;
			}
		x->nchunks = (size_t)(m->chunks + k - x->chunks);
		if (x->rows)
			m->nsecs++;
	}
	return 0;
}

bool chround_merge_spooled(const struct chround_merge *m)
{
	for (uint32_t i = 0; i < m->nsecs; i++)
		if (m->secs[i].spooled)
			return true;
	return false;
}

void chround_merge_release(struct chround_merge *m)
{
	free(m->chunks);
	memset(m, 0, sizeof(*m));
}
