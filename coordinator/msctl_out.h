/* msctl_out: how msctl prints replies — aligned tables for people, one JSON document per reply
 * (one line per streamed event) for scripts. Only msctl uses it; it is in the coordinator
 * library so msctl stays one small main. Thread-safety: none needed (msctl is one thread). */
#ifndef MS_MSCTL_OUT_H
#define MS_MSCTL_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fleet.pb-c.h"
#include "jsonw.h"

/* Prints the writer's document and a newline, then frees the writer. */
void msctl_json_print(struct jsonw *j);
const char *msctl_mode_req_name(int m);
/* ns since the epoch as an ISO 8601 UTC time, "-" for 0. */
void msctl_fmt_time(uint64_t ns, char *out, size_t cap);
void msctl_agent_json(struct jsonw *j, const Ms__V1__AgentInfo *a);
void msctl_agent_row(const Ms__V1__AgentInfo *a);
void msctl_event_out(bool json, const Ms__V1__FleetEvent *e);
void msctl_anomaly_out(bool json, const Ms__V1__FleetAnomaly *a);

#endif
