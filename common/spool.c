/* spool: see spool.h. In memory: an array of segments (oldest first; the last one may be the
 * active segment taking appends), a read position in the oldest one, and the cursor/id state.
 * At most two descriptors are open: the head segment (reads) and the active one (writes). */
#include "spool.h"

#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zlib.h>

#define REC_MAGIC 0x3150534du
#define STATE_MAGIC 0x3153534du
#define STATE_SLOT 32u
#define SEG_NAME_LEN 16 /* 12 digits + ".seg" */
#define SEG_SEQ_MAX 999999999999ull
/* Reads of the head segment go through a window of this size, so one pread serves many small
 * records; it grows to hold the largest record read and past BUF_KEEP is given back. */
#define READ_AHEAD (256u << 10)
#define BUF_KEEP (1u << 20)

_Static_assert(SPOOL_HDR_SIZE == 24, "record header layout is documented in spool.h");

struct seg {
	uint64_t seq, size, nrec, last_id;
	int fd; /* open only while head or active */
};

struct spool {
	pthread_mutex_t mu;
	int dirfd, statefd;
	uint64_t max_bytes, seg_bytes;
	enum spool_full_policy policy;
	enum spool_fsync fsync;
	struct seg *segs;
	size_t nseg, seg_cap;
	bool active;             /* segs[nseg - 1] takes appends */
	uint64_t rd_off, rd_idx; /* next pending record in segs[0]: byte offset and index */
	uint64_t next_seq, next_id, id_limit, consumed, pending, bytes;
	unsigned state_slot;     /* slot the next unsynced cursor write goes to */
	uint8_t *buf;            /* read-ahead window: bytes [ra_off, ra_off + ra_len) of ra_seq */
	size_t buf_cap, ra_len;
	uint64_t ra_seq, ra_off;
	bool ra_valid, peeked;   /* peeked: peek_* describe the head record, inside buf */
	const uint8_t *peek_ptr;
	uint64_t peek_id;
	size_t peek_len;
	struct spool_stats st;
};

static void put32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return le32toh(v);
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return le64toh(v);
}

/* Callers keep n <= SPOOL_RECORD_MAX, so it fits zlib's 32-bit length. */
static uint32_t crc(const void *p, size_t n)
{
	return (uint32_t)crc32(0L, p, (uInt)n);
}

static enum spool_scan_stop hdr_check(const uint8_t *h, uint64_t prev_id, uint32_t *ret_len,
				      uint64_t *ret_id)
{
	if (get32(h) != REC_MAGIC)
		return SPOOL_SCAN_BAD_MAGIC;
	if (get32(h + 20) != crc(h, 20))
		return SPOOL_SCAN_BAD_HEADER_CRC;
	if (get32(h + 4) > SPOOL_RECORD_MAX)
		return SPOOL_SCAN_BAD_LENGTH;
	if (get64(h + 8) <= prev_id)
		return SPOOL_SCAN_BAD_ID;
	*ret_len = get32(h + 4);
	*ret_id = get64(h + 8);
	return SPOOL_SCAN_END;
}

int spool_segment_scan(const uint8_t *buf, size_t len, uint64_t min_id, uint64_t after_id,
		       struct spool_scan *ret)
{
	if (!ret || (!buf && len))
		return -EINVAL;
	struct spool_scan r = { .stop = SPOOL_SCAN_END };
	size_t off = 0;
	uint64_t prev = min_id, id;
	uint32_t n;
	while (off < len && r.stop == SPOOL_SCAN_END) {
		const uint8_t *h = buf + off;
		if (len - off < SPOOL_HDR_SIZE)
			r.stop = SPOOL_SCAN_SHORT_HEADER;
		else if ((r.stop = hdr_check(h, prev, &n, &id)) != SPOOL_SCAN_END)
			break;
		else if (len - off - SPOOL_HDR_SIZE < n)
			r.stop = SPOOL_SCAN_SHORT_PAYLOAD;
		else if (crc(h + SPOOL_HDR_SIZE, n) != get32(h + 16))
			r.stop = SPOOL_SCAN_BAD_PAYLOAD_CRC;
		if (r.stop != SPOOL_SCAN_END)
			break;
		if (!r.records++)
			r.first_id = id;
		r.last_id = prev = id;
		if (id > after_id && !r.pending_records++)
			r.pending_off = off;
		off += SPOOL_HDR_SIZE + (size_t)n;
	}
	r.good_bytes = off;
	r.bad_bytes = len - off;
	if (!r.pending_records)
		r.pending_off = off;
	*ret = r;
	return 0;
}

static void state_load(struct spool *sp)
{
	uint8_t b[2 * STATE_SLOT];
	uint64_t lim[2] = { 0, 0 }, con[2] = { 0, 0 };
	ssize_t n = pread(sp->statefd, b, sizeof(b), 0);
	for (unsigned i = 0; i < 2; i++) {
		const uint8_t *s = b + i * STATE_SLOT;
		if (n < (ssize_t)((i + 1) * STATE_SLOT) || get32(s) != STATE_MAGIC ||
		    get32(s + 28) != crc(s, 28))
			continue;
		con[i] = get64(s + 8);
		lim[i] = get64(s + 16);
		sp->consumed = con[i] > sp->consumed ? con[i] : sp->consumed;
		sp->id_limit = lim[i] > sp->id_limit ? lim[i] : sp->id_limit;
	}
	/* Overwrite the older (or invalid) slot first, so a torn write never destroys the newest. */
	sp->state_slot = lim[0] < lim[1] || (lim[0] == lim[1] && con[0] <= con[1]) ? 0 : 1;
}

static int state_write_slot(struct spool *sp, unsigned slot, bool sync)
{
	uint8_t s[STATE_SLOT] = { 0 };
	put32(s, STATE_MAGIC);
	put64(s + 8, sp->consumed);
	put64(s + 16, sp->id_limit);
	put32(s + 28, crc(s, 28));
	ssize_t n = pwrite(sp->statefd, s, sizeof(s), (off_t)slot * STATE_SLOT);
	if (n != (ssize_t)sizeof(s))
		return n < 0 ? -errno : -EIO;
	return sync && fdatasync(sp->statefd) < 0 ? -errno : 0;
}

/* Cursor writes (sync=false) go to alternate slots without a flush: losing one costs only
 * redelivery. An id reservation (sync=true) is written and flushed to both slots in turn, so
 * whichever write a crash tears, the other slot holds the reservation or the previous one. */
static int state_store(struct spool *sp, bool sync)
{
	int r = state_write_slot(sp, sp->state_slot, sync);
	if (!sync)
		sp->state_slot ^= 1;
	else if (!r)
		r = state_write_slot(sp, sp->state_slot ^ 1, true);
	if (r < 0)
		sp->st.write_errors++;
	return r;
}

struct seg_name {
	char s[SEG_NAME_LEN + 1];
};

static struct seg_name seg_name(uint64_t seq)
{
	struct seg_name n;
	snprintf(n.s, sizeof(n.s), "%012llu.seg", (unsigned long long)seq);
	return n;
}

static int seg_push(struct spool *sp, const struct seg *s)
{
	if (sp->nseg == sp->seg_cap) {
		size_t cap = sp->seg_cap ? sp->seg_cap * 2 : 16;
		struct seg *n = realloc(sp->segs, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		sp->segs = n;
		sp->seg_cap = cap;
	}
	sp->segs[sp->nseg++] = *s;
	return 0;
}

static int seg_fd(struct spool *sp, struct seg *s)
{
	if (s->fd < 0)
		s->fd = openat(sp->dirfd, seg_name(s->seq).s, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	return s->fd >= 0 ? s->fd : -errno;
}

/* Deletes the head segment; the caller counts its pending records if it means to drop them. */
static void seg_remove_head(struct spool *sp)
{
	struct seg *s = &sp->segs[0];
	if (s->fd >= 0)
		close(s->fd);
	unlinkat(sp->dirfd, seg_name(s->seq).s, 0); /* failure leaves a file the next open deletes */
	sp->bytes -= s->size;
	sp->pending -= s->nrec - sp->rd_idx;
	memmove(sp->segs, sp->segs + 1, (sp->nseg - 1) * sizeof(*s));
	sp->nseg--;
	sp->rd_off = sp->rd_idx = 0;
	sp->peeked = sp->ra_valid = false;
	if (!sp->nseg)
		sp->active = false;
}

/* Stops appending to the active segment; keeps its descriptor only if it is also the head. */
static void seg_seal(struct spool *sp)
{
	struct seg *s = &sp->segs[sp->nseg - 1];
	if (sp->fsync == SPOOL_FSYNC_ROLL && fdatasync(s->fd) < 0)
		sp->st.write_errors++;
	if (sp->nseg > 1) {
		close(s->fd);
		s->fd = -1;
	}
	sp->active = false;
}

static int seg_create(struct spool *sp)
{
	struct seg s = { .seq = sp->next_seq++, .fd = -1 };
	struct seg_name name = seg_name(s.seq);
	if (s.seq > SEG_SEQ_MAX)
		return -EOVERFLOW;
	s.fd = openat(sp->dirfd, name.s, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (s.fd < 0)
		return -errno;
	int r = sp->fsync != SPOOL_FSYNC_NONE && fsync(sp->dirfd) < 0 ? -errno : 0;
	if (!r)
		r = seg_push(sp, &s);
	if (r < 0) {
		close(s.fd);
		unlinkat(sp->dirfd, name.s, 0);
		return r;
	}
	sp->active = true;
	return 0;
}

/* Scans one existing segment file at open: cuts a bad tail, drops the file if nothing in it
 * is pending. *prev_id is the last id of the previous segment (ids must keep increasing). */
static int seg_load(struct spool *sp, uint64_t seq, uint64_t *prev_id)
{
	struct seg_name name = seg_name(seq);
	struct stat st;
	struct spool_scan sc;
	void *m = NULL;
	/* Anything but a regular file (symlink, directory, fifo) is not ours: ignored. */
	if (fstatat(sp->dirfd, name.s, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size > SIZE_MAX)
		return 0;
	int fd = openat(sp->dirfd, name.s, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (st.st_size && (m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0)) ==
				  MAP_FAILED) {
		int r = -errno;
		close(fd);
		return r;
	}
	spool_segment_scan(m, (size_t)st.st_size, *prev_id, sp->consumed, &sc);
	if (m)
		munmap(m, (size_t)st.st_size);
	if (sc.bad_bytes) {
		sp->st.corrupt_truncations++;
		sp->st.corrupt_bytes += sc.bad_bytes;
		if (sc.good_bytes)
			(void)!ftruncate(fd, (off_t)sc.good_bytes); /* else retried next open */
	}
	close(fd);
	if (sc.records) {
		*prev_id = sc.last_id;
		sp->id_limit = sc.last_id + 1 > sp->id_limit ? sc.last_id + 1 : sp->id_limit;
	}
	if (!sc.pending_records) {
		unlinkat(sp->dirfd, name.s, 0);
		return 0;
	}
	if (!sp->nseg) {
		sp->rd_off = sc.pending_off;
		sp->rd_idx = sc.records - sc.pending_records;
	}
	struct seg s = { .seq = seq, .size = sc.good_bytes, .nrec = sc.records,
			 .last_id = sc.last_id, .fd = -1 };
	int r = seg_push(sp, &s);
	if (r < 0)
		return r;
	sp->bytes += sc.good_bytes;
	sp->pending += sc.pending_records;
	return 0;
}

static int seg_filter(const struct dirent *e)
{
	return strlen(e->d_name) == SEG_NAME_LEN && strspn(e->d_name, "0123456789") == 12 &&
	       strcmp(e->d_name + 12, ".seg") == 0;
}

/* Fixed-width names: the alphabetical order is the numeric order. */
static int segs_load(struct spool *sp)
{
	struct dirent **names;
	uint64_t prev_id = 0;
	int r = 0, n = scandirat(sp->dirfd, ".", &names, seg_filter, alphasort);
	if (n < 0)
		return -errno;
	for (int i = 0; i < n; i++) {
		uint64_t seq = strtoull(names[i]->d_name, NULL, 10);
		sp->next_seq = seq + 1;
		if (!r)
			r = seg_load(sp, seq, &prev_id);
		free(names[i]);
	}
	free(names);
	return r;
}

static int opts_resolve(const struct spool_opts *o, struct spool *sp)
{
	static const struct spool_opts defaults;
	o = o ? o : &defaults;
	sp->max_bytes = o->max_bytes ? o->max_bytes : SPOOL_DEFAULT_MAX_BYTES;
	sp->seg_bytes = o->segment_bytes ? o->segment_bytes : sp->max_bytes / 8;
	if (!o->segment_bytes && sp->seg_bytes > SPOOL_DEFAULT_SEGMENT_BYTES)
		sp->seg_bytes = SPOOL_DEFAULT_SEGMENT_BYTES;
	sp->policy = o->policy;
	sp->fsync = o->fsync;
	if (sp->max_bytes < SPOOL_MIN_BYTES || sp->seg_bytes > sp->max_bytes ||
	    (unsigned)o->policy > SPOOL_DROP_NEWEST || (unsigned)o->fsync > SPOOL_FSYNC_APPEND)
		return -EINVAL;
	return 0;
}

int spool_open(const char *dir, const struct spool_opts *opts, struct spool **ret)
{
	if (!dir || !ret)
		return -EINVAL;
	struct spool *sp = calloc(1, sizeof(*sp));
	if (!sp)
		return -ENOMEM;
	pthread_mutex_init(&sp->mu, NULL);
	sp->dirfd = sp->statefd = -1;
	sp->next_seq = 1;
	sp->buf_cap = READ_AHEAD;
	sp->buf = malloc(sp->buf_cap);
	int r = sp->buf ? opts_resolve(opts, sp) : -ENOMEM;
	if (!r && mkdir(dir, 0700) < 0 && errno != EEXIST)
		r = -errno;
	if (!r && (sp->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		r = -errno;
	if (!r && (sp->statefd = openat(sp->dirfd, "state", O_RDWR | O_CREAT | O_CLOEXEC |
					O_NOFOLLOW, 0600)) < 0)
		r = -errno;
	if (!r && flock(sp->statefd, LOCK_EX | LOCK_NB) < 0)
		r = errno == EWOULDBLOCK ? -EBUSY : -errno;
	if (!r) {
		state_load(sp);
		r = segs_load(sp);
	}
	if (r < 0) {
		spool_free(sp);
		return r;
	}
	/* Ids restart above everything seen or reserved; the first append reserves a block. */
	sp->next_id = sp->id_limit > sp->consumed + 1 ? sp->id_limit : sp->consumed + 1;
	sp->id_limit = sp->next_id;
	*ret = sp;
	return 0;
}

struct spool *spool_free(struct spool *sp)
{
	if (!sp)
		return NULL;
	if (sp->active && sp->fsync != SPOOL_FSYNC_NONE)
		(void)!fdatasync(sp->segs[sp->nseg - 1].fd);
	for (size_t i = 0; i < sp->nseg; i++)
		if (sp->segs[i].fd >= 0)
			close(sp->segs[i].fd);
	if (sp->statefd >= 0)
		close(sp->statefd); /* also releases the flock */
	if (sp->dirfd >= 0)
		close(sp->dirfd);
	pthread_mutex_destroy(&sp->mu);
	free(sp->segs);
	free(sp->buf);
	free(sp);
	return NULL;
}

static int make_room(struct spool *sp, uint64_t need)
{
	while (sp->bytes + need > sp->max_bytes && sp->nseg) {
		if (sp->policy == SPOOL_DROP_NEWEST) {
			sp->st.dropped_newest++;
			return -ENOSPC;
		}
		struct seg *s = &sp->segs[0];
		sp->st.dropped_oldest += s->nrec - sp->rd_idx;
		if (s->last_id > sp->consumed) {
			sp->consumed = s->last_id;
			state_store(sp, false);
		}
		seg_remove_head(sp);
	}
	return 0;
}

/* A full filesystem (the write fails with ENOSPC before max_bytes is reached): under DROP_OLDEST
 * the policy still decides what goes, so the oldest segment is deleted (its pending records
 * counted as dropped_oldest) and the caller retries. The segment being appended to is never
 * deleted: it holds the newest records. Returns false when nothing may be deleted. */
static bool drop_head_for_disk(struct spool *sp)
{
	if (sp->policy != SPOOL_DROP_OLDEST || sp->nseg <= (sp->active ? 1u : 0u))
		return false;
	struct seg *s = &sp->segs[0];
	sp->st.dropped_oldest += s->nrec - sp->rd_idx;
	if (s->last_id > sp->consumed) {
		sp->consumed = s->last_id;
		state_store(sp, false);
	}
	seg_remove_head(sp);
	return true;
}

static int write_all(int fd, struct iovec *iov, int iovcnt, uint64_t off)
{
	while (iovcnt > 0) {
		ssize_t n = pwritev(fd, iov, iovcnt, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		off += (uint64_t)n;
		for (; iovcnt > 0 && (size_t)n >= iov->iov_len; iov++, iovcnt--)
			n -= (ssize_t)iov->iov_len;
		if (iovcnt > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

static int append_locked(struct spool *sp, const void *data, size_t len, uint64_t *ret_id)
{
	uint64_t need = SPOOL_HDR_SIZE + (uint64_t)len, id = sp->next_id;
	int r = make_room(sp, need);
	if (r < 0)
		return r;
	if (id >= sp->id_limit) {
		uint64_t old = sp->id_limit;
		sp->id_limit = id + SPOOL_ID_BLOCK;
		if ((r = state_store(sp, true)) < 0) {
			sp->id_limit = old;
			return r;
		}
	}
	if (sp->active && sp->segs[sp->nseg - 1].size &&
	    sp->segs[sp->nseg - 1].size + need > sp->seg_bytes)
		seg_seal(sp);
	while (!sp->active && (r = seg_create(sp)) < 0) {
		if (r != -ENOSPC || !drop_head_for_disk(sp)) {
			sp->st.write_errors++;
			return r;
		}
	}
	uint8_t h[SPOOL_HDR_SIZE];
	put32(h, REC_MAGIC);
	put32(h + 4, (uint32_t)len);
	put64(h + 8, id);
	put32(h + 16, crc(data, len));
	put32(h + 20, crc(h, 20));
	struct seg *a;
	for (;;) {
		a = &sp->segs[sp->nseg - 1]; /* dropping the head moves the array */
		struct iovec iov[2] = { { h, sizeof(h) }, { (void *)data, len } };
		r = write_all(a->fd, iov, len ? 2 : 1, a->size);
		if (!r && sp->fsync == SPOOL_FSYNC_APPEND && fdatasync(a->fd) < 0)
			r = -errno;
		if (!r)
			break;
		/* Cut the partial record; if even that fails, leave the file to the next open's
		 * scan and write later records to a new segment. */
		if (ftruncate(a->fd, (off_t)a->size) < 0) {
			seg_seal(sp);
			sp->st.write_errors++;
			return r;
		}
		if (r != -ENOSPC || !drop_head_for_disk(sp)) {
			sp->st.write_errors++;
			return r;
		}
	}
	a->last_id = id;
	a->nrec++;
	a->size += need;
	sp->bytes += need;
	sp->pending++;
	sp->next_id++;
	sp->st.appended_total++;
	if (ret_id)
		*ret_id = id;
	return 0;
}

int spool_append(struct spool *sp, const void *data, size_t len, uint64_t *ret_id)
{
	if (!sp || (!data && len))
		return -EINVAL;
	if (len > SPOOL_RECORD_MAX || SPOOL_HDR_SIZE + (uint64_t)len > sp->max_bytes)
		return -EMSGSIZE;
	pthread_mutex_lock(&sp->mu);
	int r = append_locked(sp, data, len, ret_id);
	pthread_mutex_unlock(&sp->mu);
	return r;
}

/* Fills the read-ahead window with [off, off + need) of s, or more; the caller checked that s
 * holds those bytes. Bytes below s->size never change while s exists (appends only add),
 * except when s is cut or emptied, which invalidates the window. */
static int ra_fill(struct spool *sp, struct seg *s, uint64_t off, size_t need)
{
	if (sp->ra_valid && sp->ra_seq == s->seq && off >= sp->ra_off &&
	    off + need <= sp->ra_off + sp->ra_len)
		return 0;
	int fd = seg_fd(sp, s);
	if (fd < 0)
		return fd;
	size_t want = need > READ_AHEAD ? need : READ_AHEAD, cap = want;
	if (want > s->size - off)
		want = (size_t)(s->size - off);
	sp->ra_valid = false;
	if (cap > sp->buf_cap || (sp->buf_cap > BUF_KEEP && cap < BUF_KEEP / 4)) {
		uint8_t *b = realloc(sp->buf, cap);
		if (!b)
			return -ENOMEM;
		sp->buf = b;
		sp->buf_cap = cap;
	}
	for (size_t got = 0; got < want;) {
		ssize_t n = pread(fd, sp->buf + got, want - got, (off_t)(off + got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) /* a file shorter than recorded is corrupt */
			return n < 0 ? -errno : -EBADMSG;
		got += (size_t)n;
	}
	sp->ra_valid = true;
	sp->ra_seq = s->seq;
	sp->ra_off = off;
	sp->ra_len = want;
	return 0;
}

/* Checks segs[0]'s next record and points peek_ptr at it. -EBADMSG: the record is corrupt. */
static int read_head(struct spool *sp)
{
	struct seg *s = &sp->segs[0];
	uint32_t len;
	uint64_t id;
	if (s->size - sp->rd_off < SPOOL_HDR_SIZE)
		return -EBADMSG;
	int r = ra_fill(sp, s, sp->rd_off, SPOOL_HDR_SIZE);
	if (r < 0)
		return r;
	const uint8_t *h = sp->buf + (sp->rd_off - sp->ra_off);
	if (hdr_check(h, sp->consumed, &len, &id) != SPOOL_SCAN_END || id > s->last_id ||
	    s->size - sp->rd_off - SPOOL_HDR_SIZE < len)
		return -EBADMSG;
	uint32_t want_crc = get32(h + 16);
	if ((r = ra_fill(sp, s, sp->rd_off, SPOOL_HDR_SIZE + (size_t)len)) < 0)
		return r;
	h = sp->buf + (sp->rd_off - sp->ra_off);
	if (crc(h + SPOOL_HDR_SIZE, len) != want_crc)
		return -EBADMSG;
	sp->peeked = true;
	sp->peek_ptr = h + SPOOL_HDR_SIZE;
	sp->peek_id = id;
	sp->peek_len = len;
	return 0;
}

/* A record of segs[0] failed its check after open: cut the segment there, as open would. */
static void cut_head(struct spool *sp)
{
	struct seg *s = &sp->segs[0];
	sp->st.corrupt_truncations++;
	sp->st.corrupt_bytes += s->size - sp->rd_off;
	if (s->fd >= 0)
		(void)!ftruncate(s->fd, (off_t)sp->rd_off);
	sp->ra_valid = false;
	sp->bytes -= s->size - sp->rd_off;
	sp->pending -= s->nrec - sp->rd_idx;
	s->size = sp->rd_off;
	s->nrec = sp->rd_idx;
}

/* A fully consumed head is deleted, unless it is the active segment: that one is emptied in
 * place (one ftruncate instead of unlink + create when the consumer keeps up). */
static void head_release(struct spool *sp)
{
	struct seg *s = &sp->segs[0];
	if (sp->rd_idx < s->nrec)
		return;
	if (!(sp->active && sp->nseg == 1) || ftruncate(s->fd, 0) < 0) {
		seg_remove_head(sp);
		return;
	}
	sp->bytes -= s->size;
	s->size = s->nrec = s->last_id = 0;
	sp->rd_off = sp->rd_idx = 0;
	sp->ra_valid = false;
}

static int peek_locked(struct spool *sp)
{
	while (!sp->peeked) {
		if (!sp->pending)
			return -ENOENT;
		int r = sp->rd_idx < sp->segs[0].nrec ? read_head(sp) : 0;
		if (r == -EBADMSG)
			cut_head(sp);
		else if (r < 0) {
			sp->st.read_errors++;
			return r;
		}
		if (!sp->peeked)
			head_release(sp);
	}
	return 0;
}

int spool_peek(struct spool *sp, const void **ret_buf, size_t *ret_len, uint64_t *ret_id)
{
	if (!sp || !ret_buf || !ret_len)
		return -EINVAL;
	pthread_mutex_lock(&sp->mu);
	int r = peek_locked(sp);
	if (!r) {
		*ret_buf = sp->peek_ptr;
		*ret_len = sp->peek_len;
		if (ret_id)
			*ret_id = sp->peek_id;
	}
	pthread_mutex_unlock(&sp->mu);
	return r;
}

static int pop_locked(struct spool *sp)
{
	int r = peek_locked(sp);
	if (r < 0)
		return r;
	sp->rd_off += SPOOL_HDR_SIZE + (uint64_t)sp->peek_len;
	sp->rd_idx++;
	sp->pending--;
	sp->consumed = sp->peek_id;
	sp->peeked = false;
	sp->st.consumed_total++;
	state_store(sp, false); /* a failure is counted; it costs redelivery, not loss */
	head_release(sp);
	return 0;
}

int spool_pop(struct spool *sp)
{
	if (!sp)
		return -EINVAL;
	pthread_mutex_lock(&sp->mu);
	int r = pop_locked(sp);
	pthread_mutex_unlock(&sp->mu);
	return r;
}

int spool_ack(struct spool *sp, uint64_t id)
{
	if (!sp)
		return -EINVAL;
	pthread_mutex_lock(&sp->mu);
	int r = peek_locked(sp);
	if (r == -ENOENT)
		r = id < sp->next_id ? 0 : -ESRCH;
	else if (!r && id == sp->peek_id)
		r = pop_locked(sp);
	else if (!r && id > sp->peek_id)
		r = -ESRCH;
	pthread_mutex_unlock(&sp->mu);
	return r;
}

void spool_stats(struct spool *sp, struct spool_stats *ret)
{
	pthread_mutex_lock(&sp->mu);
	*ret = sp->st;
	ret->records = sp->pending;
	ret->bytes = sp->bytes;
	ret->segments = sp->nseg;
	ret->next_id = sp->next_id;
	pthread_mutex_unlock(&sp->mu);
}
