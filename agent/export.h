/* export: the consumer of closed windows. One worker thread takes each window from the loop's
 * closed-window queue, symbolizes it off the hot path (code addresses → functions, rows merged
 * by function), then hands it to the exporters: the JSON-lines window log, the /metrics snapshot,
 * the run summary and (later modules) the uplink. It never reaches back into the loop.
 * Thread-safety: export_start/stop from the main thread; the summary/snapshot accessors lock. */
#ifndef MS_EXPORT_H
#define MS_EXPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct analyze;
struct bqueue;
struct stacks;
struct symbolizer;
struct window;
struct metrics;

struct export_opts {
	struct bqueue *in;            /* closed windows from the loop */
	struct symbolizer *sym;       /* owned by the caller; used only by the worker */
	struct analyze *analyze;      /* memory analyzers (analyze.h), owned by the caller; may be NULL */
	struct stacks *stacks;        /* stack ids -> frames (stacks.h), owned by the caller; may be NULL */
	struct metrics *metrics;      /* may be NULL */
	const char *window_log;       /* path or NULL/"" */
	bool summary;                 /* keep the cumulative run summary (export_print_summary);
				       * costs O(rows × tracked entries) per window, so off unless asked */
	const char *agent_id;
	uint64_t *closed_bytes;       /* loop_opts.closed_bytes: the worker subtracts window_bytes of
				       * each window it pops; may be NULL */
	/* optional hook, called on the worker with each symbolized window; takes ownership when it
	 * returns 0 (e.g. the uplink), else the worker frees it */
	int (*forward)(void *arg, struct window *w);
	void *forward_arg;
};

struct export;

int export_start(const struct export_opts *opts, struct export **ret);
/* Closes the input queue, lets the worker finish every queued window, joins it. */
void export_stop(struct export *e);
/* Prints the run's top flows and functions (cumulative, bounded) to out. */
void export_print_summary(struct export *e, FILE *out, int k);
/* Cumulative samples seen (Σ over windows). */
uint64_t export_samples_total(struct export *e);
struct export *export_free(struct export *e);

/* Symbolizes w in place: resolves each row's (pid, ip) to a function id, merges rows that
 * differ only in code address, and adds their functions to w->funcs (entries already there, e.g.
 * stack frames, are kept). Exposed for tests and the benchmark. */
int export_symbolize(struct symbolizer *sym, struct window *w);
/* Writes w as one JSON line into a malloc'd buffer. */
int export_window_json(const struct window *w, const char *agent_id, char **ret, size_t *ret_len);

#endif
