/* abi_check: compile-time size and layout assertions on the structs shared with the BPF
 * programs (ms_abi.h). A mismatch is a build failure, never a misread ring record. */
#include <stddef.h>

#include "ms_abi.h"

_Static_assert(sizeof(struct ms_flow_tuple) == 56, "ms_flow_tuple layout changed");
_Static_assert(offsetof(struct ms_flow_tuple, ifindex) == 40, "ms_flow_tuple.ifindex moved");
_Static_assert(sizeof(struct ms_flow_ctx) == 80, "ms_flow_ctx layout changed");
_Static_assert(sizeof(struct ms_runtime_cfg) == 56, "ms_runtime_cfg layout changed");
_Static_assert(sizeof(struct ms_tb_state) == 24, "ms_tb_state layout changed");
_Static_assert(sizeof(struct ms_sample) == 152, "ms_sample layout changed");
_Static_assert(offsetof(struct ms_sample, flow) == 96, "ms_sample.flow moved");
_Static_assert(sizeof(struct ms_branch) == 24, "ms_branch layout changed");
_Static_assert(sizeof(struct ms_sample) % 8 == 0, "ms_sample must keep 8-byte alignment");

/* One symbol so the translation unit is not empty. */
int abi_check_sample_size(void)
{
	return (int)sizeof(struct ms_sample);
}
