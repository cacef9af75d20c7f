/* Fuzz target: ring-buffer record validation over arbitrary bytes. */
#include <stddef.h>
#include <stdint.h>

#include "consumer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ms_sample out;
	consumer_validate(data, size, &out);
	return 0;
}
