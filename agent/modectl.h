/* modectl: the mode controller — pure decision logic that picks sentinel or diagnostic from the
 * per-CPU sampling demand, the anomaly monitor's verdict and explicit pins, with hysteresis and a
 * minimum hold time, and decides load shedding (ShedHeavy, exported as ms_sampling_throttled).
 * It reads no clock and touches no kernel state: the sampling loop feeds it one interval at a
 * time (simulated time in tests) and applies what it returns.
 *
 * The rules (the earlier implementation flapped; these are why this one cannot):
 * - Load is per CPU: load = max over CPUs of (offered samples/s on that CPU) / (per-CPU budget of
 *   the mode those samples were measured in). An interval during which the mode changed mixes
 *   two budgets and is ignored, and the load average restarts after every switch, so a rate is
 *   never divided by the budget of the other mode.
 * - Load only decides safety: ShedHeavy is entered when load >= shed_enter for hold_ms and left
 *   when load <= shed_exit for hold_ms (shed_exit < shed_enter). Load never escalates.
 * - Diagnostic is entered (mode auto) when the anomaly monitor reports an anomaly and left when it
 *   has been quiet for hold_ms. While ShedHeavy, auto mode stays in sentinel: shedding wins over
 *   escalation, so the two cannot fight.
 * - No automatic transition happens within hold_ms of the previous one.
 * - A pin (local API, coordinator, or a fixed mode in the config) overrides all of the above until
 *   its TTL ends (ttl 0 = until cleared); pinning "auto" clears it. Safety is still computed and
 *   reported while pinned; the token bucket keeps bounding the cost.
 * Thread-safety: none; owned by the sampling loop. */
#ifndef MS_MODECTL_H
#define MS_MODECTL_H

#include <stdbool.h>
#include <stdint.h>

enum modectl_mode {
	MODECTL_SENTINEL = 0,
	MODECTL_DIAGNOSTIC = 1,
	MODECTL_AUTO = 2, /* only as a pin request: clears the pin */
};

enum modectl_safety {
	MODECTL_NORMAL = 0,
	MODECTL_SHED_HEAVY = 1,
};

#define MODECTL_DEFAULT_HOLD_MS 5000
#define MODECTL_DEFAULT_SHED_ENTER 2.0
#define MODECTL_DEFAULT_SHED_EXIT 1.2
#define MODECTL_DEFAULT_AVG_MS 1000
#define MODECTL_MAX_CPUS 1024

struct modectl_opts {
	uint64_t sentinel_budget;   /* per CPU per second, > 0 */
	uint64_t diagnostic_budget; /* >= sentinel_budget */
	uint64_t hold_ms;           /* 0: MODECTL_DEFAULT_HOLD_MS */
	double shed_enter;          /* 0: MODECTL_DEFAULT_SHED_ENTER */
	double shed_exit;           /* 0: MODECTL_DEFAULT_SHED_EXIT; must be < shed_enter */
	uint64_t avg_ms;            /* time constant of the load average; 0: MODECTL_DEFAULT_AVG_MS */
};

/* One measured interval. */
struct modectl_input {
	uint64_t now_ms;            /* monotonic time at the end of the interval */
	uint64_t interval_ms;       /* its length (> 0) */
	int mode;                   /* mode in force during the interval */
	bool mixed;                 /* the mode changed during the interval: its rates are ignored */
	uint32_t ncpu;              /* entries of cpu_rate (<= MODECTL_MAX_CPUS) */
	const double *cpu_rate;     /* offered samples/s per CPU (emitted + dropped by the budget) */
	bool anomaly;               /* the anomaly monitor has an active signal */
};

struct modectl_status {
	int mode;                   /* enum modectl_mode (sentinel or diagnostic) */
	int safety;                 /* enum modectl_safety */
	bool pinned;
	int pin_mode;               /* when pinned */
	uint64_t pin_expires_ms;    /* monotonic; 0 = until cleared */
	char pin_source[32];        /* "api", "coordinator", "config", ... */
	double load;                /* averaged per-CPU load of the current mode (see above) */
	uint32_t hot_cpu;           /* CPU that set the load */
	bool anomaly;               /* last anomaly input */
	uint64_t transitions;       /* mode changes since start */
	uint64_t shed_entries;      /* times ShedHeavy was entered */
	uint64_t since_ms;          /* monotonic time of the last mode change (0 = none yet) */
	const char *reason;         /* why the current mode: "start", "pin", "anomaly", "quiet",
				     * "shed", "pin-expired", "unpinned" (static string) */
};

struct modectl;

/* Starts in start_mode: MODECTL_AUTO (sentinel, decided automatically) or a fixed mode, which is
 * a pin with source "config" until cleared. -EINVAL for bad options, -ENOMEM. */
int modectl_new(const struct modectl_opts *opts, int start_mode, struct modectl **ret);
struct modectl *modectl_free(struct modectl *m);

/* Feeds one interval; returns the mode to apply now (MODECTL_SENTINEL or MODECTL_DIAGNOSTIC),
 * or -EINVAL for a malformed input (nothing changed then). */
int modectl_tick(struct modectl *m, const struct modectl_input *in);

/* Explicit mode: pins mode for ttl_ms (0 = until cleared) from source; MODECTL_AUTO clears the
 * pin (ttl_ms ignored). When a pin is cleared or expires, the automatic rules decide at once
 * (the pin was a deliberate choice, not a transition the hold time protects against); later
 * automatic transitions obey the hold time again. Returns the mode to apply now, or -EINVAL. */
int modectl_pin(struct modectl *m, int mode, uint64_t ttl_ms, const char *source, uint64_t now_ms);

/* New per-CPU budgets (token-bucket API): resets the load average and the safety level, which
 * is then re-evaluated from scratch ("reset via the API"). -EINVAL if invalid. */
int modectl_set_budgets(struct modectl *m, uint64_t sentinel_budget, uint64_t diagnostic_budget);

int modectl_mode(const struct modectl *m);
void modectl_status(const struct modectl *m, struct modectl_status *ret);
const char *modectl_mode_name(int mode);

#endif
