/* elfsym: ELF symbol tables through libelf (see elfsym.h). */
#include "elfsym.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEF_MAX_FILE (4ull << 30)
#define DEF_MAX_SYMS (4u << 20)
#define DEF_MAX_STR (128ull << 20)
#define NOTE_MAX (64u << 10)

struct sym {
	uint64_t addr;
	uint32_t size;     /* clamped to 4 GiB - 1 */
	uint32_t name_off; /* into pool */
};

struct load {
	uint64_t off, filesz, memsz, vaddr;
};

struct elfsym {
	int type;
	enum elfsym_source src;
	uint8_t build_id[ELFSYM_BUILD_ID_MAX];
	size_t build_id_len;
	struct load loads[ELFSYM_MAX_LOADS];
	size_t nloads;
	struct sym *syms[2];
	size_t nsyms[2];
	char *pool;
	size_t pool_len, pool_cap;
};

/* A candidate during loading: the name still points into libelf's string table. */
struct cand {
	uint64_t addr, size;
	const char *name;
	uint8_t bind_rank; /* 0 GLOBAL, 1 WEAK, 2 LOCAL/other */
	uint8_t kind;
};

struct limits {
	uint64_t max_file;
	uint32_t max_syms;
	uint64_t max_str;
};

static pthread_once_t elf_once = PTHREAD_ONCE_INIT;
static int elf_ready;

static void elf_init(void)
{
	elf_ready = elf_version(EV_CURRENT) != EV_NONE;
}

static size_t underscores(const char *s)
{
	return strspn(s, "_");
}

/* Address order, then the preferred name first (see elfsym_open_fd). */
static int cand_cmp(const void *pa, const void *pb)
{
	const struct cand *a = pa, *b = pb;
	if (a->kind != b->kind)
		return a->kind < b->kind ? -1 : 1;
	if (a->addr != b->addr)
		return a->addr < b->addr ? -1 : 1;
	if ((a->size != 0) != (b->size != 0))
		return a->size ? -1 : 1;
	size_t ua = underscores(a->name), ub = underscores(b->name);
	if (ua != ub)
		return ua < ub ? -1 : 1;
	if (a->bind_rank != b->bind_rank)
		return a->bind_rank < b->bind_rank ? -1 : 1;
	size_t la = strnlen(a->name, ELFSYM_NAME_MAX), lb = strnlen(b->name, ELFSYM_NAME_MAX);
	if (la != lb)
		return la < lb ? -1 : 1;
	return strncmp(a->name, b->name, ELFSYM_NAME_MAX);
}

static int pool_add(struct elfsym *es, const char *s, const struct limits *lim, uint32_t *ret_off)
{
	size_t len = strnlen(s, ELFSYM_NAME_MAX - 1);
	if (es->pool_len + len + 1 > lim->max_str)
		return -ENOSPC;
	if (es->pool_len + len + 1 > es->pool_cap) {
		size_t cap = es->pool_cap ? es->pool_cap : 16384;
		while (cap < es->pool_len + len + 1)
			cap *= 2;
		char *np = realloc(es->pool, cap);
		if (!np)
			return -ENOMEM;
		es->pool = np;
		es->pool_cap = cap;
	}
	memcpy(es->pool + es->pool_len, s, len);
	es->pool[es->pool_len + len] = '\0';
	*ret_off = (uint32_t)es->pool_len;
	es->pool_len += len + 1;
	return 0;
}

/* Sorts the candidates, keeps one per (kind, address) and copies its name into the pool. */
static int commit(struct elfsym *es, struct cand *c, size_t n, const struct limits *lim)
{
	if (n > 1)
		qsort(c, n, sizeof(*c), cand_cmp);
	size_t per[2] = { 0, 0 };
	for (size_t i = 0; i < n; i++)
		if (i == 0 || c[i].kind != c[i - 1].kind || c[i].addr != c[i - 1].addr)
			per[c[i].kind]++;
	for (int k = 0; k < 2; k++) {
		es->syms[k] = per[k] ? malloc(per[k] * sizeof(struct sym)) : NULL;
		if (per[k] && !es->syms[k])
			return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		if (i && c[i].kind == c[i - 1].kind && c[i].addr == c[i - 1].addr)
			continue;
		struct sym *s = &es->syms[c[i].kind][es->nsyms[c[i].kind]];
		int r = pool_add(es, c[i].name, lim, &s->name_off);
		if (r == -ENOSPC)
			break; /* bounded: the rest of the table is dropped */
		if (r < 0)
			return r;
		s->addr = c[i].addr;
		s->size = c[i].size > UINT32_MAX - 1 ? UINT32_MAX - 1 : (uint32_t)c[i].size;
		es->nsyms[c[i].kind]++;
	}
	return 0;
}

/* Collects the defined FUNC/IFUNC/OBJECT symbols of one symbol table section. */
static int read_symtab(struct elfsym *es, Elf *elf, Elf_Scn *scn, const GElf_Shdr *sh,
		       uint64_t file_size, const struct limits *lim)
{
	size_t ent = gelf_fsize(elf, ELF_T_SYM, 1, EV_CURRENT);
	if (sh->sh_type == SHT_NOBITS || (sh->sh_flags & SHF_COMPRESSED) || ent == 0 ||
	    sh->sh_entsize != ent || sh->sh_size > file_size)
		return 0;
	Elf_Data *d = elf_getdata(scn, NULL);
	if (!d || d->d_size < ent)
		return 0;
	size_t nsyms = d->d_size / ent, n = 0;
	if (nsyms > lim->max_syms)
		nsyms = lim->max_syms;
	struct cand *c = malloc(nsyms * sizeof(*c));
	if (!c)
		return -ENOMEM;
	for (size_t i = 1; i < nsyms; i++) {
		GElf_Sym s;
		if (!gelf_getsym(d, (int)i, &s))
			break;
		int t = GELF_ST_TYPE(s.st_info), b = GELF_ST_BIND(s.st_info);
		uint8_t kind;
		if (t == STT_FUNC || t == STT_GNU_IFUNC)
			kind = ELFSYM_FUNC;
		else if (t == STT_OBJECT)
			kind = ELFSYM_DATA;
		else
			continue;
		if (s.st_shndx == SHN_UNDEF || s.st_shndx == SHN_ABS || s.st_shndx == SHN_COMMON ||
		    s.st_value == 0)
			continue;
		const char *name = elf_strptr(elf, sh->sh_link, s.st_name);
		if (!name || !name[0])
			continue;
		c[n++] = (struct cand){
			.addr = s.st_value,
			.size = s.st_size,
			.name = name,
			.bind_rank = b == STB_GLOBAL ? 0 : b == STB_WEAK ? 1 : 2,
			.kind = kind,
		};
	}
	int r = commit(es, c, n, lim);
	free(c);
	return r;
}

/* First section of type t, or NULL. */
static Elf_Scn *find_scn(Elf *elf, Elf64_Word t, GElf_Shdr *ret_sh)
{
	Elf_Scn *scn = NULL;
	while ((scn = elf_nextscn(elf, scn)))
		if (gelf_getshdr(scn, ret_sh) && ret_sh->sh_type == t)
			return scn;
	return NULL;
}

static void scan_notes(Elf_Data *d, uint8_t *id, size_t *ret_len)
{
	size_t pos = 0, name_off, desc_off;
	GElf_Nhdr nh;
	while (d && (pos = gelf_getnote(d, pos, &nh, &name_off, &desc_off)) > 0) {
		if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
		    memcmp((const char *)d->d_buf + name_off, "GNU", 4) == 0 && nh.n_descsz > 0 &&
		    nh.n_descsz <= ELFSYM_BUILD_ID_MAX) {
			memcpy(id, (const char *)d->d_buf + desc_off, nh.n_descsz);
			*ret_len = nh.n_descsz;
			return;
		}
	}
}

/* The build-id from PT_NOTE segments (present even without section headers), else from
 * SHT_NOTE sections (separate debug files). */
static void read_build_id(Elf *elf, uint64_t file_size, uint8_t *id, size_t *ret_len)
{
	size_t nph = 0;
	*ret_len = 0;
	if (elf_getphdrnum(elf, &nph) == 0)
		for (size_t i = 0; i < nph && !*ret_len; i++) {
			GElf_Phdr ph;
			if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_NOTE || ph.p_filesz > NOTE_MAX ||
			    ph.p_offset > file_size || ph.p_filesz > file_size - ph.p_offset)
				continue;
			Elf_Type t = ph.p_align == 8 ? ELF_T_NHDR8 : ELF_T_NHDR;
			scan_notes(elf_getdata_rawchunk(elf, (int64_t)ph.p_offset, ph.p_filesz, t), id, ret_len);
		}
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;
	while (!*ret_len && (scn = elf_nextscn(elf, scn)))
		if (gelf_getshdr(scn, &sh) && sh.sh_type == SHT_NOTE && sh.sh_size <= NOTE_MAX)
			scan_notes(elf_getdata(scn, NULL), id, ret_len);
}

static int read_loads(struct elfsym *es, Elf *elf)
{
	size_t nph = 0;
	if (elf_getphdrnum(elf, &nph) != 0)
		return -ENOEXEC;
	for (size_t i = 0; i < nph; i++) {
		GElf_Phdr ph;
		if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD)
			continue;
		if (es->nloads == ELFSYM_MAX_LOADS || ph.p_filesz > ph.p_memsz ||
		    ph.p_offset > UINT64_MAX - ph.p_memsz)
			return -ENOEXEC;
		es->loads[es->nloads++] = (struct load){ ph.p_offset, ph.p_filesz, ph.p_memsz, ph.p_vaddr };
	}
	return es->nloads ? 0 : -ENOEXEC;
}

/* .symtab of <debug_dir>/.build-id/xx/yyyy.debug when its build-id equals ours. */
static int read_debug_file(struct elfsym *es, const char *dir, const struct limits *lim)
{
	char path[4096], hex[2 * ELFSYM_BUILD_ID_MAX + 1];
	if (es->build_id_len < 2)
		return 0;
	for (size_t i = 0; i < es->build_id_len; i++)
		snprintf(hex + 2 * i, 3, "%02x", es->build_id[i]);
	int n = snprintf(path, sizeof(path), "%s/.build-id/%.2s/%s.debug", dir, hex, hex + 2);
	if (n < 0 || (size_t)n >= sizeof(path))
		return 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return 0;
	struct stat st;
	int r = 0;
	Elf *elf = NULL;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size <= lim->max_file &&
	    (elf = elf_begin(fd, ELF_C_READ, NULL)) && elf_kind(elf) == ELF_K_ELF) {
		uint8_t id[ELFSYM_BUILD_ID_MAX];
		size_t idlen;
		GElf_Shdr sh;
		Elf_Scn *scn;
		read_build_id(elf, (uint64_t)st.st_size, id, &idlen);
		if (idlen == es->build_id_len && memcmp(id, es->build_id, idlen) == 0 &&
		    (scn = find_scn(elf, SHT_SYMTAB, &sh)))
			r = read_symtab(es, elf, scn, &sh, (uint64_t)st.st_size, lim);
	}
	if (elf)
		elf_end(elf);
	close(fd);
	return r;
}

static void drop_syms(struct elfsym *es)
{
	for (int k = 0; k < 2; k++) {
		free(es->syms[k]);
		es->syms[k] = NULL;
		es->nsyms[k] = 0;
	}
	es->pool_len = 0;
}

static int load_elf(struct elfsym *es, Elf *elf, uint64_t size, const struct elfsym_opts *o,
		    const struct limits *lim)
{
	GElf_Ehdr eh;
	if (elf_kind(elf) != ELF_K_ELF || !gelf_getehdr(elf, &eh) ||
	    (eh.e_type != ET_EXEC && eh.e_type != ET_DYN))
		return -ENOEXEC;
	es->type = eh.e_type;
	int r = read_loads(es, elf);
	if (r < 0)
		return r;
	read_build_id(elf, size, es->build_id, &es->build_id_len);
	/* Sources in order of richness; the first with functions wins. */
	GElf_Shdr sh;
	Elf_Scn *scn = find_scn(elf, SHT_SYMTAB, &sh);
	if (scn && (r = read_symtab(es, elf, scn, &sh, size, lim)) < 0)
		return r;
	if (es->nsyms[ELFSYM_FUNC]) {
		es->src = ELFSYM_SRC_SYMTAB;
		return 0;
	}
	drop_syms(es);
	const char *dir = o && o->debug_dir ? o->debug_dir : "/usr/lib/debug";
	if (dir[0] && (r = read_debug_file(es, dir, lim)) < 0)
		return r;
	if (es->nsyms[ELFSYM_FUNC]) {
		es->src = ELFSYM_SRC_DEBUGFILE;
		return 0;
	}
	drop_syms(es);
	scn = find_scn(elf, SHT_DYNSYM, &sh);
	if (scn && (r = read_symtab(es, elf, scn, &sh, size, lim)) < 0)
		return r;
	es->src = es->nsyms[ELFSYM_FUNC] || es->nsyms[ELFSYM_DATA] ? ELFSYM_SRC_DYNSYM : ELFSYM_SRC_NONE;
	return 0;
}

int elfsym_open_fd(int fd, const struct elfsym_opts *opts, struct elfsym **ret_es)
{
	struct limits lim = {
		.max_file = opts && opts->max_file_bytes ? opts->max_file_bytes : DEF_MAX_FILE,
		.max_syms = opts && opts->max_symbols ? opts->max_symbols : DEF_MAX_SYMS,
		.max_str = opts && opts->max_str_bytes ? opts->max_str_bytes : DEF_MAX_STR,
	};
	if (lim.max_str > UINT32_MAX)
		lim.max_str = UINT32_MAX; /* name offsets are 32-bit */
	pthread_once(&elf_once, elf_init);
	if (!elf_ready)
		return -EIO;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -ENOEXEC;
	if ((uint64_t)st.st_size > lim.max_file)
		return -EFBIG;
	struct elfsym *es = calloc(1, sizeof(*es));
	if (!es)
		return -ENOMEM;
	/* ELF_C_READ: libelf preads what it needs instead of mapping the file. */
	Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
	int r = elf ? load_elf(es, elf, (uint64_t)st.st_size, opts, &lim) : -ENOEXEC;
	if (elf)
		elf_end(elf);
	if (r < 0) {
		elfsym_free(es);
		return r;
	}
	*ret_es = es;
	return 0;
}

int elfsym_read_build_id(int fd, uint8_t ret_id[ELFSYM_BUILD_ID_MAX], size_t *ret_len)
{
	pthread_once(&elf_once, elf_init);
	if (!elf_ready)
		return -EIO;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -ENOEXEC;
	Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
	if (!elf)
		return -ENOEXEC;
	int r = -ENOEXEC;
	if (elf_kind(elf) == ELF_K_ELF) {
		read_build_id(elf, (uint64_t)st.st_size, ret_id, ret_len);
		r = 0;
	}
	elf_end(elf);
	return r;
}

struct elfsym *elfsym_free(struct elfsym *es)
{
	if (es) {
		drop_syms(es);
		free(es->pool);
		free(es);
	}
	return NULL;
}

int elfsym_elf_type(const struct elfsym *es)
{
	return es->type;
}

enum elfsym_source elfsym_source(const struct elfsym *es)
{
	return es->src;
}

const uint8_t *elfsym_build_id(const struct elfsym *es, size_t *ret_len)
{
	*ret_len = es->build_id_len;
	return es->build_id_len ? es->build_id : NULL;
}

int elfsym_file_to_vaddr(const struct elfsym *es, uint64_t off, bool with_bss, uint64_t *ret_vaddr)
{
	for (size_t i = 0; i < es->nloads; i++) {
		const struct load *l = &es->loads[i];
		if (off >= l->off && off - l->off < (with_bss ? l->memsz : l->filesz)) {
			*ret_vaddr = off - l->off + l->vaddr;
			return 0;
		}
	}
	return -ENOENT;
}

static void fill(const struct elfsym *es, const struct sym *s, struct elfsym_hit *h)
{
	h->name = es->pool + s->name_off;
	h->start = s->addr;
	h->size = s->size;
}

int elfsym_lookup(const struct elfsym *es, enum elfsym_kind kind, uint64_t vaddr, struct elfsym_hit *ret_hit)
{
	const struct sym *v = es->syms[kind];
	size_t lo = 0, hi = es->nsyms[kind];
	/* first symbol starting above vaddr; the one before it is the candidate */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v[mid].addr <= vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return -ENOENT;
	const struct sym *s = &v[lo - 1];
	if (s->size && vaddr - s->addr >= s->size)
		return -ENOENT;
	fill(es, s, ret_hit);
	return 0;
}

size_t elfsym_count(const struct elfsym *es, enum elfsym_kind kind)
{
	return es->nsyms[kind];
}

int elfsym_at(const struct elfsym *es, enum elfsym_kind kind, size_t idx, struct elfsym_hit *ret_hit)
{
	if (idx >= es->nsyms[kind])
		return -ENOENT;
	fill(es, &es->syms[kind][idx], ret_hit);
	return 0;
}

size_t elfsym_mem_bytes(const struct elfsym *es)
{
	return sizeof(*es) + (es->nsyms[0] + es->nsyms[1]) * sizeof(struct sym) + es->pool_cap;
}
