/*
 * cgroup: one cgroup per sandbox for the memory, cpu and pids controllers.
 *
 * The layout is detected per controller at start: a controller mounted on a
 * cgroup v1 hierarchy is used there (hybrid hosts keep memory, cpu and pids
 * on v1 while the unified tree has none), otherwise the v2 unified tree is
 * used if the controller is listed in its cgroup.controllers. Sandbox cgroups
 * live under "<sbxd's own cgroup>/<subtree>/<sandbox id>" in each hierarchy.
 *
 * On v2, controllers can only be enabled for children of a cgroup without
 * processes (the "no internal processes" rule), so cgroup_env_open may move
 * sbxd itself into "<own>/<subtree>-daemon" first (MOVE_SELF). If that is not
 * possible, opening fails with a reason: limits are never silently skipped.
 *
 * Loop thread only (not thread-safe); cgroup_join_fds' fds are written by the
 * jail child between fork and exec. Functions taking a sandbox ID return
 * SBX_EINVAL (cgroup_exists: false) for an ID that is empty, starts
 * with '.' or contains '/' or "..".
 */
#ifndef SBX_CGROUP_H
#define SBX_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define CGROUP_MAX_FDS 3

struct cgroup_env;

struct cgroup_limits {
	uint64_t memory_bytes; /* hard limit, swap included; 0 = no limit */
	uint32_t cpu_millis;   /* 1000 = one CPU per 100 ms period; 0 = none */
	uint32_t pids;         /* maximum number of tasks; 0 = no limit */
};

struct cgroup_stat {
	uint64_t memory_bytes; /* current usage */
	uint64_t cpu_usec;     /* total CPU time used */
	uint32_t pids;         /* current tasks */
};

struct cgroup_paths {
	/* Where /proc/self/mountinfo and /proc/self/cgroup are read from;
	 * tests point these at fake files describing a fake tree. */
	const char *mountinfo; /* default "/proc/self/mountinfo" */
	const char *self;      /* default "/proc/self/cgroup" */
	const char *subtree;   /* default "sbx" */
	bool move_self;        /* v2: allowed to move sbxd into a leaf */
};

/*
 * Detect the layout and prepare the subtree. PATHS may be NULL for the
 * defaults. On failure WHY (of WHYLEN bytes) says which controller or step
 * failed. Returns SBX_OK, SBX_ESTATE (a controller is unavailable or cannot
 * be delegated), SBX_EINVAL (SUBTREE breaks the ID rule above) or
 * SBX_ENOMEM.
 */
SBX_NODISCARD sbx_err cgroup_env_open(struct cgroup_env **out,
                                      const struct cgroup_paths *paths,
                                      char *why, size_t whylen);

/* Free ENV. Sandbox cgroups are left in place (sandboxes outlive sbxd). */
void cgroup_env_free(struct cgroup_env *env);

/* "v1", "v2" or "hybrid" (some controllers on each). Borrowed. */
const char *cgroup_env_mode(const struct cgroup_env *env);

/*
 * Create the cgroups of sandbox ID and apply LIM. Any failing step removes
 * what was made and returns an error (fail closed): SBX_EEXIST if they exist,
 * SBX_EINTERNAL or SBX_EPERM with WHY filled.
 */
SBX_NODISCARD sbx_err cgroup_create(struct cgroup_env *env, const char *id,
                                    const struct cgroup_limits *lim, char *why,
                                    size_t whylen);

/*
 * Open (O_WRONLY|O_CLOEXEC) the cgroup.procs file of each distinct cgroup of
 * sandbox ID. A child writes "0" to each between fork and exec to join. *N
 * receives the count (at most CGROUP_MAX_FDS). The caller closes the fds.
 */
SBX_NODISCARD sbx_err cgroup_join_fds(struct cgroup_env *env, const char *id,
                                      int *fds, size_t *n);

/* True if sandbox ID's cgroups exist (used to re-attach after a restart). */
bool cgroup_exists(struct cgroup_env *env, const char *id);

/*
 * SIGKILL every task in sandbox ID's cgroups (cgroup.kill on v2 where
 * present, else each pid of cgroup.procs). SBX_ENOTFOUND if none exist.
 */
SBX_NODISCARD sbx_err cgroup_kill(struct cgroup_env *env, const char *id);

/*
 * Remove sandbox ID's cgroups. SBX_ESTATE while tasks remain (try again
 * later); SBX_OK if they are gone or never existed.
 */
SBX_NODISCARD sbx_err cgroup_remove(struct cgroup_env *env, const char *id);

/* Read usage of sandbox ID. SBX_ENOTFOUND if its cgroups do not exist. */
SBX_NODISCARD sbx_err cgroup_read_stat(struct cgroup_env *env, const char *id,
                                       struct cgroup_stat *st);

#endif
