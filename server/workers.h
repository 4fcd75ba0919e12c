/*
 * workers: a pool of threads for blocking work (file I/O inside sandboxes,
 * removing dead sandboxes' trees), so the loop thread never blocks on disk.
 *
 * A job runs on a worker thread, then its done callback runs on the loop
 * thread (posted through loop_post). Pools made with WORKERS_DROP_CAPS keep
 * only CAP_SETUID and CAP_SETGID in their threads (capabilities are per
 * thread): file jobs act as the sandbox user via fsops_creds_enter and can
 * never use root's file capabilities on a sandbox's behalf.
 */
#ifndef SBX_WORKERS_H
#define SBX_WORKERS_H

#include <stdbool.h>

#include "err.h"
#include "loop.h"

struct workers;

struct work {
	struct work *next;
	void (*run)(struct work *w);  /* worker thread */
	void (*done)(struct work *w); /* loop thread; owns W again */
	struct loop_cmd cmd;          /* internal */
};

#define WORKERS_DROP_CAPS 1

/* Start N threads. FLAGS: WORKERS_DROP_CAPS. */
SBX_NODISCARD sbx_err workers_start(struct workers **out, struct loop *lp,
                                    unsigned n, int flags, const char *name);

/* Any thread. Takes W until W->done runs on the loop thread. */
void workers_submit(struct workers *ws, struct work *w);

/* Finish queued jobs (their done callbacks are posted), join the threads,
 * free the pool. Accepts NULL. */
void workers_stop(struct workers *ws);

#endif
