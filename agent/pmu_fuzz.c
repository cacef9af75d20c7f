/* Fuzz target: pmu-config bodies (JSON from the local API and the fleet) and the `events` key
 * parser over arbitrary bytes; a parsed config must respect every bound the header promises. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pmu.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pmu_config c;
	char why[256];
	if (pmu_config_parse((const char *)data, size, &c, why, sizeof(why)) == 0) {
		if (!c.present[0] && !c.present[1])
			abort();
		for (int m = 0; m < PMU_MODES; m++) {
			if (c.mode[m].ngroups > PMU_MAX_GROUPS)
				abort();
			for (uint32_t g = 0; g < c.mode[m].ngroups; g++) {
				const struct pmu_group *gr = &c.mode[m].groups[g];
				if (gr->nevents == 0 || gr->nevents > PMU_MAX_GROUP_EVENTS ||
				    memchr(gr->name, 0, sizeof(gr->name)) == NULL)
					abort();
				for (uint32_t i = 0; i < gr->nevents; i++) {
					const struct events_spec *e = &gr->ev[i];
					if (!memchr(e->name, 0, sizeof(e->name)) || !e->name[0] || e->precise < 0 ||
					    e->precise > 3 || e->period == 0 || e->access > EVENTS_ACC_HITM ||
					    e->iclass > EVENTS_IC_TOPOLOGY || !memchr(e->pmu, 0, sizeof(e->pmu)))
						abort();
				}
			}
		}
	} else if (!memchr(why, 0, sizeof(why)) || !why[0]) {
		abort();
	}
	/* the same bytes as an events key (NUL-terminated copy) */
	char list[600];
	size_t n = size < sizeof(list) - 1 ? size : sizeof(list) - 1;
	memcpy(list, data, n);
	list[n] = 0;
	pmu_config_from_names(list, 0, 0, &c, why, sizeof(why));
	return 0;
}
