/* privdrop: see privdrop.h. */
#include "privdrop.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/capability.h>
#include <linux/securebits.h>

/* Older headers lack the 5.8/5.9 capabilities; the numbers are ABI. */
#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif
#ifndef CAP_CHECKPOINT_RESTORE
#define CAP_CHECKPOINT_RESTORE 40
#endif

#define B(c) PRIVDROP_BIT(c)

static int read_int(const char *path, int def)
{
	char buf[32];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return def;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return def;
	buf[n] = 0;
	char *end;
	long v = strtol(buf, &end, 10);
	return end == buf || v < -1000 || v > 1000 ? def : (int)v;
}

int privdrop_read_env(struct privdrop_env *env)
{
	env->last_cap = read_int("/proc/sys/kernel/cap_last_cap", CAP_CHECKPOINT_RESTORE);
	if (env->last_cap < 0 || env->last_cap > 63)
		env->last_cap = CAP_CHECKPOINT_RESTORE;
	env->perf_paranoid = read_int("/proc/sys/kernel/perf_event_paranoid", 2);
	return 0;
}

uint64_t privdrop_all(int last_cap)
{
	if (last_cap < 0)
		return 0;
	return last_cap >= 63 ? UINT64_MAX : (UINT64_C(1) << (last_cap + 1)) - 1;
}

/* What the agent still does after start-up, and the capability each needs:
 *  - bpf(2) on its maps (mode changes write the config map, the loop reads counters and stack
 *    ids): before 6.5 every bpf(2) command checks bpf_capable() when unprivileged BPF is off
 *    -> CAP_BPF.
 *  - perf_event_open(2) on every CPU when PMU groups or the mode change the event set at run
 *    time (events_reconfigure) -> CAP_PERFMON.
 *  - symbolization of other users' processes: /proc/PID/maps and move_pages(2) queries pass
 *    the ptrace access check -> CAP_SYS_PTRACE; their binaries and perf maps are read without
 *    write rights -> CAP_DAC_READ_SEARCH; /proc/PID/map_files/ needs CAP_CHECKPOINT_RESTORE
 *    (5.9+) or CAP_SYS_ADMIN before; /proc/kallsyms is loaded lazily and shows addresses only
 *    to CAP_SYSLOG holders.
 * CAP_SYS_ADMIN stays only where the kernel checks it instead of the narrow capabilities: no
 * CAP_BPF (< 5.8) or perf_event_paranoid >= 3 (the Debian/Android patch tests CAP_SYS_ADMIN).
 * Dropped: CAP_NET_ADMIN (XDP is attached at start; links detach on close), CAP_SYS_RESOURCE
 * (RLIMIT_MEMLOCK raised at start), CAP_DAC_OVERRIDE, CAP_SETUID/SETGID, CAP_KILL and the rest.
 * A synthetic agent (no BPF, no perf events) keeps nothing. */
uint64_t privdrop_agent_keep(const struct privdrop_env *env)
{
	uint64_t keep = env->low_port ? B(CAP_NET_BIND_SERVICE) : 0;
	if (env->synthetic)
		return keep & privdrop_all(env->last_cap);
	keep |= B(CAP_SYS_PTRACE) | B(CAP_DAC_READ_SEARCH) | B(CAP_SYSLOG);
	if (env->last_cap >= CAP_BPF)
		keep |= B(CAP_BPF) | B(CAP_PERFMON);
	else
		keep |= B(CAP_SYS_ADMIN);
	if (env->last_cap >= CAP_CHECKPOINT_RESTORE)
		keep |= B(CAP_CHECKPOINT_RESTORE);
	else
		keep |= B(CAP_SYS_ADMIN);
	if (env->perf_paranoid >= 3)
		keep |= B(CAP_SYS_ADMIN);
	return keep & privdrop_all(env->last_cap);
}

uint64_t privdrop_coordinator_keep(const struct privdrop_env *env)
{
	return env->low_port ? B(CAP_NET_BIND_SERVICE) & privdrop_all(env->last_cap) : 0;
}

/* Counts /proc/self/task entries: capset(2) would leave the other threads privileged. */
static int thread_count(void)
{
	DIR *d = opendir("/proc/self/task");
	if (!d)
		return -errno;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static int cap_get(struct __user_cap_data_struct data[2])
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	/* valgrind's capget model marks only the first (v1) element written */
	memset(data, 0, 2 * sizeof(*data));
	return syscall(SYS_capget, &h, data) < 0 ? -errno : 0;
}

static uint64_t join(uint32_t lo, uint32_t hi)
{
	return (uint64_t)hi << 32 | lo;
}

int privdrop_apply(uint64_t keep, int last_cap, struct privdrop_result *ret)
{
	struct __user_cap_data_struct d[2];
	int r, n = thread_count();
	if (n < 0)
		return n;
	if (n > 1)
		return -EBUSY;
	if ((r = cap_get(d)) < 0)
		return r;
	struct privdrop_result res = { .before = join(d[0].effective, d[1].effective) };
	res.had_setpcap = (res.before & B(CAP_SETPCAP)) != 0;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	if (res.had_setpcap) {
		/* uid 0 would get the (bounded) full set back on execve: lock that off too */
		int bits = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE |
			   SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
		if (prctl(PR_SET_SECUREBITS, prctl(PR_GET_SECUREBITS) | bits, 0, 0, 0) < 0)
			return -errno;
		for (int c = 0; c <= last_cap && c < 64; c++)
			if (!(keep & B(c)) && prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1 &&
			    prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0)
				return -errno;
	}
	/* EINVAL: a kernel before 4.3 has no ambient set, so there is nothing to clear */
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return -errno;
	for (int i = 0; i < 2; i++) {
		uint32_t k = (uint32_t)(keep >> (32 * i));
		d[i].effective &= k;
		d[i].permitted &= k;
		d[i].inheritable = 0;
	}
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	if (syscall(SYS_capset, &h, d) < 0)
		return -errno;
	if ((r = cap_get(d)) < 0)
		return r;
	res.after = join(d[0].effective, d[1].effective);
	for (int c = 0; c <= last_cap && c < 64; c++)
		if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1)
			res.bounding |= B(c);
	if (ret)
		*ret = res;
	return 0;
}

static const char *const cap_names[] = {
	"chown", "dac_override", "dac_read_search", "fowner", "fsetid", "kill", "setgid", "setuid",
	"setpcap", "linux_immutable", "net_bind_service", "net_broadcast", "net_admin", "net_raw",
	"ipc_lock", "ipc_owner", "sys_module", "sys_rawio", "sys_chroot", "sys_ptrace", "sys_pacct",
	"sys_admin", "sys_boot", "sys_nice", "sys_resource", "sys_time", "sys_tty_config", "mknod",
	"lease", "audit_write", "audit_control", "setfcap", "mac_override", "mac_admin", "syslog",
	"wake_alarm", "block_suspend", "audit_read", "perfmon", "bpf", "checkpoint_restore",
};

const char *privdrop_names(uint64_t mask, char *buf, size_t len)
{
	size_t o = 0;
	if (!len)
		return buf;
	buf[0] = 0;
	for (int c = 0; c < 64; c++) {
		if (!(mask & B(c)))
			continue;
		char num[16];
		const char *nm = c < (int)(sizeof(cap_names) / sizeof(cap_names[0])) ? cap_names[c] : NULL;
		if (!nm) {
			snprintf(num, sizeof(num), "%d", c);
			nm = num;
		}
		int w = snprintf(buf + o, len - o, "%scap_%s", o ? "," : "", nm);
		if (w < 0 || (size_t)w >= len - o) {
			buf[o] = 0;
			break;
		}
		o += (size_t)w;
	}
	if (!o)
		snprintf(buf, len, "none");
	return buf;
}
