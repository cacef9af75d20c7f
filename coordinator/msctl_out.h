/* msctl_out: how msctl prints replies — aligned tables for people, one JSON document per reply
 * (one line per streamed event) for scripts. Only msctl uses it; it is in the coordinator
 * library so msctl stays one small main. Thread-safety: none needed (msctl is one thread). */
#ifndef MS_MSCTL_OUT_H
#define MS_MSCTL_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "fleet.pb-c.h"
#include "jsonw.h"
#include "msctl_ch.h"

/* msctl's usage text (commands, flags, exit codes). */
void msctl_usage(FILE *f);
/* A command's reply (id, agents) as a line or JSON; frees r. Returns 0. */
int msctl_command_reply_out(bool json, Ms__V1__CommandReply *r, const char *what);
/* Prints the writer's document and a newline, then frees the writer. */
void msctl_json_print(struct jsonw *j);
const char *msctl_mode_req_name(int m);
/* ns since the epoch as an ISO 8601 UTC time, "-" for 0. */
void msctl_fmt_time(uint64_t ns, char *out, size_t cap);
void msctl_agent_json(struct jsonw *j, const Ms__V1__AgentInfo *a);
void msctl_agent_row(const Ms__V1__AgentInfo *a);
/* `agents` (list: {"agents":[...]}) and `agent ID` (one object) as a table or JSON. */
void msctl_agents_out(bool json, Ms__V1__AgentInfo *const *a, size_t n, bool list);
void msctl_status_out(bool json, const Ms__V1__FleetStatus *s);
void msctl_event_out(bool json, const Ms__V1__FleetEvent *e);
void msctl_anomaly_out(bool json, const Ms__V1__FleetAnomaly *a);
/* "tcp 10.0.0.1:443 -> 10.0.0.2:5555 rx" (the agent's form), "(unattributed)" for flow 0,
 * "(no tuple)" for a flow whose tuple was never stored. */
void msctl_fmt_flow(const struct msctl_ch_flow *f, char *out, size_t cap);
/* The answer of `top flows|functions` or `flame`: a table (flame: folded stacks "module;function
 * count", Σ counts = the selection's total, the rows past the cap in one "[other]" line) or one
 * JSON document. Names are printed with control bytes replaced. Returns 0, or -ENOSPC/-ENOMEM
 * when the JSON document could not be built (nothing is printed then). */
int msctl_ch_out(bool json, const struct msctl_ch_result *r);

#endif
