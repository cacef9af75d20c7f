/* seqstore: see seqstore.h. File format (16 bytes, little-endian): u64 limit, u32 magic
 * "MSQ1", u32 CRC-32 of the first 12 bytes. */
#include "seqstore.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define SEQ_MAGIC 0x3151534du

struct seqstore {
	pthread_mutex_t mu;
	char path[4096 + 8], tmp[4096 + 8];
	uint64_t first, limit;
};

static int read_limit(const char *path, uint64_t *ret)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	uint8_t b[17];
	ssize_t n = read(fd, b, sizeof(b));
	close(fd);
	if (n != 16)
		return -EBADMSG;
	uint64_t v;
	uint32_t magic, crc;
	memcpy(&v, b, 8);
	memcpy(&magic, b + 8, 4);
	memcpy(&crc, b + 12, 4);
	if (le32toh(magic) != SEQ_MAGIC || le32toh(crc) != (uint32_t)crc32(0, b, 12))
		return -EBADMSG;
	*ret = le64toh(v);
	return 0;
}

/* Write-then-rename: a crash leaves either the old file or the new one, never a torn one. */
static int write_limit(struct seqstore *s, uint64_t limit)
{
	uint8_t b[16];
	uint64_t v = htole64(limit);
	uint32_t magic = htole32(SEQ_MAGIC);
	memcpy(b, &v, 8);
	memcpy(b + 8, &magic, 4);
	uint32_t crc = htole32((uint32_t)crc32(0, b, 12));
	memcpy(b + 12, &crc, 4);
	int fd = open(s->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	int r = 0;
	if (write(fd, b, sizeof(b)) != (ssize_t)sizeof(b) || fsync(fd) < 0)
		r = errno ? -errno : -EIO;
	close(fd);
	if (r == 0 && rename(s->tmp, s->path) < 0)
		r = -errno;
	if (r < 0) {
		unlink(s->tmp);
		return r;
	}
	s->limit = limit;
	return 0;
}

int seqstore_open(const char *dir, struct seqstore **ret, bool *ret_repaired)
{
	if (!dir || !dir[0] || strlen(dir) > 4096)
		return -EINVAL;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	struct seqstore *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->mu, NULL);
	snprintf(s->path, sizeof(s->path), "%s/seq", dir);
	snprintf(s->tmp, sizeof(s->tmp), "%s/seq.tmp", dir);
	uint64_t limit = 0;
	int r = read_limit(s->path, &limit);
	bool repaired = r < 0 && r != -ENOENT;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t now_us = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
	s->first = limit > now_us ? limit : now_us;
	if (s->first == 0)
		s->first = 1;
	if ((r = write_limit(s, s->first + SEQSTORE_SLACK)) < 0) {
		seqstore_free(s);
		return r;
	}
	if (ret_repaired)
		*ret_repaired = repaired;
	*ret = s;
	return 0;
}

struct seqstore *seqstore_free(struct seqstore *s)
{
	if (!s)
		return NULL;
	pthread_mutex_destroy(&s->mu);
	free(s);
	return NULL;
}

uint64_t seqstore_first(const struct seqstore *s)
{
	return s->first;
}

int seqstore_advance(struct seqstore *s, uint64_t seq)
{
	int r = 0;
	pthread_mutex_lock(&s->mu);
	if (seq + SEQSTORE_SLACK / 2 >= s->limit)
		r = write_limit(s, seq + SEQSTORE_SLACK);
	pthread_mutex_unlock(&s->mu);
	return r;
}

uint64_t seqstore_limit(struct seqstore *s)
{
	pthread_mutex_lock(&s->mu);
	uint64_t v = s->limit;
	pthread_mutex_unlock(&s->mu);
	return v;
}
