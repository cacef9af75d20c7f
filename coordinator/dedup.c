/* dedup: see dedup.h. */
#include "dedup.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "wire.h"

#define LINE_MAX_BYTES (1u << 20)

struct ag {
	char id[WIRE_ID_MAX];
	uint64_t hwm, max_seq;
	uint64_t *above;   /* sorted, > hwm */
	uint32_t nabove, cap;
	uint64_t pending[DEDUP_MAX_PENDING];
	uint32_t npending;
};

struct dedup {
	struct dedup_opts o;
	pthread_mutex_t mu;
	int fd;            /* journal, O_APPEND */
	uint64_t journal_bytes;
	struct ag *ags;
	uint32_t nags, ags_cap;
	uint32_t *slots;   /* open addressing: agent index + 1, 0 = empty */
	uint32_t mask;
};

static uint64_t str_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ULL;
	return h;
}

static struct ag *find(struct dedup *d, const char *id, bool create)
{
	uint32_t p = (uint32_t)str_hash(id) & d->mask;
	while (d->slots[p]) {
		struct ag *a = &d->ags[d->slots[p] - 1];
		if (strcmp(a->id, id) == 0)
			return a;
		p = (p + 1) & d->mask;
	}
	if (!create || d->nags >= d->o.max_agents || !wire_valid_agent_id(id))
		return NULL;
	if (d->nags == d->ags_cap) {
		uint32_t cap = d->ags_cap ? d->ags_cap * 2 : 64;
		struct ag *n = realloc(d->ags, (size_t)cap * sizeof(*n));
		if (!n)
			return NULL;
		d->ags = n;
		d->ags_cap = cap;
	}
	struct ag *a = &d->ags[d->nags];
	memset(a, 0, sizeof(*a));
	snprintf(a->id, sizeof(a->id), "%s", id);
	d->slots[p] = ++d->nags;
	return a;
}

/* Position of seq in the sorted set, or where it would go. */
static uint32_t above_pos(const struct ag *a, uint64_t seq)
{
	uint32_t lo = 0, hi = a->nabove;
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		if (a->above[mid] < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static bool seen(const struct ag *a, uint64_t seq)
{
	if (seq <= a->hwm)
		return true;
	uint32_t p = above_pos(a, seq);
	return p < a->nabove && a->above[p] == seq;
}

/* Drops set entries at or below the high-water mark and folds in the contiguous ones. */
static void settle(struct ag *a)
{
	uint32_t k = 0;
	while (k < a->nabove && a->above[k] <= a->hwm + 1) {
		if (a->above[k] == a->hwm + 1)
			a->hwm++;
		k++;
	}
	if (k) {
		memmove(a->above, a->above + k, (size_t)(a->nabove - k) * sizeof(*a->above));
		a->nabove -= k;
	}
}

static int mark(struct dedup *d, struct ag *a, uint64_t seq)
{
	if (seq > a->max_seq)
		a->max_seq = seq;
	if (seen(a, seq))
		return 0;
	if (seq == a->hwm + 1) {
		a->hwm = seq;
		settle(a);
		return 0;
	}
	if (a->nabove >= d->o.max_above)
		return -ENOSPC;
	if (a->nabove == a->cap) {
		uint32_t cap = a->cap ? a->cap * 2 : 16;
		if (cap > d->o.max_above)
			cap = d->o.max_above;
		uint64_t *n = realloc(a->above, (size_t)cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		a->above = n;
		a->cap = cap;
	}
	uint32_t p = above_pos(a, seq);
	memmove(a->above + p + 1, a->above + p, (size_t)(a->nabove - p) * sizeof(*a->above));
	a->above[p] = seq;
	a->nabove++;
	return 0;
}

static void raise_low(struct ag *a, uint64_t low)
{
	if (low && low - 1 > a->hwm) {
		a->hwm = low - 1;
		settle(a);
	}
}

static int journal_write(struct dedup *d, const char *line, size_t len)
{
	ssize_t n = write(d->fd, line, len);
	if (n != (ssize_t)len) {
		int r = n < 0 ? -errno : -EIO;
		if (n > 0 && ftruncate(d->fd, (off_t)d->journal_bytes) < 0)
			r = -errno; /* a partial line would be cut at the next open anyway */
		return r;
	}
	d->journal_bytes += (uint64_t)len;
	if (d->o.fsync && fdatasync(d->fd) < 0)
		return -errno;
	return 0;
}

/* ------------------------------------------------------------------ recovery */

/* Applies one journal or snapshot line; -EINVAL for a line that does not parse. */
static int apply_line(struct dedup *d, const char *s, size_t len, struct dedup_recovery *rec)
{
	struct json_doc *doc;
	struct json_limits lim = { .max_input = LINE_MAX_BYTES, .max_nodes = 4 * DEDUP_DEFAULT_MAX_ABOVE + 64 };
	if (json_parse(s, len, &lim, &doc, NULL) < 0)
		return -EINVAL;
	const struct json_value *root = json_doc_root(doc);
	const char *id;
	uint64_t seq, low, hwm, max;
	int r = -EINVAL;
	struct ag *a = NULL;
	if (json_get_string(json_obj_get(root, "agent"), &id, NULL) == 0)
		a = find(d, id, true);
	if (!a)
		goto out;
	if (json_get_u64(json_obj_get(root, "seq"), &seq) == 0) {
		r = mark(d, a, seq);
		rec->accepts++;
	} else if (json_get_u64(json_obj_get(root, "low"), &low) == 0) {
		raise_low(a, low);
		rec->lows++;
		r = 0;
	} else if (json_get_u64(json_obj_get(root, "hwm"), &hwm) == 0 &&
		   json_get_u64(json_obj_get(root, "max"), &max) == 0) {
		const struct json_value *arr = json_obj_get(root, "above");
		raise_low(a, hwm + 1);
		if (max > a->max_seq)
			a->max_seq = max;
		r = 0;
		for (size_t i = 0; i < json_len(arr) && r == 0; i++)
			if ((r = json_get_u64(json_arr_at(arr, i), &seq)) == 0)
				r = mark(d, a, seq);
	}
out:
	json_doc_free(doc);
	return r;
}

/* Replays a file of lines. With torn_ok, an unterminated last line is cut (journal). */
static int replay(struct dedup *d, const char *path, bool is_journal, struct dedup_recovery *rec)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return -errno;
	}
	size_t size = (size_t)st.st_size;
	char *buf = malloc(size + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	size_t got = 0;
	while (got < size) {
		ssize_t n = pread(fd, buf + got, size - got, (off_t)got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	size_t off = 0;
	while (off < got) {
		char *nl = memchr(buf + off, '\n', got - off);
		if (!nl)
			break;
		size_t len = (size_t)(nl - (buf + off));
		if (len && apply_line(d, buf + off, len, rec) < 0)
			rec->bad_lines++;
		off += len + 1;
	}
	if (is_journal && off < got) {
		rec->torn_bytes += got - off;
		if (ftruncate(fd, (off_t)off) < 0) {
			free(buf);
			close(fd);
			return -errno;
		}
	}
	if (is_journal)
		d->journal_bytes = off;
	free(buf);
	close(fd);
	return 0;
}

int dedup_open(const struct dedup_opts *opts, struct dedup **ret, struct dedup_recovery *ret_rec)
{
	if (!opts || !opts->journal_path || (!opts->keep_journal && !opts->snapshot_path))
		return -EINVAL;
	struct dedup *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->o = *opts;
	d->fd = -1;
	d->o.max_agents = d->o.max_agents ? d->o.max_agents : DEDUP_DEFAULT_MAX_AGENTS;
	d->o.max_above = d->o.max_above ? d->o.max_above : DEDUP_DEFAULT_MAX_ABOVE;
	d->o.compact_bytes = d->o.compact_bytes ? d->o.compact_bytes : DEDUP_DEFAULT_COMPACT_BYTES;
	pthread_mutex_init(&d->mu, NULL);
	uint32_t cap = 16;
	while (cap < 2 * (uint64_t)d->o.max_agents)
		cap <<= 1;
	d->slots = calloc(cap, sizeof(*d->slots));
	d->mask = cap - 1;
	struct dedup_recovery rec = { 0 };
	int r = d->slots ? 0 : -ENOMEM;
	if (r == 0 && !d->o.keep_journal)
		r = replay(d, d->o.snapshot_path, false, &rec);
	if (r == 0)
		r = replay(d, d->o.journal_path, true, &rec);
	if (r == 0) {
		d->fd = open(d->o.journal_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (d->fd < 0)
			r = -errno;
	}
	if (r < 0) {
		dedup_free(d);
		return r;
	}
	rec.agents = d->nags;
	if (ret_rec)
		*ret_rec = rec;
	*ret = d;
	return 0;
}

struct dedup *dedup_free(struct dedup *d)
{
	if (!d)
		return NULL;
	if (d->fd >= 0)
		close(d->fd);
	for (uint32_t i = 0; i < d->nags; i++)
		free(d->ags[i].above);
	free(d->ags);
	free(d->slots);
	pthread_mutex_destroy(&d->mu);
	free(d);
	return NULL;
}

/* ------------------------------------------------------------------ compaction */

static int compact(struct dedup *d)
{
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.tmp", d->o.snapshot_path);
	FILE *f = fopen(tmp, "we");
	if (!f)
		return -errno;
	for (uint32_t i = 0; i < d->nags; i++) {
		const struct ag *a = &d->ags[i];
		fprintf(f, "{\"agent\":\"%s\",\"hwm\":%" PRIu64 ",\"max\":%" PRIu64 ",\"above\":[", a->id, a->hwm,
			a->max_seq);
		for (uint32_t k = 0; k < a->nabove; k++)
			fprintf(f, "%s%" PRIu64, k ? "," : "", a->above[k]);
		fputs("]}\n", f);
	}
	int r = 0;
	if (fflush(f) != 0 || fsync(fileno(f)) < 0)
		r = -errno;
	if (fclose(f) != 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, d->o.snapshot_path) < 0)
		r = -errno;
	if (r < 0) {
		unlink(tmp);
		return r;
	}
	/* a crash before this truncate replays the old journal over the snapshot: idempotent */
	if (ftruncate(d->fd, 0) < 0)
		return -errno;
	d->journal_bytes = 0;
	return 0;
}

/* ------------------------------------------------------------------ API */

int dedup_begin(struct dedup *d, const char *agent, uint64_t seq)
{
	pthread_mutex_lock(&d->mu);
	int r;
	struct ag *a = find(d, agent, true);
	if (!a) {
		r = -ENOSPC;
	} else if (seen(a, seq)) {
		r = DEDUP_DUPLICATE;
	} else {
		r = DEDUP_NEW;
		for (uint32_t i = 0; i < a->npending; i++)
			if (a->pending[i] == seq)
				r = DEDUP_BUSY;
		if (r == DEDUP_NEW && (a->npending == DEDUP_MAX_PENDING ||
				       (a->nabove + a->npending >= d->o.max_above && seq != a->hwm + 1)))
			r = -ENOSPC;
		if (r == DEDUP_NEW)
			a->pending[a->npending++] = seq;
	}
	pthread_mutex_unlock(&d->mu);
	return r;
}

static void unpend(struct ag *a, uint64_t seq)
{
	for (uint32_t i = 0; i < a->npending; i++)
		if (a->pending[i] == seq) {
			a->pending[i] = a->pending[--a->npending];
			return;
		}
}

int dedup_commit(struct dedup *d, const char *agent, uint64_t seq, uint64_t samples, uint32_t rows)
{
	char line[WIRE_ID_MAX + 128];
	int n = snprintf(line, sizeof(line), "{\"agent\":\"%s\",\"seq\":%" PRIu64 ",\"samples\":%" PRIu64 ",\"rows\":%u}\n",
			 agent, seq, samples, rows);
	pthread_mutex_lock(&d->mu);
	struct ag *a = find(d, agent, false);
	int r = a ? journal_write(d, line, (size_t)n) : -ENOENT;
	if (a) {
		unpend(a, seq);
		if (r == 0)
			r = mark(d, a, seq);
	}
	if (r == 0 && !d->o.keep_journal && d->journal_bytes >= d->o.compact_bytes)
		compact(d); /* a failed compaction only leaves a longer journal */
	pthread_mutex_unlock(&d->mu);
	return r;
}

void dedup_abort(struct dedup *d, const char *agent, uint64_t seq)
{
	pthread_mutex_lock(&d->mu);
	struct ag *a = find(d, agent, false);
	if (a)
		unpend(a, seq);
	pthread_mutex_unlock(&d->mu);
}

int dedup_low_water(struct dedup *d, const char *agent, uint64_t low_water)
{
	int r = 0;
	pthread_mutex_lock(&d->mu);
	struct ag *a = low_water ? find(d, agent, true) : NULL;
	if (a && low_water - 1 > a->hwm) {
		/* persisted: after a restart the skipped seqs would otherwise be waited for forever
		 * and fill the set. Rare: in steady state an agent's low water is the seq right
		 * after the high-water mark. */
		raise_low(a, low_water);
		char line[WIRE_ID_MAX + 64];
		int n = snprintf(line, sizeof(line), "{\"agent\":\"%s\",\"low\":%" PRIu64 "}\n", agent, low_water);
		r = journal_write(d, line, (size_t)n);
	}
	pthread_mutex_unlock(&d->mu);
	return r;
}

uint64_t dedup_max_seq(struct dedup *d, const char *agent)
{
	pthread_mutex_lock(&d->mu);
	struct ag *a = find(d, agent, false);
	uint64_t v = a ? a->max_seq : 0;
	pthread_mutex_unlock(&d->mu);
	return v;
}

int dedup_agent_state(struct dedup *d, const char *agent, uint64_t *ret_hwm, uint32_t *ret_above)
{
	pthread_mutex_lock(&d->mu);
	struct ag *a = find(d, agent, false);
	if (a) {
		*ret_hwm = a->hwm;
		*ret_above = a->nabove;
	}
	pthread_mutex_unlock(&d->mu);
	return a ? 0 : -ENOENT;
}
