/*
 * sandbox: the sandbox table, the state machine and the lifecycle of jails
 * (create, attach to sbx-init, kill, clean up, recover after a restart), and
 * the mirror of each jail's processes with their event backlogs.
 *
 * struct sandbox is shared by the sandbox module's files: sandbox.c (the
 * lifecycle) and the call handlers api_*.c. Loop thread only.
 *
 * States (values are the wire SandboxState):
 *   STARTING --hello answered--> RUNNING --kill/expiry/jail died--> KILLING
 *   STARTING --failure/timeout/kill--> KILLING --jail gone--> DEAD
 * sandbox_set_state() is the only place a state changes; it checks the
 * transition and logs it. DEAD sandboxes stay as tombstones (so a call names
 * why it ended) until dead_retention_s passes.
 */
#ifndef SBX_SANDBOX_H
#define SBX_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cgroup.h"
#include "events.h"
#include "hmap.h"
#include "loop.h"
#include "sbx.pb-c.h"
#include "wire.h"

struct server;
struct rpc_call;
struct initconn;

enum sandbox_state {
	SANDBOX_STARTING = SBX__V1__SANDBOX_STATE__STATE_STARTING,
	SANDBOX_RUNNING = SBX__V1__SANDBOX_STATE__STATE_RUNNING,
	SANDBOX_KILLING = SBX__V1__SANDBOX_STATE__STATE_KILLING,
	SANDBOX_DEAD = SBX__V1__SANDBOX_STATE__STATE_DEAD,
};

struct kv {
	char *key;
	char *value;
};

struct kvlist {
	struct kv *v;
	size_t n;
};

/* A follower that must see every event of a stream (StreamHold). */
#define PROC_HOLDS 4
struct hold {
	char holder[SBX_WIRE_STREAM_MAX + 1];
	uint64_t seq;     /* read up to here */
	int64_t until_ms; /* monotonic; the hold lapses after */
};

/* One process of a jail, as sbxd mirrors it. */
struct proc {
	struct proc *next; /* in start order */
	char *stream;
	uint32_t pid;
	char *tag;
	char **argv; /* NULL-terminated */
	char *command;
	char *cwd;
	char *user;
	struct kvlist env;
	bool pty;
	bool running;
	int32_t exit_code;
	int32_t exit_signal;
	char *exit_status;
	int64_t ended_ms; /* monotonic, for garbage collection */
	struct backlog bl;
	uint64_t acked; /* events up to here are acked to sbx-init */
	struct hold holds[PROC_HOLDS];
	unsigned n_holds;
};

/* A call waiting for a sandbox to reach a state. */
struct waiter {
	struct waiter *next;
	struct rpc_call *call;
	void (*done)(const ProtobufCMessage *msg, void *call);
};

struct sandbox {
	struct server *srv;
	char id[SBX_WIRE_ID_MAX + 1];
	enum sandbox_state state;
	char *template_name;
	int64_t created_ms;  /* unix ms */
	int64_t deadline_ms; /* unix ms */
	int64_t ended_ms;    /* unix ms, when DEAD */
	char *end_reason;
	uint32_t uid_slot;
	bool uid_held; /* the slot is ours until cleanup finishes */
	uid_t host_root;
	uid_t host_user;
	struct cgroup_limits limits;
	bool net_allow;
	struct kvlist labels;
	struct kvlist metadata;
	struct kvlist env;
	char *dir; /* host: <state_dir>/sandboxes/<id> */
	char *run; /* host: <run_dir>/s/<id> */

	/* The jail. */
	pid_t bwrap_pid; /* our child while it runs, else 0 */
	pid_t init_pid;  /* host pid of sbx-init, 0 until known */
	uint64_t init_start;
	int pidfd;
	struct loop_watch pid_watch;
	int info_fd;
	struct loop_watch info_watch;
	char info[1024];
	size_t info_len;
	int block_fd;
	int root_fd; /* the jail's "/", via /proc/<init>/root */
	int log_fd;
	struct initconn *conn;
	int64_t start_deadline_ms; /* monotonic, while STARTING */
	bool recovering;           /* re-attaching after an sbxd restart */
	bool ran;                  /* reached RUNNING once: leaves a tombstone */
	sbx_err start_err;         /* how a failed start is reported */
	bool cgroup_pending;       /* cgroups still to remove */

	/* Processes. */
	struct hmap procs; /* stream -> struct proc */
	struct proc *proc_head;
	struct proc *proc_tail;
	uint32_t n_procs;
	uint64_t stream_counter;

	/* Calls waiting for RUNNING (create) and DEAD (kill). */
	struct waiter *start_waiters;
	struct waiter *dead_waiters;
};

/* Free SB and everything it owns (not in the table, no waiters, no link).
 * Accepts a half-built sandbox and NULL. */
void sandbox_free(struct sandbox *sb);

/* Start the module: recover the sandboxes the registry lists. */
SBX_NODISCARD sbx_err sandbox_recover(struct server *srv);

/* Shut down: fail waiting calls, close links to jails; jails keep running. */
void sandbox_shutdown(struct server *srv);

/* The sandbox with ID (any state, tombstones included), or NULL. */
struct sandbox *sandbox_find(struct server *srv, const char *id);

/*
 * Find a sandbox a call may act on: SBX_ENOTFOUND for an unknown id (WHY says
 * "no sandbox ...") or a dead one (WHY says why it ended), SBX_EUNAVAIL while
 * it starts or is being killed.
 */
SBX_NODISCARD sbx_err sandbox_lookup_running(struct server *srv,
                                             const char *id,
                                             struct sandbox **out, char *why,
                                             size_t whylen);

/*
 * Create a sandbox from REQ (already validated and defaulted into the
 * fields of TEMPLATE) and start its jail. DONE(info, CALL) runs when it is
 * RUNNING; on failure rpc_fail(CALL) runs. Either way, exactly once.
 */
void sandbox_create(struct server *srv, struct sandbox *tmpl,
                    struct rpc_call *call,
                    void (*done)(const ProtobufCMessage *, void *));

/* Begin killing SB for REASON. WAITER (may be NULL) completes when DEAD. */
void sandbox_kill(struct sandbox *sb, const char *reason,
                  struct waiter *waiter);

/* Move SB's deadline and persist it. */
SBX_NODISCARD sbx_err sandbox_set_deadline(struct sandbox *sb,
                                           int64_t deadline_ms);

/* Fill INFO describing SB; pointers borrow from SB and from STORE. */
struct info_store {
	Sbx__V1__Limits limits;
	Sbx__V1__SandboxInfo__LabelsEntry *labels;
	Sbx__V1__SandboxInfo__MetadataEntry *metadata;
	Sbx__V1__SandboxInfo__LabelsEntry **label_ptrs;
	Sbx__V1__SandboxInfo__MetadataEntry **metadata_ptrs;
};
SBX_NODISCARD sbx_err sandbox_info(const struct sandbox *sb,
                                   Sbx__V1__SandboxInfo *info,
                                   struct info_store *store);
void sandbox_info_fini(struct info_store *store);

/* Processes. */
struct proc *sandbox_proc_find(struct sandbox *sb, const char *stream);
struct proc *sandbox_proc_by_pid(struct sandbox *sb, uint32_t pid);
struct proc *sandbox_proc_by_tag(struct sandbox *sb, const char *tag);
/* Add a process record from sbx-init's ProcessInfo (a copy is taken). */
SBX_NODISCARD sbx_err sandbox_proc_add(struct sandbox *sb,
                                       const Sbx__V1__ProcessInfo *pi,
                                       struct proc **out);
/* Describe P for a reply; pointers borrow from P and from STORE. */
struct proc_store {
	Sbx__V1__ProcessExit exit;
	Sbx__V1__ProcessInfo__EnvEntry *env;
	Sbx__V1__ProcessInfo__EnvEntry **envp;
};
SBX_NODISCARD sbx_err sandbox_proc_info(const struct proc *p,
                                        Sbx__V1__ProcessInfo *pi,
                                        struct proc_store *store);
void sandbox_proc_info_fini(struct proc_store *store);

/*
 * Hold P's events for HOLDER up to SEQ for TTL_MS (0 releases), then send
 * sbx-init the acks the holds allow. SBX_ELIMIT when PROC_HOLDS followers
 * already hold it.
 */
SBX_NODISCARD sbx_err sandbox_proc_hold(struct sandbox *sb, struct proc *p,
                                        const char *holder, uint64_t seq,
                                        uint32_t ttl_ms);

/* Loop hooks. */
void sandbox_tick(struct server *srv);
void sandbox_on_sigchld(struct server *srv);

/* kvlist helpers shared by the handlers. */
SBX_NODISCARD sbx_err kvlist_set(struct kvlist *l, const char *key,
                                 const char *value);
const char *kvlist_get(const struct kvlist *l, const char *key);
void kvlist_fini(struct kvlist *l);

#endif
