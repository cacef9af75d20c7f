/* wire: the protobuf codec of the fleet wire (proto/ms.proto, SPEC §5). The agent encodes a
 * closed window (given as a struct wire_window) into a Window with per-window dictionaries and
 * column-wise packed rows, wraps it in a Request with its token; the coordinator decodes and
 * validates a Request into plain structs that do not depend on the agent's window.h, and both
 * sides encode/decode the Ack. It is not a transport (bus.h moves the bytes) and keeps no state
 * between calls. Every decoded input is untrusted: sizes, counts, indices and string lengths
 * are checked against the WIRE_MAX_* bounds before anything is copied.
 * Thread-safety: no shared state; a struct wire_window has one owner at a time.
 *
 * Stability: struct wire_window and what it points to is the coordinator's internal interface
 * to its sinks (ClickHouse writer): fields are only added at the end of a struct. */
#ifndef MS_WIRE_H
#define MS_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ms_abi.h"

#define WIRE_PROTOCOL 1

/* Bounds on decoded input (an agent never produces more; the encoder refuses more with
 * -E2BIG rather than sending something the coordinator would reject). */
#define WIRE_MAX_ROWS (1u << 21)
#define WIRE_MAX_DICT (1u << 20)   /* flows, funcs, pids, stack ids, objects, modules: each */
#define WIRE_MAX_EVENTS 64
#define WIRE_MAX_CPUS 4096
#define WIRE_MAX_FINDINGS 4096     /* false sharing, remote DRAM, anomalies: each */
#define WIRE_MAX_LIST 16           /* offsets, pids, func ids of one false-sharing finding */
#define WIRE_MAX_LABELS 32
#define WIRE_ID_MAX 128            /* agent id, including the NUL: 1..127 bytes */
#define WIRE_NAME_MAX 128          /* function / object / module names, including the NUL */
#define WIRE_TOKEN_MAX 256
#define WIRE_MAX_STACKS (1u << 14) /* stack dictionary entries of one window */
#define WIRE_MAX_FRAMES 128        /* frames of one stack */
#define WIRE_ACK_MAX 1024          /* an encoded Ack never exceeds this */

#define WIRE_NO_STACK UINT64_MAX   /* row without a stack id (same value as the agent's) */
#define WIRE_NONE UINT32_MAX       /* row index of "no dictionary entry" */

/* One rollup row: the aggregation key and its sums. Ids are resolved by the decoder; *_ix are
 * indices into the window's arrays (WIRE_NONE when the id is 0 / none / has no entry). */
struct wire_row {
	uint64_t flow_id;     /* 0 = unattributed */
	uint64_t func_id;     /* 0 = unknown function */
	uint64_t stack_id;    /* WIRE_NO_STACK = none */
	uint64_t object_id;   /* data object, 0 = none */
	uint64_t samples;
	double norm_cost;     /* Σ period × multiplex scale / GSO segments; whole units on the wire */
	uint32_t pid;
	uint32_t flow_ix;     /* index into flows[] or WIRE_NONE (decoder output; encoder ignores) */
	uint32_t func_ix;     /* index into funcs[] or WIRE_NONE (decoder output; encoder ignores) */
	uint32_t object_ix;   /* index into objects[] or WIRE_NONE (decoder output; encoder ignores) */
	uint16_t event;       /* index into events[] */
	int16_t numa_node;    /* memory node of the data address, -1 = unknown */
	uint8_t dir;          /* enum ms_dir */
	uint8_t iclass;       /* interference class of the event (< 32) */
	uint8_t user_mode;    /* 0 kernel, 1 user */
	uint8_t _pad;
};

struct wire_flow {
	uint64_t flow_id;
	bool has_tuple;       /* false: the agent knew the id but not the tuple */
	struct ms_flow_tuple tuple; /* IPv4 as IPv4-mapped IPv6, ports host order (ms_abi.h) */
};

struct wire_func {
	uint64_t func_id;
	char name[WIRE_NAME_MAX];
	char module[WIRE_NAME_MAX];
};

struct wire_object {
	uint64_t object_id;
	char name[WIRE_NAME_MAX];
	uint64_t addr, size;
};

struct wire_event {
	char name[48];
	uint8_t source;       /* 0 hw, 1 sw */
};

/* Counter deltas over the window (SPEC §13 names; bpf[] indexed by enum ms_counter). */
struct wire_counters {
	uint64_t bpf[MS_CNT__MAX];
	uint64_t processed, lost, agg_degraded, agg_dropped, flows_overflow;
};

struct wire_false_sharing {
	uint64_t line_addr, object_id, writers, readers;
	double score;
	bool true_sharing;
	uint32_t noffsets, npids, nfuncs;
	uint32_t offsets[WIRE_MAX_LIST];
	uint32_t pids[WIRE_MAX_LIST];
	uint64_t func_ids[WIRE_MAX_LIST];
};

struct wire_remote_dram {
	uint64_t flow_id, object_id, samples;
	int32_t mem_node, cpu_node;
	double cost;
};

struct wire_anomaly {
	char ifname[32];
	char metric[32];
	uint32_t ifindex;
	uint32_t kind;        /* ms.v1.AnomalyKind */
	double value, baseline;
	uint64_t ts_ns;
};

/* A stack dictionary entry: kernel frames then user frames, each part innermost first, as
 * function ids whose names are in the window's funcs (the encoder puts every frame's function
 * into the Window's function dictionary). The frames live in the window's frame arrays
 * (stack_func_ids / stack_func_ix), sized by the frames actually present: a fixed 128-frame
 * array per stack made a hostile 50 KB window of empty stacks decode into 24 MiB. */
struct wire_stack {
	uint64_t stack_id;    /* the stable id rows carry in stack_id */
	uint16_t nkernel, nuser;  /* nkernel + nuser <= WIRE_MAX_FRAMES */
	uint32_t _pad;
	uint64_t *func_ids;   /* nkernel + nuser entries; 0 = unknown function */
	uint32_t *func_ix;    /* likewise: index into funcs[] or WIRE_NONE (decoder output; NULL in
			       * encoder input) */
};

/* A closed window: the encoder's input and the decoder's output. Arrays are heap-allocated
 * and owned by the struct (wire_window_free releases them). */
struct wire_window {
	char agent_id[WIRE_ID_MAX];
	uint64_t seq;
	uint64_t start_ns, end_ns;    /* CLOCK_REALTIME */
	uint8_t mode;                 /* 0 sentinel, 1 diagnostic */
	uint64_t budget_per_cpu;
	struct wire_counters c;
	uint64_t samples;             /* Σ rows[].samples (decoder output; encoder ignores) */
	uint32_t nevents;
	struct wire_event events[WIRE_MAX_EVENTS];
	uint32_t ncpu;
	uint64_t *cpu_emitted;
	uint32_t nrows, nflows, nfuncs, nobjects;
	struct wire_row *rows;
	struct wire_flow *flows;
	struct wire_func *funcs;
	struct wire_object *objects;
	uint32_t nfalse_sharing, nremote_dram, nanomalies;
	struct wire_false_sharing *false_sharing;
	struct wire_remote_dram *remote_dram;
	struct wire_anomaly *anomalies;
	uint32_t nstacks;             /* <= WIRE_MAX_STACKS */
	struct wire_stack *stacks;    /* owned like the other arrays */
	uint64_t *stack_func_ids;     /* the frames of stacks[] (owned; NULL when not built here) */
	uint32_t *stack_func_ix;
};

/* Allocates a zeroed window with room for the given counts (each may be 0). -ENOMEM/-E2BIG. */
int wire_window_new(uint32_t nrows, uint32_t nflows, uint32_t nfuncs, uint32_t ncpu,
		    struct wire_window **ret);
struct wire_window *wire_window_free(struct wire_window *w);

/* Encodes w as a Window message into a malloc'd buffer. Rows are sorted by flow (the caller's
 * array is not touched), pids/modules/stack ids/objects become per-window dictionaries, and
 * norm_cost is rounded to whole units. A row's flow or function without a dictionary entry
 * gets an id-only entry. Returns 0, -EINVAL (empty agent id, seq 0, event index out of range),
 * -E2BIG (over a WIRE_MAX_* bound) or -ENOMEM. Cost: O(rows log rows). */
int wire_encode_window(const struct wire_window *w, uint8_t **ret_buf, size_t *ret_len);

/* Decodes and validates a Window message (the bytes wire_encode_window produced, e.g. read
 * back from a spool). -EBADMSG (not protobuf), -EINVAL (a field fails validation), -E2BIG
 * (over a bound), -ENOMEM. */
int wire_decode_window(const uint8_t *buf, size_t len, struct wire_window **ret);

/* ------------------------------------------------------------------ agent identity */

struct wire_label {
	char key[64];
	char value[128];
};

struct wire_event_cap {
	char name[48];
	char reason[160];
	uint8_t source;       /* 0 hw, 1 sw */
	bool live;
};

struct wire_hello {
	char agent_id[WIRE_ID_MAX];
	char host[256];
	char version[32];
	char control_endpoint[128];
	uint32_t nlabels;
	struct wire_label labels[WIRE_MAX_LABELS];
	uint32_t nevents;
	struct wire_event_cap events[WIRE_MAX_EVENTS];
	char hook_tier[32];
	char kernel[64];
	bool synthetic;
	uint32_t ncpu;
	uint64_t next_seq;
	uint64_t spool_windows;
	uint32_t window_ms;
	uint64_t instance;
};

struct wire_heartbeat {
	char agent_id[WIRE_ID_MAX];
	uint64_t next_seq;
	uint64_t spool_windows;
	uint8_t mode;
};

/* An agent id: 1..WIRE_ID_MAX-1 printable ASCII bytes, no space, quote or backslash (it ends
 * up in file names, JSON and SQL literals). */
bool wire_valid_agent_id(const char *s);

/* Parses "k=v,k=v" (the agent's labels key) into h->labels. -EINVAL (syntax, empty key,
 * oversize key/value) or -E2BIG (more than WIRE_MAX_LABELS). */
int wire_parse_labels(const char *s, struct wire_hello *h);

/* ------------------------------------------------------------------ requests */

enum wire_kind {
	WIRE_KIND_NONE = 0,
	WIRE_KIND_HELLO = 1,
	WIRE_KIND_WINDOW = 2,
	WIRE_KIND_HEARTBEAT = 3,
};

/* Builds a Request around an already-encoded Window (as stored in a spool) without decoding
 * it: envelope fields then the window as field 5. token may be NULL. malloc'd *ret_buf. */
int wire_request_window(const char *token, uint64_t low_water, const uint8_t *win, size_t win_len,
			uint8_t **ret_buf, size_t *ret_len);
int wire_request_hello(const char *token, uint64_t low_water, const struct wire_hello *h,
		       uint8_t **ret_buf, size_t *ret_len);
int wire_request_heartbeat(const char *token, uint64_t low_water, const struct wire_heartbeat *hb,
			   uint8_t **ret_buf, size_t *ret_len);

/* A decoded Request. Only the member named by kind is filled. */
struct wire_request {
	uint32_t protocol;
	char token[WIRE_TOKEN_MAX];
	uint64_t low_water;
	enum wire_kind kind;
	struct wire_hello *hello;     /* owned */
	struct wire_heartbeat heartbeat;
	struct wire_window *window;   /* owned; take it by setting the pointer to NULL */
};

/* Decodes and validates a Request. On error *ret is left released (nothing to free) and the
 * return says why: -EBADMSG (not protobuf / no body), -EPROTONOSUPPORT (protocol newer than
 * WIRE_PROTOCOL), -EINVAL, -E2BIG, -ENOMEM. */
int wire_decode_request(const uint8_t *buf, size_t len, struct wire_request *ret);
void wire_request_release(struct wire_request *r);

/* ------------------------------------------------------------------ acks */

enum wire_ack_status {
	WIRE_ACK_UNSPECIFIED = 0,
	WIRE_ACK_OK = 1,
	WIRE_ACK_DUPLICATE = 2,
	WIRE_ACK_UNKNOWN_AGENT = 3,
	WIRE_ACK_UNAUTHENTICATED = 4,
	WIRE_ACK_INVALID = 5,
	WIRE_ACK_RETRY = 6,
	WIRE_ACK_SEQ_REGRESSION = 7,
};

struct wire_ack {
	enum wire_ack_status status;
	char agent_id[WIRE_ID_MAX];
	uint64_t seq;
	char reason[256];
	uint64_t resume_seq;
	uint64_t coordinator_id;
	uint32_t heartbeat_ms;
	uint64_t max_message_bytes;
};

/* Encodes into buf (WIRE_ACK_MAX bytes are always enough). -ENOSPC if cap is too small. */
int wire_encode_ack(const struct wire_ack *a, uint8_t *buf, size_t cap, size_t *ret_len);
/* -EBADMSG, -EINVAL (unknown status, oversize strings). */
int wire_decode_ack(const uint8_t *buf, size_t len, struct wire_ack *ret);
const char *wire_ack_status_name(enum wire_ack_status s);

/* Internal to wire*.c (the codec is split by concern over wire.c, wire_dec.c, wire_msg.c):
 * converts an unpacked ms.v1.Window into a validated struct wire_window. */
int wire_window_from_pb(const void *pb_window, struct wire_window **ret);
/* Fills an ms.v1.Counters from c (wire_msg.c). */
void wire_counters_to_pb(const struct wire_counters *c, void *pb_counters);
/* Fills the ms.v1.Window's stacks from w->stacks (wire_msg.c); func_ix gives a frame's
 * 1 + index into the Window's funcs (0 for function id 0), adding the function when new.
 * One allocation in *ret_mem (NULL when there are no stacks). -E2BIG, -ENOMEM. */
int wire_stacks_to_pb(const struct wire_window *w, void *pb_window, uint32_t (*func_ix)(void *ctx, uint64_t func_id),
		      void *ctx, void **ret_mem);

#endif
