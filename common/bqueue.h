/* bqueue: a bounded FIFO of pointers between threads (commands into the sampling loop, closed
 * windows out of it). It refuses work when full (-EAGAIN) instead of growing; the producer
 * counts the drop. Not a hot-path structure: one mutex, used at window or command rate.
 * Thread-safety: any number of producers and consumers. */
#ifndef MS_BQUEUE_H
#define MS_BQUEUE_H

#include <stdbool.h>
#include <stdint.h>

struct bqueue;

int bqueue_new(uint32_t capacity, struct bqueue **ret);
/* Frees the queue; items still queued are passed to free_item (may be NULL). NULL-safe. */
struct bqueue *bqueue_free(struct bqueue *q, void (*free_item)(void *));
/* Appends; -EAGAIN when full, -EPIPE after bqueue_close. */
int bqueue_push(struct bqueue *q, void *item);
/* Removes the oldest item into *ret. timeout_ms: 0 = don't wait, < 0 = wait forever.
 * Returns 0, -ETIMEDOUT (empty), or -EPIPE (closed and empty). */
int bqueue_pop(struct bqueue *q, void **ret, int timeout_ms);
/* Wakes every waiter; later pushes fail, pops drain what is left then return -EPIPE. */
void bqueue_close(struct bqueue *q);
uint32_t bqueue_len(struct bqueue *q);

#endif
