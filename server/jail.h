/*
 * jail: start a sandbox's jail with bubblewrap, and the few privileged steps
 * around it (uid maps, process identity). Fail closed: every step that does
 * not succeed aborts the start; nothing runs with weaker isolation.
 *
 * The jail: new user, pid, mount, ipc, uts and cgroup namespaces (and an
 * empty network namespace unless the policy allows the host's); read-only
 * /usr and a curated /etc; tmpfs /tmp, /dev/shm, /var/tmp and /run; the
 * sandbox's host dirs bound at /home/user and /root; its runtime dir at
 * /run/sbx; sbx-init as PID 1 (bwrap --as-pid-1) under the seccomp filter.
 * bwrap runs as the sandbox's unprivileged host "root" uid and blocks until
 * sbxd has written the namespace's uid map: 0 -> that uid and 1000 -> the
 * sandbox's host "user" uid, so neither maps to a real host account.
 *
 * Loop thread only; between fork and exec only async-signal-safe calls.
 */
#ifndef SBX_JAIL_H
#define SBX_JAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"

struct config;

/* Where sbx-init is inside every jail, and its socket. */
#define JAIL_INIT_PATH "/opt/sbx/sbx-init"
#define JAIL_RUN_DIR "/run/sbx"
#define JAIL_INIT_SOCKET JAIL_RUN_DIR "/init.sock"

/*
 * Tasks the jail needs for itself, added to a sandbox's pids limit (its
 * cgroup's pids.max and RLIMIT_NPROC): bwrap's monitor process, sbx-init's
 * main thread and NNG 1.5's threads in sbx-init (up to 16 taskq, 8 expire
 * and 4 resolver threads, a poller, a timer and a reaper: 31 on a host with
 * 8 or more CPUs, 13 on 2). Without it a limit of 8..15 kills or hangs the
 * jail at start, and every limit gives the sandbox ~15-33 tasks fewer than
 * asked for.
 */
#define JAIL_AGENT_TASKS 40

struct jail_env {
	const char *bwrap_path;
	char *init_path; /* sbxd's copy of sbx-init, bound into jails */
	char *etc_dir;   /* generated passwd, group, hosts, hostname */
	int seccomp_fd; /* BPF program in a memfd */
	/* Which of /bin, /sbin, /lib, /lib64 are symlinks into /usr on the
	 * host (merged /usr); the others are bound read-only. */
	bool merged[4];
};

struct jail_spec {
	const char *sandbox_dir; /* host dir holding home/ and root/ */
	const char *run_dir;     /* host runtime dir, /run/sbx inside */
	const char *hostname;
	uid_t host_root;  /* uid 0 inside */
	uid_t host_user;  /* uid 1000 inside */
	bool net_allow;
	uint64_t tmp_bytes; /* size of each tmpfs */
	uint32_t nproc;     /* RLIMIT_NPROC per host uid */
	const int *cgroup_fds; /* cgroup.procs files to join */
	size_t n_cgroup_fds;
	int log_fd; /* bwrap's and sbx-init's stderr */
};

/* A started jail: bwrap's pid, the read end of its info pipe (it writes
 * the jail's PID 1 host pid there) and the write end of its block pipe. */
struct jail_start {
	pid_t bwrap_pid;
	int info_fd;
	int block_fd;
};

/* Build the seccomp filter, the generated /etc files under state_dir, and
 * a copy of sbx-init there (so jails never depend on where it was built
 * and a running jail keeps its binary while a new one is installed). */
SBX_NODISCARD sbx_err jail_env_init(struct jail_env *env,
                                    const struct config *cfg, char *why,
                                    size_t whylen);
void jail_env_fini(struct jail_env *env);

/* Fork and exec bwrap for SPEC. On success the caller owns OUT's fds and
 * must reap OUT->bwrap_pid. */
SBX_NODISCARD sbx_err jail_spawn(const struct jail_env *env,
                                 const struct jail_spec *spec,
                                 struct jail_start *out, char *why,
                                 size_t whylen);

/* Find "child-pid": N in bwrap's info JSON. Pure. SBX_EINVAL if absent. */
SBX_NODISCARD sbx_err jail_info_pid(const char *json, size_t len, pid_t *pid);

/* Write PID's uid and gid maps (0 -> host_root, 1000 -> host_user). */
SBX_NODISCARD sbx_err jail_map_ids(pid_t pid, uid_t host_root,
                                   uid_t host_user, char *why, size_t whylen);

/* Let bwrap continue past --userns-block-fd; closes BLOCK_FD. */
SBX_NODISCARD sbx_err jail_release(int block_fd);

/* PID's start time (clock ticks after boot, /proc/PID/stat field 22), to
 * tell a process from a later one reusing its pid. SBX_ENOTFOUND when PID
 * does not exist or has exited (a zombie). */
SBX_NODISCARD sbx_err jail_start_time(pid_t pid, uint64_t *start);

#endif
