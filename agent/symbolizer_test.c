/* symbolizer_test: the facade end to end on real targets — this PIE test binary, libc, the
 * kernel, a fake JIT region with a perf map, registered code and data regions, data objects
 * (.data, .bss, heap, stack, anonymous), a deleted binary, a non-PIE binary through a fake
 * /proc, cache bounds and eviction, build-id sharing, unknown pids — plus the cached-hit
 * throughput, printed. Registration racing lookups is perfmap_test's (the registry's). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "elfsym.h"
#include "procmaps.h"
#include "symbolizer.h"

/* Long enough (volatile loop) that the offsets probed below lie inside it. */
__attribute__((noinline)) int symtest_marker(int x)
{
	volatile int acc = x;
	for (int i = 0; i < 4; i++)
		acc = acc * 5 + i;
	return acc;
}

int symtest_data_obj[16] = { 1, 2, 3 };
char symtest_bss_obj[1 << 16]; /* its tail lies in the anonymous mapping after the file */

#define SELF ((uint32_t)getpid())
#define MARKER ((uint64_t)(uintptr_t)&symtest_marker)

static const char *self_base(void)
{
	static char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	assert_true(n > 0);
	exe[n] = '\0';
	return strrchr(exe, '/') + 1;
}

/* The lowercase hex build-id of path. */
static void build_id_hex(const char *path, char *hex)
{
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	uint8_t id[ELFSYM_BUILD_ID_MAX];
	size_t len;
	assert_int_equal(elfsym_read_build_id(fd, id, &len), 0);
	close(fd);
	assert_true(len > 0);
	for (size_t i = 0; i < len; i++)
		sprintf(hex + 2 * i, "%02x", id[i]);
}

static struct symbolizer *new_sym(const struct symbolizer_opts *o)
{
	struct symbolizer *s = NULL;
	assert_int_equal(symbolizer_new(o, &s), 0);
	return s;
}

/* This PIE test binary and libc, ids, and the cache hit that follows. */
static void test_self_and_libc(void **state)
{
	struct symbolizer *s = new_sym(NULL);
	struct sym_result r;
	assert_int_equal(symbolizer_resolve(s, SELF, MARKER + 5, true, &r), 0);
	assert_int_equal(r.resolved, 1);
	assert_string_equal(r.name, "symtest_marker");
	assert_string_equal(r.module, self_base());
	assert_int_equal(r.offset, 5);
	char hex[2 * ELFSYM_BUILD_ID_MAX + 1];
	build_id_hex("/proc/self/exe", hex);
	assert_true(r.func_id == symbolizer_func_id(hex, "symtest_marker"));
	assert_true(r.object_id == symbolizer_object_id(hex));
	/* FNV-1a 64 reference values: empty input is the seed; "a" is 0xaf63dc4c8601ec8c */
	assert_true(symbolizer_fnv1a64(SYMBOLIZER_FNV_SEED, "", 0) == 0xcbf29ce484222325ull);
	assert_true(symbolizer_object_id("a") == 0xaf63dc4c8601ec8cull);

	struct symbolizer_stats st;
	symbolizer_stats(s, &st);
	assert_int_equal(st.elf_loads, 1);
	assert_int_equal(st.misses, 1);
	struct sym_result r2;
	assert_int_equal(symbolizer_resolve(s, SELF, MARKER, true, &r2), 0);
	assert_true(r2.func_id == r.func_id);
	assert_int_equal(r2.offset, 0);
	symbolizer_stats(s, &st);
	assert_int_equal(st.elf_loads, 1);
	assert_int_equal(st.hits, 1);
	assert_int_equal(st.pids, 1);
	assert_int_equal(st.elf_files, 1);
	assert_true(st.bytes > 0);

	/* a shared object: libc */
	int (*volatile fn)(void) = getpid;
	assert_int_equal(symbolizer_resolve(s, SELF, (uint64_t)(uintptr_t)fn + 1, true, &r), 0);
	assert_int_equal(r.resolved, 1);
	assert_string_equal(r.name, "getpid");
	assert_string_equal(r.module, "libc.so.6");
	assert_int_equal(r.offset, 1);
	symbolizer_free(s);
}

static uint64_t kallsyms_addr(const char *want)
{
	FILE *f = fopen("/proc/kallsyms", "r");
	char line[512], name[256];
	unsigned long long a;
	char t;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "%llx %c %255s", &a, &t, name) == 3 && strcmp(name, want) == 0) {
			fclose(f);
			return a;
		}
	if (f)
		fclose(f);
	return 0;
}

static void test_kernel(void **state)
{
	uint64_t a = kallsyms_addr("schedule");
	struct sym_result r;
	if (a) {
		struct symbolizer *s = new_sym(NULL);
		assert_int_equal(symbolizer_resolve(s, 0, a + 3, false, &r), 0);
		assert_int_equal(r.resolved, 1);
		assert_string_equal(r.name, "schedule");
		assert_string_equal(r.module, "[kernel]");
		assert_int_equal(r.offset, 3);
		assert_true(r.func_id == symbolizer_func_id("[kernel]", "schedule"));
		struct symbolizer_stats st;
		symbolizer_stats(s, &st);
		assert_int_equal(st.kallsyms_loaded, 1);
		assert_int_equal(st.kallsyms_restricted, 0);
		symbolizer_free(s);
	} else {
		print_message("real kernel symbols not checked: /proc/kallsyms restricted\n");
	}
	/* kptr_restrict: every address 0 */
	char path[] = "/tmp/symtest_ks.XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char *z = "0000000000000000 T _text\n0000000000000000 T schedule\n";
	assert_int_equal(write(fd, z, strlen(z)), (ssize_t)strlen(z));
	close(fd);
	struct symbolizer_opts o = { .kallsyms_path = path };
	struct symbolizer *s = new_sym(&o);
	assert_int_equal(symbolizer_resolve(s, 0, 0xffffffff81000010ull, false, &r), 0);
	unlink(path);
	assert_int_equal(r.resolved, 0);
	assert_string_equal(r.module, "[kernel]");
	assert_string_equal(r.name, "[unknown]");
	struct symbolizer_stats st;
	symbolizer_stats(s, &st);
	assert_int_equal(st.kallsyms_restricted, 1);
	symbolizer_free(s);
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_perfmap_jit(void **state)
{
	char dir[] = "/tmp/symtest_pm.XXXXXX", path[128], text[256];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/perf-%u.map", dir, SELF);
	uint8_t *code = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(code != MAP_FAILED);
	uint64_t base = (uint64_t)(uintptr_t)code;
	snprintf(text, sizeof(text), "%llx 40 jit_fn_one\n0x%llx 0x20 LazyCompile:~two app.js:7\n",
		 (unsigned long long)base, (unsigned long long)base + 0x100);
	write_text(path, text);
	struct symbolizer_opts o = { .perfmap_dir = dir, .perfmap_check_ms = 1 };
	struct symbolizer *s = new_sym(&o);
	struct sym_result r;
	assert_int_equal(symbolizer_resolve(s, SELF, base + 0x10, true, &r), 0);
	assert_int_equal(r.resolved, 1);
	assert_string_equal(r.name, "jit_fn_one");
	assert_string_equal(r.module, "[jit]");
	assert_int_equal(r.offset, 0x10);
	assert_true(r.func_id == symbolizer_func_id("[jit]", "jit_fn_one"));
	assert_int_equal(symbolizer_resolve(s, SELF, base + 0x105, true, &r), 0);
	assert_string_equal(r.name, "LazyCompile:~two app.js:7");
	assert_int_equal(symbolizer_resolve(s, SELF, base + 0x80, true, &r), 0);
	assert_int_equal(r.resolved, 0);
	assert_string_equal(r.module, "[anon]");
	/* the JIT rewrites its map: picked up at the next check */
	snprintf(text, sizeof(text), "%llx 80 jit_fn_recompiled\n", (unsigned long long)base);
	write_text(path, text);
	usleep(20000);
	assert_int_equal(symbolizer_resolve(s, SELF, base + 0x50, true, &r), 0);
	assert_string_equal(r.name, "jit_fn_recompiled");
	struct symbolizer_stats st;
	symbolizer_stats(s, &st);
	assert_int_equal(st.perfmap_loads, 2);
	unlink(path);
	rmdir(dir);
	munmap(code, 8192);
	symbolizer_free(s);
}

static void test_registered(void **state)
{
	struct symbolizer *s = new_sym(NULL);
	const uint32_t fake = 4242;
	const uint64_t base = 0x7f0000000000ull;
	struct sym_result r;
	assert_int_equal(symbolizer_register_region(s, fake, base, 256, "synth_fn", "[synthetic]"), 0);
	assert_int_equal(symbolizer_register_region(s, fake, base + 256, 256, "jit_default", NULL), 0);
	assert_int_equal(symbolizer_register_data(s, fake, 0x10000, 4096, "ring_buffer"), 0);
	assert_int_equal(symbolizer_resolve(s, fake, base + 10, true, &r), 0);
	assert_int_equal(r.resolved, 1);
	assert_string_equal(r.name, "synth_fn");
	assert_string_equal(r.module, "[synthetic]");
	assert_int_equal(r.offset, 10);
	assert_true(r.func_id == symbolizer_func_id("[synthetic]", "synth_fn"));
	assert_true(r.object_id == symbolizer_object_id("[synthetic]"));
	assert_int_equal(symbolizer_resolve(s, fake, base + 300, true, &r), 0);
	assert_string_equal(r.module, "[jit]");
	assert_int_equal(symbolizer_resolve_data(s, fake, 0x10010, &r), 0);
	assert_string_equal(r.name, "ring_buffer");
	assert_string_equal(r.module, "[data]");
	assert_int_equal(r.offset, 0x10);
	/* code and data registrations do not see each other */
	assert_int_equal(symbolizer_resolve(s, fake, 0x10010, true, &r), 0);
	assert_int_equal(r.resolved, 0);
	/* a registration wins over the ELF symbol under it */
	assert_int_equal(symbolizer_register_region(s, SELF, MARKER, 4, "override", "[api]"), 0);
	assert_int_equal(symbolizer_resolve(s, SELF, MARKER + 1, true, &r), 0);
	assert_string_equal(r.name, "override");
	assert_int_equal(symbolizer_resolve(s, SELF, MARKER + 4, true, &r), 0);
	assert_string_equal(r.name, "symtest_marker");
	assert_int_equal(symbolizer_register_region(s, fake, base, 0, "x", NULL), -EINVAL);
	assert_int_equal(symbolizer_register_region(s, fake, base, 1, "", NULL), -EINVAL);
	struct symbolizer_stats st;
	symbolizer_stats(s, &st);
	assert_int_equal(st.regions, 4);
	symbolizer_forget_pid(s, fake);
	assert_int_equal(symbolizer_resolve(s, fake, base + 10, true, &r), 0);
	assert_int_equal(r.resolved, 0);
	symbolizer_stats(s, &st);
	assert_int_equal(st.regions, 1);
	symbolizer_free(s);

	struct symbolizer_opts o = { .max_regions = 1 };
	s = new_sym(&o);
	assert_int_equal(symbolizer_register_region(s, fake, base, 16, "a", NULL), 0);
	assert_int_equal(symbolizer_register_region(s, fake, base + 16, 16, "b", NULL), -ENOSPC);
	symbolizer_stats(s, &st);
	assert_int_equal(st.region_drops, 1);
	symbolizer_free(s);
}

static void test_data(void **state)
{
	/* maps re-read at once for the mapping made below */
	struct symbolizer *s = new_sym(&(struct symbolizer_opts){ .maps_refresh_ms = 1 });
	struct sym_result r;
	assert_int_equal(symbolizer_resolve_data(s, SELF, (uint64_t)(uintptr_t)&symtest_data_obj[3], &r), 0);
	assert_int_equal(r.resolved, 1);
	assert_string_equal(r.name, "symtest_data_obj");
	assert_int_equal(r.offset, 3 * sizeof(int));
	/* .bss, in the file's last page and in the anonymous mapping after it */
	struct procmaps *m = NULL;
	assert_int_equal(procmaps_load(NULL, SELF, 0, &m), 0);
	int anon = 0;
	for (size_t off = 0; off < sizeof(symtest_bss_obj); off += 4096) {
		uint64_t a = (uint64_t)(uintptr_t)&symtest_bss_obj[off];
		anon += procmaps_find(m, a, NULL)->kind == PROCMAPS_ANON;
		assert_int_equal(symbolizer_resolve_data(s, SELF, a, &r), 0);
		assert_string_equal(r.name, "symtest_bss_obj");
		assert_int_equal(r.offset, off);
	}
	assert_true(anon > 0);
	int local = 0;
	assert_int_equal(symbolizer_resolve_data(s, SELF, (uint64_t)(uintptr_t)&local, &r), 0);
	assert_int_equal(r.resolved, 0);
	if (procmaps_find(m, (uint64_t)(uintptr_t)&local, NULL)->kind == PROCMAPS_STACK) /* not under valgrind */
		assert_string_equal(r.name, "[stack]");
	void *small = malloc(64);
	assert_int_equal(symbolizer_resolve_data(s, SELF, (uint64_t)(uintptr_t)small, &r), 0);
	if (strcmp(r.name, "[heap]") != 0)
		print_message("small malloc not in [heap] but %s\n", r.name);
	free(small);
	char *big = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(big != MAP_FAILED);
	usleep(5000);
	assert_int_equal(symbolizer_resolve_data(s, SELF, (uint64_t)(uintptr_t)big + 100, &r), 0);
	/* the kernel may have merged it with a neighbouring anonymous mapping: the name is the
	 * start of the mapping as maps showed it when the symbolizer read them. A second read here
	 * can differ (other threads, e.g. ASan's allocator, map and unmap next to it meanwhile), so
	 * the name is checked against the offset the symbolizer reported, not against a re-read. */
	procmaps_free(m);
	unsigned long long start = 0;
	assert_int_equal(sscanf(r.name, "anon:%llx", &start), 1);
	assert_true(start <= (uint64_t)(uintptr_t)big);
	char want[64];
	snprintf(want, sizeof(want), "anon:%llx", start);
	assert_string_equal(r.name, want);
	assert_string_equal(r.module, "[anon]");
	assert_int_equal(r.offset, (uint64_t)(uintptr_t)big + 100 - start);
	munmap(big, 1 << 20);
	symbolizer_free(s);
}

static void test_unknown_pid(void **state)
{
	struct symbolizer *s = new_sym(NULL);
	struct sym_result r;
	const uint32_t gone = 0x7ffffff0u;
	assert_int_equal(symbolizer_resolve(s, gone, 0x401000, true, &r), 0);
	assert_int_equal(r.resolved, 0);
	assert_string_equal(r.name, "[unknown]");
	assert_true(r.func_id != 0);
	assert_int_equal(symbolizer_resolve(s, gone, 0x401000, true, &r), 0);
	assert_int_equal(symbolizer_resolve_data(s, gone, 0x1000, &r), 0);
	assert_int_equal(r.resolved, 0);
	struct symbolizer_stats st;
	symbolizer_stats(s, &st);
	assert_int_equal(st.maps_failures, 1); /* not retried within retry_ms */
	assert_int_equal(st.unresolved, 3);
	assert_int_equal(symbolizer_resolve(NULL, 1, 1, true, &r), -EINVAL);
	assert_int_equal(symbolizer_resolve(s, 1, 1, true, NULL), -EINVAL);
	symbolizer_forget_pid(s, gone);
	symbolizer_forget_pid(s, 12345);
	symbolizer_forget_pid(NULL, 1);
	symbolizer_free(s);
	assert_null(symbolizer_free(NULL));
}

/* A fake /proc: <root>/<pid>/maps holding text (NULL: a link to our own maps) and
 * <pid>/root -> "/". */
static void fake_pid(const char *root, uint32_t pid, const char *text)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/%u", root, pid);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/%u/maps", root, pid);
	if (text)
		write_text(p, text);
	else
		assert_int_equal(symlink("/proc/self/maps", p), 0);
	snprintf(p, sizeof(p), "%s/%u/root", root, pid);
	assert_int_equal(symlink("/", p), 0);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void rm_tree(const char *root)
{
	nftw(root, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

static void test_eviction(void **state)
{
	char root[] = "/tmp/symtest_proc.XXXXXX";
	assert_non_null(mkdtemp(root));
	for (uint32_t pid = 1; pid <= 3; pid++)
		fake_pid(root, pid, NULL);
	struct symbolizer_opts o = { .proc_root = root, .max_pids = 2, .max_elf_files = 1 };
	struct symbolizer *s = new_sym(&o);
	int (*volatile fn)(void) = getpid;
	struct sym_result r;
	for (int round = 0; round < 3; round++)
		for (uint32_t pid = 1; pid <= 3; pid++) {
			assert_int_equal(symbolizer_resolve(s, pid, MARKER, true, &r), 0);
			assert_string_equal(r.name, "symtest_marker");
			assert_int_equal(symbolizer_resolve(s, pid, (uint64_t)(uintptr_t)fn, true, &r), 0);
			assert_string_equal(r.name, "getpid");
		}
	struct symbolizer_stats st;
	symbolizer_stats(s, &st);
	print_message("pids cached %llu, pid evictions %llu, elf evictions %llu, elf loads %llu\n",
		      (unsigned long long)st.pids, (unsigned long long)st.pid_evictions,
		      (unsigned long long)st.elf_evictions, (unsigned long long)st.elf_loads);
	assert_int_equal(st.pids, 2);
	assert_int_equal(st.elf_files, 1);
	assert_true(st.pid_evictions >= 7);
	assert_true(st.elf_evictions >= 17);
	assert_int_equal(st.evictions, st.pid_evictions + st.elf_evictions);
	symbolizer_free(s);

	/* the byte budget: room for one symbol table, not for both */
	s = new_sym(&(struct symbolizer_opts){ .proc_root = root });
	assert_int_equal(symbolizer_resolve(s, 1, MARKER, true, &r), 0);
	assert_int_equal(symbolizer_resolve(s, 1, (uint64_t)(uintptr_t)fn, true, &r), 0);
	symbolizer_stats(s, &st);
	uint64_t both = st.bytes;
	symbolizer_free(s);
	s = new_sym(&(struct symbolizer_opts){ .proc_root = root, .max_bytes = both - 1 });
	for (int i = 0; i < 3; i++) {
		assert_int_equal(symbolizer_resolve(s, 1, MARKER, true, &r), 0);
		assert_string_equal(r.name, "symtest_marker");
		assert_int_equal(symbolizer_resolve(s, 1, (uint64_t)(uintptr_t)fn, true, &r), 0);
		assert_string_equal(r.name, "getpid");
	}
	symbolizer_stats(s, &st);
	assert_true(st.elf_evictions >= 5);
	assert_true(st.bytes <= both - 1);
	symbolizer_free(s);
	/* a budget no table fits: unresolved, not a failure */
	s = new_sym(&(struct symbolizer_opts){ .proc_root = root, .max_bytes = 4096 });
	assert_int_equal(symbolizer_resolve(s, 1, MARKER, true, &r), 0);
	assert_int_equal(r.resolved, 0);
	assert_string_equal(r.module, self_base());
	symbolizer_free(s);
	rm_tree(root);
}

/* One maps line per PT_LOAD of path, as the kernel would map it at its link address. */
static void exec_maps(const char *path, char *out, size_t cap)
{
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	elf_version(EV_CURRENT);
	Elf *e = elf_begin(fd, ELF_C_READ, NULL);
	assert_non_null(e);
	size_t n = 0, len = 0;
	assert_int_equal(elf_getphdrnum(e, &n), 0);
	for (size_t i = 0; i < n; i++) {
		GElf_Phdr ph;
		if (!gelf_getphdr(e, (int)i, &ph) || ph.p_type != PT_LOAD || ph.p_filesz == 0)
			continue;
		uint64_t start = ph.p_vaddr & ~0xfffull, end = (ph.p_vaddr + ph.p_filesz + 0xfff) & ~0xfffull;
		len += (size_t)snprintf(out + len, cap - len, "%llx-%llx %c%c%cp %08llx %02x:%02x %llu %s\n",
					(unsigned long long)start, (unsigned long long)end, ph.p_flags & PF_R ? 'r' : '-',
					ph.p_flags & PF_W ? 'w' : '-', ph.p_flags & PF_X ? 'x' : '-',
					(unsigned long long)(ph.p_offset & ~0xfffull), major(st.st_dev), minor(st.st_dev),
					(unsigned long long)st.st_ino, path);
	}
	elf_end(e);
	close(fd);
}

/* Process-exit cleanup: a sampled pid and a registered-only pid disappear from a fake /proc;
 * the sweep forgets their caches and registrations and names them, a live pid stays. */
static void test_sweep_exited(void **state)
{
	char root[] = "/tmp/ms-symsweep-XXXXXX";
	assert_non_null(mkdtemp(root));
	fake_pid(root, 100, NULL);
	fake_pid(root, 200, NULL);
	fake_pid(root, 300, NULL);
	struct symbolizer *s = new_sym(&(struct symbolizer_opts){ .proc_root = root });
	struct sym_result r;
	assert_int_equal(symbolizer_resolve(s, 100, MARKER, true, &r), 0);
	assert_string_equal(r.name, "symtest_marker");
	assert_int_equal(symbolizer_resolve(s, 300, MARKER, true, &r), 0);
	assert_int_equal(symbolizer_register_data(s, 200, 0x10000, 4096, "obj"), 0);
	assert_int_equal(symbolizer_register_data(s, 300, 0x10000, 4096, "obj"), 0);
	uint32_t gone[4];
	assert_int_equal(symbolizer_sweep_exited(s, gone, 4), 0);
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/100", root);
	rm_tree(p);
	snprintf(p, sizeof(p), "%s/200", root);
	rm_tree(p);
	assert_int_equal(symbolizer_sweep_exited(s, gone, 4), 2);
	assert_true((gone[0] == 100 && gone[1] == 200) || (gone[0] == 200 && gone[1] == 100));
	struct symbolizer_stats st;
	symbolizer_stats(s, &st);
	assert_int_equal(st.pids, 1);
	assert_int_equal(st.regions, 1);
	assert_int_equal(symbolizer_resolve_data(s, 300, 0x10010, &r), 0);
	assert_string_equal(r.name, "obj");
	assert_int_equal(symbolizer_sweep_exited(s, NULL, 0), 0);
	assert_int_equal(symbolizer_sweep_exited(NULL, NULL, 0), 0);
	symbolizer_free(s);
	rm_tree(root);
}

static void test_non_pie(void **state)
{
	static const char *const cands[] = { "/usr/lib/llvm-14/bin/yaml2obj", "/usr/lib/llvm-14/bin/FileCheck", NULL };
	const char *path = NULL;
	struct elfsym *es = NULL;
	for (int i = 0; cands[i] && !path; i++) {
		int fd = open(cands[i], O_RDONLY);
		if (fd >= 0 && elfsym_open_fd(fd, NULL, &es) == 0 && elfsym_elf_type(es) == ET_EXEC &&
		    elfsym_count(es, ELFSYM_FUNC) > 0)
			path = cands[i];
		else
			es = elfsym_free(es);
		if (fd >= 0)
			close(fd);
	}
	if (!path) {
		print_message("SKIP: no non-PIE (ET_EXEC) binary with symbols found\n");
		skip();
		return;
	}
	char root[] = "/tmp/symtest_exec.XXXXXX", maps[4096];
	assert_non_null(mkdtemp(root));
	exec_maps(path, maps, sizeof(maps));
	fake_pid(root, 77, maps);
	struct elfsym_hit h;
	assert_int_equal(elfsym_at(es, ELFSYM_FUNC, elfsym_count(es, ELFSYM_FUNC) / 2, &h), 0);
	char want[128];
	snprintf(want, sizeof(want), "%s", h.name);
	uint64_t ip = h.start + (h.size > 1 ? 1 : 0);
	elfsym_free(es);
	struct symbolizer *s = new_sym(&(struct symbolizer_opts){ .proc_root = root });
	struct sym_result r;
	assert_int_equal(symbolizer_resolve(s, 77, ip, true, &r), 0);
	print_message("non-PIE %s: 0x%llx -> %s+%llu\n", path, (unsigned long long)ip, r.name,
		      (unsigned long long)r.offset);
	assert_int_equal(r.resolved, 1);
	assert_string_equal(r.name, want);
	assert_string_equal(r.module, strrchr(path, '/') + 1);
	symbolizer_free(s);
	rm_tree(root);
}

/* A copy of this binary, mapped and then deleted: found through map_files (root only). The
 * running binary (another inode, the same build-id) then shares the copy's table. */
static void test_deleted_and_shared(void **state)
{
	char copy[] = "/tmp/symtest_copy.XXXXXX";
	int out = mkstemp(copy);
	assert_true(out >= 0);
	int in = open("/proc/self/exe", O_RDONLY);
	struct stat st;
	assert_int_equal(fstat(in, &st), 0);
	assert_int_equal(sendfile(out, in, NULL, (size_t)st.st_size), st.st_size);
	close(in);
	void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, out, 0);
	assert_true(p != MAP_FAILED);
	close(out);
	assert_int_equal(unlink(copy), 0);
	/* marker's file offset, from our own mapping of the binary */
	struct procmaps *m = NULL;
	assert_int_equal(procmaps_load(NULL, SELF, 0, &m), 0);
	const struct procmaps_entry *e = procmaps_find(m, MARKER, NULL);
	uint64_t off = MARKER - e->start + e->pgoff;
	procmaps_free(m);
	struct symbolizer *s = new_sym(NULL);
	struct sym_result r;
	struct sym_result d;
	assert_int_equal(symbolizer_resolve(s, SELF, (uint64_t)(uintptr_t)p + off, true, &d), 0);
	assert_int_equal(symbolizer_resolve(s, SELF, MARKER, true, &r), 0);
	assert_string_equal(r.name, "symtest_marker");
	struct symbolizer_stats sst;
	symbolizer_stats(s, &sst);
	if (geteuid() == 0) {
		assert_int_equal(d.resolved, 1);
		assert_string_equal(d.name, "symtest_marker");
		assert_string_equal(d.module, strrchr(copy, '/') + 1);
		assert_true(d.func_id == r.func_id); /* same build-id, same id */
		assert_int_equal(sst.elf_loads, 1);
		assert_int_equal(sst.elf_shared, 1);
	}
	munmap(p, (size_t)st.st_size);
	symbolizer_free(s);
}

static double ns_per(struct symbolizer *s, uint32_t pid, uint64_t ip, bool user, int n)
{
	struct sym_result r;
	struct timespec a, b;
	symbolizer_resolve(s, pid, ip, user, &r); /* warm */
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < n; i++)
		symbolizer_resolve(s, pid, ip + (uint64_t)(i & 7), user, &r);
	clock_gettime(CLOCK_MONOTONIC, &b);
	assert_int_equal(r.resolved, 1);
	return ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / n;
}

static void test_throughput(void **state)
{
	int (*volatile fn)(void) = getpid;
	struct symbolizer *s = new_sym(NULL);
	const int n = 1000000;
	double self = ns_per(s, SELF, MARKER, true, n);
	double libc = ns_per(s, SELF, (uint64_t)(uintptr_t)fn, true, n);
	uint64_t k = kallsyms_addr("schedule");
	double kern = k ? ns_per(s, 0, k, false, n) : 0;
	assert_int_equal(symbolizer_register_region(s, 4242, 0x7f0000000000ull, 256, "synth", "[synthetic]"), 0);
	double reg = ns_per(s, 4242, 0x7f0000000000ull, true, n);
	print_message("cached resolve: %.0f ns (PIE binary), %.0f ns (libc), %.0f ns (kernel), "
		      "%.0f ns (registered region)\n", self, libc, kern, reg);
	symbolizer_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_self_and_libc),
		cmocka_unit_test(test_kernel),
		cmocka_unit_test(test_perfmap_jit),
		cmocka_unit_test(test_registered),
		cmocka_unit_test(test_data),
		cmocka_unit_test(test_unknown_pid),
		cmocka_unit_test(test_eviction),
		cmocka_unit_test(test_sweep_exited),
		cmocka_unit_test(test_non_pie),
		cmocka_unit_test(test_deleted_and_shared),
		cmocka_unit_test(test_throughput),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
