/* Symbolizer target: spends its CPU time in four known functions — hot_alpha and hot_beta in
 * this executable (built PIE and non-PIE by the test), lib_hot_gamma in a shared library, and
 * jit_hot_delta, machine code copied into anonymous executable memory and named only in
 * /tmp/perf-PID.map (as a JIT would). Protocol: prints "READY <pid> <jit address>", runs for
 * the given seconds, prints "DONE", then waits for stdin to close before it exits. x86-64 only (the JIT bytes). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

unsigned long lib_hot_gamma(unsigned long n);

__attribute__((noinline)) unsigned long hot_alpha(unsigned long n)
{
	volatile unsigned long acc = 1;
	for (unsigned long i = 0; i < n; i++)
		acc = acc * 3 + i;
	return acc;
}

__attribute__((noinline)) unsigned long hot_beta(unsigned long n)
{
	volatile unsigned long acc = 7;
	for (unsigned long i = 0; i < n; i++)
		acc ^= acc << 1 | i;
	return acc;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 3.0;
	/* mov ecx, 2000000; 1: dec ecx; jnz 1b; ret */
	static const unsigned char code[] = { 0xb9, 0x80, 0x84, 0x1e, 0x00, 0xff, 0xc9, 0x75, 0xfc, 0xc3 };
	unsigned char *jit = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (jit == MAP_FAILED)
		return 1;
	memcpy(jit, code, sizeof(code));
	if (mprotect(jit, 4096, PROT_READ | PROT_EXEC) < 0)
		return 1;
	char path[64];
	snprintf(path, sizeof(path), "/tmp/perf-%d.map", getpid());
	FILE *f = fopen(path, "w");
	if (!f)
		return 1;
	fprintf(f, "%lx %zx jit_hot_delta\n", (unsigned long)(uintptr_t)jit, sizeof(code));
	fclose(f);
	void (*delta)(void) = (void (*)(void))(uintptr_t)jit;
	printf("READY %d %lx\n", getpid(), (unsigned long)(uintptr_t)jit);
	fflush(stdout);
	/* each call is about a millisecond: the loop around them is a negligible share */
	double end = now() + secs;
	unsigned long sink = 0;
	while (now() < end) {
		sink += hot_alpha(400000);
		sink += hot_beta(400000);
		sink += lib_hot_gamma(400000);
		delta();
	}
	printf("DONE %lu\n", sink & 1);
	fflush(stdout);
	/* stay (idle) until stdin closes: the profiler may still be resolving our addresses */
	while (getchar() != EOF)
		;
	unlink(path);
	return 0;
}
