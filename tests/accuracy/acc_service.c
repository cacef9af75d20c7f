/* acc_service: the ground-truth workload of the attribution accuracy suite (docs/BENCHMARKS.md).
 *
 *   acc_service server ADDR PORT NFLOWS NTHREADS TRUTH_FILE [options]
 *   acc_service client ADDR PORT NFLOWS SPORT_BASE DURATION_S [--think-us=N]
 *
 * The server accepts NFLOWS TCP connections on one port; the client opens them from the known
 * source ports SPORT_BASE + k, so flow k's 5-tuple is known. Flow k is served by worker thread
 * k % NTHREADS. Each request of flow k runs work_flow_k() — a function of its own, doing
 * (k + 1) × --work-us of CPU work — and, with --pf-pages, first touches freshly discarded pages
 * of flow k's own data object (so page-fault samples carry an address inside a known object).
 * Every --bg-every-us of wall time a worker runs background_work() for --bg-us: CPU work that
 * belongs to no flow (timers, housekeeping), placed between requests.
 *
 * Truth file (text, written at exit):
 *   func K ADDR               runtime address of work_flow_K (PIE slide = ADDR - symbol value)
 *   func bg ADDR              background_work
 *   object K ADDR SIZE        flow K's data object
 *   flow K SPORT              client source port of flow K
 *   req TID K START END       one request: thread id, flow, CLOCK_MONOTONIC ns before recv()
 *                             and after send() returned (the agent samples with the same clock)
 *   bg TID -1 START END       one background_work run
 * Truth is kept in memory (bounded: TRUTH_MAX entries per thread; the rest is counted in a
 * "dropped" line) and written once at exit, so logging does not perturb the measured work. */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_FLOWS 8
#define MAX_THREADS 8
#define TRUTH_MAX (1u << 20)
#define REQ_BYTES 16
#define PAGE 4096

struct truth {
	uint32_t tid;
	int32_t flow;         /* -1 background */
	uint64_t start, end;
};

struct worker {
	pthread_t thr;
	int idx;
	int nconn;
	int fds[MAX_FLOWS];
	int flow_of[MAX_FLOWS];
	struct truth *log;
	uint32_t n;
	uint64_t dropped;
	uint32_t tid;
};

static struct {
	int nflows, nthreads;
	uint64_t work_iters_per_us;
	uint64_t work_us, bg_us, bg_every_us;
	uint32_t pf_pages;
	uint8_t *objects[MAX_FLOWS];
	size_t object_size;
	volatile sig_atomic_t stop;
} g;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* The unit of CPU work: a dependent multiply-add chain the compiler cannot remove. Each flow's
 * function adds its own constant so identical-code folding cannot merge them. */
static inline uint64_t spin(uint64_t iters, uint64_t acc, uint64_t k)
{
	for (uint64_t i = 0; i < iters; i++) {
		acc = acc * 6364136223846793005ULL + k;
		__asm__ volatile("" : "+r"(acc));
	}
	return acc;
}

static void touch_pages(int k)
{
	if (!g.pf_pages)
		return;
	/* a different window of the object each time; MADV_DONTNEED makes the next touch fault */
	static __thread uint32_t next[MAX_FLOWS];
	size_t npages = g.object_size / PAGE;
	size_t first = next[k] % (npages - g.pf_pages + 1);
	uint8_t *p = g.objects[k] + first * PAGE;
	madvise(p, (size_t)g.pf_pages * PAGE, MADV_DONTNEED);
	for (uint32_t i = 0; i < g.pf_pages; i++)
		p[(size_t)i * PAGE] = (uint8_t)(k + 1);
	next[k] += g.pf_pages;
}

#define WORK_FN(K)                                                                   \
	__attribute__((noinline, used)) uint64_t work_flow_##K(uint64_t us)          \
	{                                                                            \
		touch_pages(K);                                                      \
		return spin(us * g.work_iters_per_us, (uint64_t)K * 7919 + 1,        \
			    0x9e3779b97f4a7c15ULL + K);                              \
	}
WORK_FN(0) WORK_FN(1) WORK_FN(2) WORK_FN(3) WORK_FN(4) WORK_FN(5) WORK_FN(6) WORK_FN(7)

static uint64_t (*const work_fns[MAX_FLOWS])(uint64_t) = {
	work_flow_0, work_flow_1, work_flow_2, work_flow_3,
	work_flow_4, work_flow_5, work_flow_6, work_flow_7,
};

__attribute__((noinline, used)) uint64_t background_work(uint64_t us)
{
	return spin(us * g.work_iters_per_us, 3, 0x5bd1e995ULL);
}

static void calibrate(void)
{
	uint64_t iters = 1000000, t0 = now_ns();
	uint64_t r = spin(iters, 1, 1);
	uint64_t dt = now_ns() - t0;
	__asm__ volatile("" : : "r"(r));
	g.work_iters_per_us = dt ? iters * 1000 / dt : 1000;
	if (!g.work_iters_per_us)
		g.work_iters_per_us = 1;
}

static void record(struct worker *w, int flow, uint64_t start, uint64_t end)
{
	if (w->n >= TRUTH_MAX) {
		w->dropped++;
		return;
	}
	w->log[w->n++] = (struct truth){ w->tid, flow, start, end };
}

static int read_full(int fd, uint8_t *buf, size_t len)
{
	size_t got = 0;
	while (got < len) {
		ssize_t r = recv(fd, buf + got, len - got, 0);
		if (r <= 0)
			return r == 0 ? 0 : -1;
		got += (size_t)r;
	}
	return 1;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	w->tid = (uint32_t)syscall(SYS_gettid);
	struct pollfd pfd[MAX_FLOWS];
	int live = w->nconn;
	uint64_t last_bg = now_ns();
	while (live > 0 && !g.stop) {
		int n = 0;
		for (int i = 0; i < w->nconn; i++) {
			pfd[i].fd = w->fds[i];
			pfd[i].events = POLLIN;
			pfd[i].revents = 0;
			n += w->fds[i] >= 0;
		}
		if (poll(pfd, (nfds_t)w->nconn, 100) < 0 && errno != EINTR)
			break;
		for (int i = 0; i < w->nconn; i++) {
			if (w->fds[i] < 0 || !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			int k = w->flow_of[i];
			uint8_t req[REQ_BYTES];
			uint64_t t0 = now_ns();
			if (read_full(w->fds[i], req, sizeof(req)) <= 0) {
				close(w->fds[i]);
				w->fds[i] = -1;
				live--;
				continue;
			}
			uint64_t r = work_fns[k](g.work_us * (uint64_t)(k + 1));
			memcpy(req + 8, &r, sizeof(r));
			if (send(w->fds[i], req, sizeof(req), MSG_NOSIGNAL) != (ssize_t)sizeof(req)) {
				close(w->fds[i]);
				w->fds[i] = -1;
				live--;
				continue;
			}
			record(w, k, t0, now_ns());
		}
		if (g.bg_us && now_ns() - last_bg >= g.bg_every_us * 1000) {
			uint64_t t0 = now_ns();
			background_work(g.bg_us);
			last_bg = now_ns();
			record(w, -1, t0, last_bg);
		}
	}
	return NULL;
}

static uint64_t opt_u64(int argc, char **argv, const char *name, uint64_t def)
{
	size_t n = strlen(name);
	for (int i = 1; i < argc; i++)
		if (strncmp(argv[i], name, n) == 0 && argv[i][n] == '=')
			return strtoull(argv[i] + n + 1, NULL, 10);
	return def;
}

static int parse_addr(const char *addr, int port, struct sockaddr_storage *ss, socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, addr, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		*len = sizeof(*a4);
		return AF_INET;
	}
	if (inet_pton(AF_INET6, addr, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*a6);
		return AF_INET6;
	}
	return -1;
}

static uint16_t peer_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
		return 0;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

static int write_truth(const char *path, struct worker *ws, int sport_base)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	fprintf(f, "# acc_service truth: work_us=%" PRIu64 " bg_us=%" PRIu64 " bg_every_us=%" PRIu64
		" pf_pages=%u iters_per_us=%" PRIu64 "\n", g.work_us, g.bg_us, g.bg_every_us, g.pf_pages,
		g.work_iters_per_us);
	for (int k = 0; k < g.nflows; k++) {
		fprintf(f, "func %d 0x%" PRIxPTR "\n", k, (uintptr_t)work_fns[k]);
		fprintf(f, "object %d 0x%" PRIxPTR " %zu\n", k, (uintptr_t)g.objects[k], g.object_size);
		fprintf(f, "flow %d %d\n", k, sport_base + k);
	}
	fprintf(f, "func bg 0x%" PRIxPTR "\n", (uintptr_t)background_work);
	uint64_t dropped = 0;
	for (int t = 0; t < g.nthreads; t++) {
		for (uint32_t i = 0; i < ws[t].n; i++) {
			const struct truth *e = &ws[t].log[i];
			fprintf(f, "%s %u %d %" PRIu64 " %" PRIu64 "\n", e->flow < 0 ? "bg" : "req", e->tid,
				e->flow, e->start, e->end);
		}
		dropped += ws[t].dropped;
	}
	fprintf(f, "dropped %" PRIu64 "\n", dropped);
	return fclose(f);
}

static void on_signal(int sig)
{
	(void)sig;
	g.stop = 1;
}

static int server(int argc, char **argv)
{
	if (argc < 7)
		return 2;
	const char *addr = argv[2], *truth = argv[6];
	int port = atoi(argv[3]);
	g.nflows = atoi(argv[4]);
	g.nthreads = atoi(argv[5]);
	g.work_us = opt_u64(argc, argv, "--work-us", 150);
	g.bg_us = opt_u64(argc, argv, "--bg-us", 0);
	g.bg_every_us = opt_u64(argc, argv, "--bg-every-us", 2000);
	g.pf_pages = (uint32_t)opt_u64(argc, argv, "--pf-pages", 0);
	int sport_base = (int)opt_u64(argc, argv, "--sport-base", 0);
	g.object_size = 256 * PAGE;
	if (g.nflows < 1 || g.nflows > MAX_FLOWS || g.nthreads < 1 || g.nthreads > MAX_THREADS ||
	    g.pf_pages > 256)
		return 2;
	calibrate();
	for (int k = 0; k < g.nflows; k++) {
		g.objects[k] = mmap(NULL, g.object_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (g.objects[k] == MAP_FAILED)
			return 1;
	}
	struct sockaddr_storage ss;
	socklen_t slen;
	int fam = parse_addr(addr, port, &ss, &slen);
	int ls = fam < 0 ? -1 : socket(fam, SOCK_STREAM, 0);
	int one = 1;
	if (ls < 0 || setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(ls, (struct sockaddr *)&ss, slen) < 0 || listen(ls, MAX_FLOWS) < 0) {
		perror("listen");
		return 1;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	printf("READY\n");
	fflush(stdout);
	struct worker ws[MAX_THREADS];
	memset(ws, 0, sizeof(ws));
	for (int t = 0; t < g.nthreads; t++) {
		ws[t].idx = t;
		ws[t].log = calloc(TRUTH_MAX, sizeof(struct truth));
		if (!ws[t].log)
			return 1;
	}
	for (int n = 0; n < g.nflows; n++) {
		int fd = accept(ls, NULL, NULL);
		if (fd < 0) {
			perror("accept");
			return 1;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		int k = sport_base ? (int)peer_port(fd) - sport_base : n;
		if (k < 0 || k >= g.nflows) {
			fprintf(stderr, "unexpected peer port %u\n", peer_port(fd));
			return 1;
		}
		struct worker *w = &ws[k % g.nthreads];
		w->fds[w->nconn] = fd;
		w->flow_of[w->nconn++] = k;
	}
	close(ls);
	for (int t = 0; t < g.nthreads; t++)
		pthread_create(&ws[t].thr, NULL, worker_main, &ws[t]);
	for (int t = 0; t < g.nthreads; t++)
		pthread_join(ws[t].thr, NULL);
	int r = write_truth(truth, ws, sport_base);
	for (int t = 0; t < g.nthreads; t++)
		free(ws[t].log);
	printf("DONE\n");
	return r ? 1 : 0;
}

struct client_conn {
	pthread_t thr;
	int fd, k;
	uint64_t end_ns, think_us, requests;
};

static void *client_main(void *arg)
{
	struct client_conn *c = arg;
	uint8_t req[REQ_BYTES] = { 0 };
	while (now_ns() < c->end_ns) {
		memcpy(req, &c->k, sizeof(c->k));
		if (send(c->fd, req, sizeof(req), MSG_NOSIGNAL) != (ssize_t)sizeof(req) ||
		    read_full(c->fd, req, sizeof(req)) <= 0)
			break;
		c->requests++;
		if (c->think_us) {
			struct timespec ts = { 0, (long)c->think_us * 1000L };
			nanosleep(&ts, NULL);
		}
	}
	shutdown(c->fd, SHUT_WR);
	return NULL;
}

static int client(int argc, char **argv)
{
	if (argc < 7)
		return 2;
	const char *addr = argv[2];
	int port = atoi(argv[3]), nflows = atoi(argv[4]), sport_base = atoi(argv[5]);
	double dur = atof(argv[6]);
	uint64_t think = opt_u64(argc, argv, "--think-us", 200);
	if (nflows < 1 || nflows > MAX_FLOWS)
		return 2;
	struct client_conn cs[MAX_FLOWS];
	memset(cs, 0, sizeof(cs));
	uint64_t end = now_ns() + (uint64_t)(dur * 1e9);
	int one = 1;
	for (int k = 0; k < nflows; k++) {
		struct sockaddr_storage ss, local;
		socklen_t slen, llen;
		int fam = parse_addr(addr, port, &ss, &slen);
		parse_addr(fam == AF_INET ? "0.0.0.0" : "::", sport_base + k, &local, &llen);
		int fd = socket(fam, SOCK_STREAM, 0);
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (fd < 0 || bind(fd, (struct sockaddr *)&local, llen) < 0) {
			perror("bind");
			return 1;
		}
		int r = -1;
		for (int tries = 0; tries < 100 && r < 0; tries++) {
			r = connect(fd, (struct sockaddr *)&ss, slen);
			if (r < 0)
				usleep(50000);
		}
		if (r < 0) {
			perror("connect");
			return 1;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		cs[k] = (struct client_conn){ .fd = fd, .k = k, .end_ns = end, .think_us = think };
	}
	for (int k = 0; k < nflows; k++)
		pthread_create(&cs[k].thr, NULL, client_main, &cs[k]);
	uint64_t total = 0;
	for (int k = 0; k < nflows; k++) {
		pthread_join(cs[k].thr, NULL);
		total += cs[k].requests;
		close(cs[k].fd);
	}
	printf("DONE %" PRIu64 "\n", total);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "server") == 0)
		return server(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "client") == 0)
		return client(argc, argv);
	fprintf(stderr, "usage: acc_service server ADDR PORT NFLOWS NTHREADS TRUTH [--work-us=N] [--bg-us=N] "
			"[--bg-every-us=N] [--pf-pages=N] [--sport-base=N]\n"
			"       acc_service client ADDR PORT NFLOWS SPORT_BASE DURATION_S [--think-us=N]\n");
	return 2;
}
