/* elfsym_test: symbol tables of this (PIE) test binary, of libc (shared object, .dynsym and the
 * separate debug file), of a fixed-address (ET_EXEC) binary when the system has one, size
 * boundaries, name preference, limits, and refusal of non-ELF and truncated input. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "elfsym.h"
#include "procmaps.h"

__attribute__((noinline)) int elfsym_test_marker(int x)
{
	return x * 7 + 3;
}

int elfsym_test_data[32] = { 1, 2, 3 };

/* The vaddr of addr in its file and an fd of that file, through this process's maps. */
static int self_vaddr(const void *addr, bool data, int *ret_fd, struct elfsym **ret_es, uint64_t *ret_va)
{
	struct procmaps *m = NULL;
	assert_int_equal(procmaps_load(NULL, (uint32_t)getpid(), 0, &m), 0);
	const struct procmaps_entry *e = procmaps_find(m, (uint64_t)(uintptr_t)addr, NULL);
	assert_non_null(e);
	assert_int_equal(e->kind, PROCMAPS_FILE);
	assert_int_equal(procmaps_open_file(NULL, (uint32_t)getpid(), e, ret_fd), 0);
	int r = elfsym_open_fd(*ret_fd, NULL, ret_es);
	assert_int_equal(r, 0);
	uint64_t off = (uint64_t)(uintptr_t)addr - e->start + e->pgoff;
	r = elfsym_file_to_vaddr(*ret_es, off, data, ret_va);
	procmaps_free(m);
	return r;
}

static void test_self_pie(void **state)
{
	int fd;
	struct elfsym *es = NULL;
	uint64_t va;
	assert_int_equal(self_vaddr((const void *)&elfsym_test_marker, false, &fd, &es, &va), 0);
	assert_int_equal(elfsym_elf_type(es), ET_DYN); /* Debian builds PIE by default */
	assert_int_equal(elfsym_source(es), ELFSYM_SRC_SYMTAB);
	size_t idlen;
	const uint8_t *id = elfsym_build_id(es, &idlen);
	assert_non_null(id);
	assert_int_equal(idlen, 20);
	uint8_t id2[ELFSYM_BUILD_ID_MAX];
	size_t id2len;
	assert_int_equal(elfsym_read_build_id(fd, id2, &id2len), 0);
	assert_int_equal(id2len, idlen);
	assert_memory_equal(id, id2, idlen);

	struct elfsym_hit h;
	assert_int_equal(elfsym_lookup(es, ELFSYM_FUNC, va, &h), 0);
	assert_string_equal(h.name, "elfsym_test_marker");
	assert_true(h.start == va);
	assert_true(h.size > 0);
	assert_int_equal(elfsym_lookup(es, ELFSYM_FUNC, va + h.size - 1, &h), 0);
	assert_string_equal(h.name, "elfsym_test_marker");
	assert_true(elfsym_count(es, ELFSYM_FUNC) > 20);
	assert_true(elfsym_mem_bytes(es) > elfsym_count(es, ELFSYM_FUNC) * 8);
	elfsym_free(es);
	close(fd);

	/* a data object, by its address in .data */
	assert_int_equal(self_vaddr(&elfsym_test_data[5], true, &fd, &es, &va), 0);
	assert_int_equal(elfsym_lookup(es, ELFSYM_DATA, va, &h), 0);
	assert_string_equal(h.name, "elfsym_test_data");
	assert_true(va - h.start == 5 * sizeof(int));
	assert_int_equal(h.size, sizeof(elfsym_test_data));
	elfsym_free(es);
	close(fd);
}

/* Past a sized symbol's end (in alignment padding) there is no symbol; tables are sorted. */
static void test_size_respected(void **state)
{
	int fd = open("/proc/self/exe", O_RDONLY);
	assert_true(fd >= 0);
	struct elfsym *es = NULL;
	assert_int_equal(elfsym_open_fd(fd, NULL, &es), 0);
	close(fd);
	size_t n = elfsym_count(es, ELFSYM_FUNC), gaps = 0;
	struct elfsym_hit a, b, h;
	for (size_t i = 0; i + 1 < n; i++) {
		assert_int_equal(elfsym_at(es, ELFSYM_FUNC, i, &a), 0);
		assert_int_equal(elfsym_at(es, ELFSYM_FUNC, i + 1, &b), 0);
		assert_true(a.start < b.start); /* sorted, one name per address */
		if (a.size && a.start + a.size < b.start) {
			gaps++;
			assert_int_equal(elfsym_lookup(es, ELFSYM_FUNC, a.start + a.size, &h), -ENOENT);
			assert_int_equal(elfsym_lookup(es, ELFSYM_FUNC, b.start, &h), 0);
			assert_string_equal(h.name, b.name);
		}
	}
	assert_true(gaps > 0);
	assert_int_equal(elfsym_at(es, ELFSYM_FUNC, n, &h), -ENOENT);
	assert_int_equal(elfsym_at(es, ELFSYM_FUNC, 0, &a), 0);
	assert_int_equal(elfsym_lookup(es, ELFSYM_FUNC, a.start - 1, &h), -ENOENT);
	elfsym_free(es);
}

/* getpid is aliased (__getpid, getpid, and more in the debug file): the name with fewer
 * leading underscores wins, from .dynsym and from the separate debug file alike. */
static void test_libc(void **state)
{
	int (*volatile fn)(void) = getpid;
	int fd;
	struct elfsym *es = NULL;
	uint64_t va;
	assert_int_equal(self_vaddr((const void *)fn, false, &fd, &es, &va), 0);
	assert_int_equal(elfsym_elf_type(es), ET_DYN);
	struct elfsym_hit h;
	assert_int_equal(elfsym_lookup(es, ELFSYM_FUNC, va, &h), 0);
	assert_string_equal(h.name, "getpid");
	enum elfsym_source src = elfsym_source(es);
	print_message("libc symbols from %s: %zu functions\n",
		      src == ELFSYM_SRC_DEBUGFILE ? "the debug file" : src == ELFSYM_SRC_SYMTAB ? ".symtab" : ".dynsym",
		      elfsym_count(es, ELFSYM_FUNC));
	elfsym_free(es);

	struct elfsym_opts o = { .debug_dir = "" };
	assert_int_equal(elfsym_open_fd(fd, &o, &es), 0);
	assert_int_equal(elfsym_source(es), ELFSYM_SRC_DYNSYM);
	assert_int_equal(elfsym_lookup(es, ELFSYM_FUNC, va, &h), 0);
	assert_string_equal(h.name, "getpid");
	elfsym_free(es);

	/* a debug dir without the file changes nothing */
	o.debug_dir = "/nonexistent";
	assert_int_equal(elfsym_open_fd(fd, &o, &es), 0);
	assert_int_equal(elfsym_source(es), ELFSYM_SRC_DYNSYM);
	elfsym_free(es);
	close(fd);
}

/* First ET_EXEC file with functions among a few system directories, or NULL. */
static char *find_exec(void)
{
	static const char *const dirs[] = { "/usr/lib/llvm-14/bin", "/usr/bin", "/usr/sbin", "/bin", NULL };
	static char path[1024];
	for (int d = 0; dirs[d]; d++) {
		DIR *dir = opendir(dirs[d]);
		struct dirent *de;
		while (dir && (de = readdir(dir))) {
			snprintf(path, sizeof(path), "%s/%s", dirs[d], de->d_name);
			struct stat st;
			unsigned char hdr[20];
			int fd = open(path, O_RDONLY | O_NONBLOCK);
			if (fd < 0)
				continue;
			bool ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size < (64 << 20) &&
				  pread(fd, hdr, sizeof(hdr), 0) == (ssize_t)sizeof(hdr) && memcmp(hdr, ELFMAG, 4) == 0 &&
				  hdr[EI_CLASS] == ELFCLASS64 && hdr[16] == ET_EXEC && hdr[17] == 0 && hdr[18] == EM_X86_64;
			struct elfsym *es = NULL;
			if (ok && elfsym_open_fd(fd, NULL, &es) == 0 && elfsym_count(es, ELFSYM_FUNC) > 0) {
				elfsym_free(es);
				close(fd);
				closedir(dir);
				return path;
			}
			elfsym_free(es);
			close(fd);
		}
		if (dir)
			closedir(dir);
	}
	return NULL;
}

static void test_exec_non_pie(void **state)
{
	char *path = find_exec();
	if (!path) {
		print_message("SKIP: no non-PIE (ET_EXEC) binary with symbols on this system\n");
		skip();
		return;
	}
	print_message("non-PIE binary: %s\n", path);
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	struct elfsym *es = NULL;
	assert_int_equal(elfsym_open_fd(fd, NULL, &es), 0);
	close(fd);
	assert_int_equal(elfsym_elf_type(es), ET_EXEC);
	struct elfsym_hit a, h;
	assert_int_equal(elfsym_at(es, ELFSYM_FUNC, elfsym_count(es, ELFSYM_FUNC) / 2, &a), 0);
	assert_true(a.start >= 0x400000); /* linked at a fixed address */
	assert_int_equal(elfsym_lookup(es, ELFSYM_FUNC, a.start, &h), 0);
	assert_string_equal(h.name, a.name);
	elfsym_free(es);
}

static void test_limits(void **state)
{
	int fd = open("/proc/self/exe", O_RDONLY);
	assert_true(fd >= 0);
	struct elfsym *es = NULL;
	struct elfsym_opts o = { .max_symbols = 8 };
	assert_int_equal(elfsym_open_fd(fd, &o, &es), 0);
	assert_true(elfsym_count(es, ELFSYM_FUNC) + elfsym_count(es, ELFSYM_DATA) <= 8);
	elfsym_free(es);
	o = (struct elfsym_opts){ .max_str_bytes = 64 };
	assert_int_equal(elfsym_open_fd(fd, &o, &es), 0);
	assert_true(elfsym_count(es, ELFSYM_FUNC) < 10);
	elfsym_free(es);
	o = (struct elfsym_opts){ .max_file_bytes = 4096 };
	assert_int_equal(elfsym_open_fd(fd, &o, &es), -EFBIG);
	close(fd);
	assert_null(elfsym_free(NULL));
}

static void test_not_elf(void **state)
{
	char path[] = "/tmp/elfsym_test.XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	struct elfsym *es = NULL;
	uint8_t id[ELFSYM_BUILD_ID_MAX];
	size_t idlen;
	assert_int_equal(elfsym_open_fd(fd, NULL, &es), -ENOEXEC); /* empty */
	assert_int_equal(write(fd, "#!/bin/sh\necho hi\n", 18), 18);
	assert_int_equal(elfsym_open_fd(fd, NULL, &es), -ENOEXEC);
	assert_int_equal(elfsym_read_build_id(fd, id, &idlen), -ENOEXEC);
	/* a truncated copy of a real ELF: header only, then half the file */
	int self = open("/proc/self/exe", O_RDONLY);
	assert_true(self >= 0);
	struct stat st;
	assert_int_equal(fstat(self, &st), 0);
	char *buf = malloc((size_t)st.st_size);
	assert_non_null(buf);
	assert_int_equal(pread(self, buf, (size_t)st.st_size, 0), st.st_size);
	close(self);
	size_t cuts[] = { 64, 1000, (size_t)st.st_size / 2, (size_t)st.st_size - 100 };
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		assert_int_equal(ftruncate(fd, 0), 0);
		assert_int_equal(pwrite(fd, buf, cuts[i], 0), (ssize_t)cuts[i]);
		int r = elfsym_open_fd(fd, NULL, &es);
		if (r == 0) /* whatever it could read; lookups stay in bounds */
			es = elfsym_free(es);
		elfsym_read_build_id(fd, id, &idlen);
	}
	free(buf);
	close(fd);
	int dfd = open("/tmp", O_RDONLY | O_DIRECTORY);
	assert_int_equal(elfsym_open_fd(dfd, NULL, &es), -ENOEXEC);
	close(dfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_self_pie),
		cmocka_unit_test(test_size_respected),
		cmocka_unit_test(test_libc),
		cmocka_unit_test(test_exec_non_pie),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_not_elf),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
