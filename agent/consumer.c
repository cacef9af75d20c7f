/* consumer: see consumer.h. */
#include "consumer.h"

#include <bpf/libbpf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct consumer {
	struct ring_buffer *rb;
	consumer_sink_fn sink;
	void *arg;
	uint64_t lost;
};

int consumer_validate(const void *data, size_t size, struct ms_sample *out)
{
	if (size < sizeof(struct ms_sample))
		return -EBADMSG;
	memcpy(out, data, sizeof(*out));
	if (out->magic != MS_SAMPLE_MAGIC || out->version != MS_SAMPLE_VERSION)
		return -EBADMSG;
	if (out->lbr_nr > MS_LBR_MAX)
		return -EBADMSG;
	/* a record either has no tail or the fixed LBR tail of MS_LBR_MAX entries */
	if (size != sizeof(struct ms_sample) &&
	    size != sizeof(struct ms_sample) + MS_LBR_MAX * sizeof(struct ms_branch))
		return -EBADMSG;
	if (size == sizeof(struct ms_sample) && out->lbr_nr)
		return -EBADMSG;
	if (out->flow_id && out->flow.family != MS_FAMILY_V4 && out->flow.family != MS_FAMILY_V6)
		return -EBADMSG;
	if (out->flow_id && out->flow.dir != MS_DIR_RX && out->flow.dir != MS_DIR_TX)
		return -EBADMSG;
	if (out->attr_rule > MS_ATTR_PACKET)
		return -EBADMSG;
	return 0;
}

static int on_record(void *ctx, void *data, size_t size)
{
	struct consumer *c = ctx;
	struct ms_sample s;
	if (consumer_validate(data, size, &s) < 0) {
		c->lost++;
		return 0;
	}
	c->sink(c->arg, &s);
	return 0;
}

int consumer_new(int ringbuf_fd, consumer_sink_fn sink, void *arg, struct consumer **ret)
{
	struct consumer *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->sink = sink;
	c->arg = arg;
	c->rb = ring_buffer__new(ringbuf_fd, on_record, c, NULL);
	if (!c->rb) {
		int e = errno ? -errno : -EINVAL;
		free(c);
		return e;
	}
	*ret = c;
	return 0;
}

int consumer_poll(struct consumer *c, int timeout_ms)
{
	int n = ring_buffer__poll(c->rb, timeout_ms);
	if (n < 0 && n != -EINTR)
		return n;
	/* BPF submits with BPF_RB_NO_WAKEUP below the watermark: drain on every tick */
	int m = ring_buffer__consume(c->rb);
	if (m < 0 && m != -EINTR)
		return m;
	return (n > 0 ? n : 0) + (m > 0 ? m : 0);
}

int consumer_drain(struct consumer *c)
{
	int m = ring_buffer__consume(c->rb);
	return m == -EINTR ? 0 : m;
}

uint64_t consumer_lost(const struct consumer *c)
{
	return c->lost;
}

struct consumer *consumer_free(struct consumer *c)
{
	if (!c)
		return NULL;
	ring_buffer__free(c->rb);
	free(c);
	return NULL;
}
