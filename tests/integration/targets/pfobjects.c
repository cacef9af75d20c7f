/* Page-fault target: faults in the pages of known data objects — two .bss arrays (ELF data
 * symbols pf_alpha and pf_beta) and one anonymous mapping (registered through the control API
 * by the test when the agent offers it) — round after round (MADV_DONTNEED makes every touch a
 * fault again). Protocol: prints "READY <pid> <region_addr> <region_len>", waits for a line on
 * stdin, runs, then prints "DONE <faults per round per object: alpha beta region> <rounds>". */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096
#define ALPHA (12u << 20)
#define BETA (4u << 20)
#define REGION (8u << 20)

char pf_alpha[ALPHA];
char pf_beta[BETA];

static void touch(volatile char *p, size_t len)
{
	for (size_t off = 0; off < len; off += PAGE)
		p[off] = (char)off;
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 4;
	char *region = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (region == MAP_FAILED)
		return 1;
	/* the .bss arrays start page-aligned only by luck: fault whole pages inside them */
	uintptr_t a0 = ((uintptr_t)pf_alpha + PAGE - 1) & ~(uintptr_t)(PAGE - 1);
	uintptr_t b0 = ((uintptr_t)pf_beta + PAGE - 1) & ~(uintptr_t)(PAGE - 1);
	size_t alen = ((uintptr_t)pf_alpha + ALPHA - a0) & ~(size_t)(PAGE - 1);
	size_t blen = ((uintptr_t)pf_beta + BETA - b0) & ~(size_t)(PAGE - 1);
	printf("READY %d %lu %u\n", getpid(), (unsigned long)(uintptr_t)region, REGION);
	fflush(stdout);
	char line[64];
	if (!fgets(line, sizeof(line), stdin))
		return 1;
	for (int r = 0; r < rounds; r++) {
		touch((volatile char *)a0, alen);
		touch((volatile char *)b0, blen);
		touch(region, REGION);
		madvise((void *)a0, alen, MADV_DONTNEED);
		madvise((void *)b0, blen, MADV_DONTNEED);
		madvise(region, REGION, MADV_DONTNEED);
	}
	printf("DONE %zu %zu %u %d\n", alen / PAGE, blen / PAGE, REGION / PAGE, rounds);
	fflush(stdout);
	/* stay alive until told, so the agent can still read our maps when it analyses */
	if (!fgets(line, sizeof(line), stdin))
		return 0;
	return 0;
}
