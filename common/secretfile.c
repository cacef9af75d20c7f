/* secretfile: see secretfile.h. */
#include "secretfile.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

int secretfile_check_stat(const struct stat *st, uid_t euid)
{
	if (!S_ISREG(st->st_mode))
		return -EINVAL;
	if (st->st_mode & (S_IRGRP | S_IWGRP | S_IROTH | S_IWOTH))
		return -EPERM;
	if (st->st_uid != euid && st->st_uid != 0)
		return -EACCES;
	return 0;
}

static int open_checked(const char *path)
{
	if (!path || !path[0])
		return -EINVAL;
	/* O_NONBLOCK: a FIFO planted at the path must not hang start-up before the S_ISREG check */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	struct stat st;
	int r = fstat(fd, &st) < 0 ? -errno : secretfile_check_stat(&st, geteuid());
	if (r == 0 && st.st_size > SECRETFILE_MAX)
		r = -E2BIG;
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

int secretfile_check(const char *path)
{
	int fd = open_checked(path);
	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

static int is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int secretfile_read(const char *path, char *buf, size_t size)
{
	char tmp[SECRETFILE_MAX + 1];
	if (!buf || !size)
		return -EINVAL;
	buf[0] = 0;
	int fd = open_checked(path);
	if (fd < 0)
		return fd;
	size_t n = 0;
	int r = 0;
	/* bounded: SECRETFILE_MAX + 1 bytes tell a file that grew after fstat */
	while (n < sizeof(tmp)) {
		ssize_t k = read(fd, tmp + n, sizeof(tmp) - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			r = -errno;
			break;
		}
		if (k == 0)
			break;
		n += (size_t)k;
	}
	close(fd);
	if (r == 0 && n > SECRETFILE_MAX)
		r = -E2BIG;
	size_t b = 0, e = 0;
	if (r == 0) {
		while (b < n && (tmp[b] == ' ' || tmp[b] == '\t'))
			b++;
		e = b;
		while (e < n && tmp[e] != '\n' && tmp[e] != '\r')
			e++;
		while (e > b && is_blank(tmp[e - 1]))
			e--;
		if (e == b)
			r = -ENODATA;
		else if (e - b >= size)
			r = -E2BIG;
	}
	if (r == 0) {
		memcpy(buf, tmp + b, e - b);
		buf[e - b] = 0;
	}
	explicit_bzero(tmp, sizeof(tmp));
	return r < 0 ? r : (int)(e - b);
}

const char *secretfile_strerror(int r)
{
	switch (r) {
	case -EPERM: return "readable or writable by group or others: refusing a secret others can see (chmod 600)";
	case -EACCES: return "owned by another user: a secret file must belong to the daemon's user or root (chown)";
	case -EINVAL: return "not a regular file";
	case -ENODATA: return "empty";
	case -E2BIG: return "too long";
	default: return strerror(-r);
	}
}
