/* evlog: a bounded in-memory log of timestamped protobuf messages (fleet events, fleet
 * anomalies) with its two RPCs — List (the entries since a time, newest last, as a reply whose
 * field 1 repeats the message) and Watch (the backlog since a time, then every new entry, as
 * a server stream). It keeps the last `capacity` entries; older ones are forgotten (ClickHouse
 * keeps the history: a tap hands each entry to storage). It does not build the messages.
 * Thread-safety: one mutex; evlog_add from any thread. */
#ifndef MS_EVLOG_H
#define MS_EVLOG_H

#include <stddef.h>
#include <stdint.h>

#include "rpc.h"

#define EVLOG_MAX_WATCHERS 64
#define EVLOG_LIST_DEFAULT 100
#define EVLOG_LIST_MAX 10000

struct evlog;

/* Sees every entry added (e.g. to store it durably), on the adding thread after the log's lock
 * is released; it must not block for long. */
typedef void (*evlog_tap_fn)(void *arg, uint64_t ts_ns, const uint8_t *msg, size_t len);

int evlog_new(uint32_t capacity, struct evlog **ret);
/* Call after the rpc server is gone. NULL-safe; returns NULL. */
struct evlog *evlog_free(struct evlog *l);
/* Appends one packed message with its time and streams it to the watchers (a watcher whose
 * queue is full misses it; counted). */
int evlog_add(struct evlog *l, uint64_t ts_ns, const uint8_t *msg, size_t len);
/* Sets the tap; call before anything is added. */
void evlog_set_tap(struct evlog *l, evlog_tap_fn tap, void *arg);
/* Registers List and Watch under these names (requests: since_ns = 1, limit = 2). */
void evlog_methods(struct evlog *l, const char *list_name, const char *watch_name, struct rpc_method out[2]);
uint64_t evlog_total(struct evlog *l);
uint64_t evlog_watch_drops(struct evlog *l);

#endif
