/* bqueue: see bqueue.h. A ring of void* guarded by one mutex and one condition variable. */
#include "bqueue.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct bqueue {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint32_t cap, head, len;
	bool closed;
	void **items;
};

int bqueue_new(uint32_t capacity, struct bqueue **ret)
{
	if (capacity == 0)
		return -EINVAL;
	struct bqueue *q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->items = calloc(capacity, sizeof(void *));
	if (!q->items) {
		free(q);
		return -ENOMEM;
	}
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&q->cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&q->mu, NULL);
	q->cap = capacity;
	*ret = q;
	return 0;
}

struct bqueue *bqueue_free(struct bqueue *q, void (*free_item)(void *))
{
	if (!q)
		return NULL;
	for (uint32_t i = 0; i < q->len; i++) {
		void *it = q->items[(q->head + i) % q->cap];
		if (free_item)
			free_item(it);
	}
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->cv);
	free(q->items);
	free(q);
	return NULL;
}

int bqueue_push(struct bqueue *q, void *item)
{
	int r = 0;
	pthread_mutex_lock(&q->mu);
	if (q->closed)
		r = -EPIPE;
	else if (q->len == q->cap)
		r = -EAGAIN;
	else {
		q->items[(q->head + q->len) % q->cap] = item;
		q->len++;
		pthread_cond_signal(&q->cv);
	}
	pthread_mutex_unlock(&q->mu);
	return r;
}

int bqueue_pop(struct bqueue *q, void **ret, int timeout_ms)
{
	struct timespec dl;
	if (timeout_ms > 0) {
		clock_gettime(CLOCK_MONOTONIC, &dl);
		dl.tv_sec += timeout_ms / 1000;
		dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
		if (dl.tv_nsec >= 1000000000L) {
			dl.tv_sec++;
			dl.tv_nsec -= 1000000000L;
		}
	}
	pthread_mutex_lock(&q->mu);
	while (q->len == 0 && !q->closed && timeout_ms != 0) {
		int e = timeout_ms < 0 ? pthread_cond_wait(&q->cv, &q->mu)
				       : pthread_cond_timedwait(&q->cv, &q->mu, &dl);
		if (e == ETIMEDOUT)
			break;
	}
	int r;
	if (q->len) {
		*ret = q->items[q->head];
		q->head = (q->head + 1) % q->cap;
		q->len--;
		r = 0;
	} else {
		r = q->closed ? -EPIPE : -ETIMEDOUT;
	}
	pthread_mutex_unlock(&q->mu);
	return r;
}

void bqueue_close(struct bqueue *q)
{
	pthread_mutex_lock(&q->mu);
	q->closed = true;
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->mu);
}

uint32_t bqueue_len(struct bqueue *q)
{
	pthread_mutex_lock(&q->mu);
	uint32_t n = q->len;
	pthread_mutex_unlock(&q->mu);
	return n;
}
