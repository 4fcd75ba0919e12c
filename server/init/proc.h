/*
 * The processes sbx-init tracks: their fds, stdin queues, event logs and
 * reaping. A process is tracked from a successful spawn until sbxd acks
 * its exit event. Loop thread only.
 */
#ifndef SBX_INIT_PROC_H
#define SBX_INIT_PROC_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"
#include "evlog.h"
#include "init.pb-c.h"

#define PROC_INPUT_MAX (1024 * 1024) /* queued stdin bytes per process */
#define PROC_READ_MAX (64 * 1024)    /* bytes per output event */
#define PROC_POLLFDS_MAX 3           /* pollfds one process can want */

struct proc;
struct procs;

struct procs_limits {
	size_t window_bytes; /* see evlog_window_open */
	size_t retain_bytes;
	uint32_t max_procs;
};

/* Which of a process's fds a pollfd is. */
enum proc_fd_role {
	PROC_FD_STDOUT,
	PROC_FD_STDERR,
	PROC_FD_PTY,
	PROC_FD_STDIN,
};

/* A read-only view of a process for listings; borrowed until the process
 * is forgotten. */
struct proc_view {
	const Sbx__Init__V1__Spawn *spec;
	pid_t pid;
	bool running;
	int32_t exit_code; /* once ended: -1 when signaled */
	int32_t exit_signal;
};

/* An empty table. SBX_ENOMEM. Free with procs_free. */
SBX_NODISCARD sbx_err procs_new(struct procs **out,
				const struct procs_limits *lim);

/* Forget every process and close its fds; running ones keep running. */
void procs_free(struct procs *t);

/* How many processes are tracked, running or ended but not yet acked. */
size_t procs_count(const struct procs *t);

/* The I-th process, I < procs_count; borrowed until it is forgotten. */
struct proc *procs_at(struct procs *t, size_t i);

/* The process of STREAM, or NULL. */
struct proc *procs_find(struct procs *t, const char *stream);

/*
 * Validate SPEC and start it. On success takes ownership of SPEC, writes
 * *PID and tracks the process. Errors, with a sentence in WHY:
 * SBX_EINVAL (empty argv, bad stream id or pty size), SBX_EEXIST (stream
 * tracked), SBX_ELIMIT (max processes, out of memory or fds), and those of
 * spawn_start. On error the caller still owns SPEC.
 */
SBX_NODISCARD sbx_err procs_spawn(struct procs *t, Sbx__Init__V1__Spawn *spec,
				  pid_t *pid, char *why, size_t why_len);

/* Reap every child that has exited (orphans too). A tracked one gets its
 * remaining output, then its exit event, and its fds closed. */
void procs_reap(struct procs *t);

/* Stop tracking P and free it (its exit was acked). */
void procs_forget(struct procs *t, struct proc *p);

/* SIGKILL the process group of every running process (shutdown). */
void procs_kill_all(struct procs *t);

/* Fill up to PROC_POLLFDS_MAX pollfds with what P waits for: output while
 * its window is open, writability while stdin input is queued. Returns
 * how many. */
size_t proc_pollfds(const struct proc *p, struct pollfd *pfd,
		    enum proc_fd_role *roles);

/* Act on REVENTS of P's fd in ROLE: read one chunk, or write input. */
void proc_on_poll(struct proc *p, enum proc_fd_role role, short revents);

/*
 * Requests from sbxd. WHY is set to a static sentence on error.
 * input: queue DATA for stdin. SBX_ESTATE (ended, no stdin, closed),
 * SBX_ELIMIT (more than PROC_INPUT_MAX queued).
 * close_stdin: close stdin once the queue is written (a pty gets EOT).
 * SBX_ESTATE as for input.
 * signal: SIG to the process group. SBX_EINVAL, SBX_ESTATE (ended).
 * resize: the pty's size. SBX_EINVAL, SBX_ESTATE (ended, not a pty).
 */
SBX_NODISCARD sbx_err proc_input(struct proc *p, const uint8_t *data,
				 size_t len, const char **why);
SBX_NODISCARD sbx_err proc_close_stdin(struct proc *p, const char **why);
SBX_NODISCARD sbx_err proc_signal(struct proc *p, int sig, const char **why);
SBX_NODISCARD sbx_err proc_resize(struct proc *p, const Sbx__V1__PtySize *sz,
				  const char **why);

/* P's event log; borrowed until P is forgotten. */
struct evlog *proc_log(struct proc *p);

/* P's stream id; borrowed until P is forgotten. */
const char *proc_stream(const struct proc *p);

/* Fill V with P's listing. */
void proc_view(const struct proc *p, struct proc_view *v);

#endif
