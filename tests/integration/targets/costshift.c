/* Cost-shift target: burns CPU in cost_steady() until SIGUSR1, then in cost_regressed() — the
 * shape of a deploy that moves a service's time into a new hot path. Prints "READY <pid>". */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

static volatile sig_atomic_t shifted;

static void on_usr1(int sig)
{
	(void)sig;
	shifted = 1;
}

__attribute__((noinline)) unsigned long cost_steady(unsigned long n)
{
	volatile unsigned long acc = 1;
	for (unsigned long i = 0; i < n; i++)
		acc = acc * 5 + i;
	return acc;
}

__attribute__((noinline)) unsigned long cost_regressed(unsigned long n)
{
	volatile unsigned long acc = 3;
	for (unsigned long i = 0; i < n; i++)
		acc ^= acc << 3 | i;
	return acc;
}

int main(void)
{
	signal(SIGUSR1, on_usr1);
	printf("READY %d\n", getpid());
	fflush(stdout);
	unsigned long sink = 0;
	for (;;) /* killed by the test */
		sink += shifted ? cost_regressed(200000) : cost_steady(200000);
	return (int)(sink & 1);
}
