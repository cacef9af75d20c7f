/* secretfile: reads a secret (bearer token, ClickHouse password) from a file whose metadata keeps
 * it secret: a regular file (symlinks are followed, as Kubernetes secret volumes need), owned by
 * the running user or root, with no group or other read/write bit. Secrets are never taken from
 * config values or flags; this is the one way the daemons read them. It is not a vault: the
 * secret is in memory for the process's life, and the caller wipes its copies.
 * Thread-safety: stateless; safe from any thread. */
#ifndef MS_SECRETFILE_H
#define MS_SECRETFILE_H

#include <stddef.h>
#include <sys/stat.h>

#define SECRETFILE_MAX 4096 /* bytes of a secret file read at most (a longer file is refused) */

/* Checks the metadata of an opened secret file for a process with effective uid euid.
 * Returns 0, -EINVAL (not a regular file), -EPERM (group/other can read or write it) or -EACCES
 * (owned by another user than euid or root). */
int secretfile_check_stat(const struct stat *st, uid_t euid);

/* Checks path's metadata (following symlinks) without reading it. Returns as above or the
 * negative errno of open/fstat. */
int secretfile_check(const char *path);

/* Reads the first line of path into buf (size bytes, NUL-terminated), without surrounding
 * blanks, after the checks above. Returns the secret's length (> 0), a negative errno as above,
 * -ENODATA (empty), -E2BIG (longer than size - 1 or the file longer than SECRETFILE_MAX). buf is
 * wiped on failure. */
int secretfile_read(const char *path, char *buf, size_t size);

/* One operator-facing reason for a failure of the functions above (static string). */
const char *secretfile_strerror(int r);

#endif
