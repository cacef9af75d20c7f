/* consumer: drains the BPF ring buffer (on a timer and when the kernel forces a wake-up at the
 * watermark), validates every record's size and header before use, copies it, and hands it to
 * a sink (the loop's aggregate step). Invalid records are counted as lost, never read.
 * Not thread-safe: owned by the sampling loop. */
#ifndef MS_CONSUMER_H
#define MS_CONSUMER_H

#include <stddef.h>
#include <stdint.h>

#include "ms_abi.h"

typedef void (*consumer_sink_fn)(void *arg, const struct ms_sample *s);

struct consumer;

int consumer_new(int ringbuf_fd, consumer_sink_fn sink, void *arg, struct consumer **ret);
/* Waits up to timeout_ms for a forced wake-up, then drains everything available.
 * Returns records handled (valid or not) or negative errno (-EINTR is not an error). */
int consumer_poll(struct consumer *c, int timeout_ms);
/* Drains without waiting. */
int consumer_drain(struct consumer *c);
uint64_t consumer_lost(const struct consumer *c);
struct consumer *consumer_free(struct consumer *c);

/* Validates one record of `size` bytes; on success copies the header into *out and returns 0,
 * else -EBADMSG. Exposed for the synthetic source, tests and the fuzz target. */
int consumer_validate(const void *data, size_t size, struct ms_sample *out);

#endif
