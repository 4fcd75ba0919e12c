/*
 * loop: the one thread that owns sbxd's state.
 *
 * Any thread posts work with loop_post (a mutex-guarded list plus an eventfd
 * wakeup; a burst costs one wakeup). The loop thread runs posted commands,
 * fd watchers (epoll) and one periodic tick, and reads SIGCHLD, SIGTERM,
 * SIGINT and SIGHUP from a signalfd.
 *
 * Ownership of the state is a mutex that the loop thread holds at all times
 * but while it sleeps in epoll. A short, non-blocking piece of work may
 * instead run on the thread that has it, if loop_try_enter finds the loop
 * asleep: it then owns the state exactly as the loop thread would, until
 * loop_leave. That saves the hop to the loop thread (two context switches)
 * for the common idle case; mutual exclusion is unchanged. "Loop thread
 * only" everywhere means "while owning the loop".
 */
#ifndef SBX_LOOP_H
#define SBX_LOOP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h> /* EPOLLIN and friends for loop_watch */

#include "err.h"

struct loop;

/* A posted command, embedded in whatever the poster hands over. FN runs on
 * the loop thread and owns the containing object from then on. */
struct loop_cmd {
	struct loop_cmd *next;
	void (*fn)(struct loop_cmd *cmd);
};

/* An fd watch. CB runs on the loop thread with the epoll events. */
struct loop_watch {
	int fd;
	void (*cb)(struct loop_watch *w, uint32_t events);
};

struct loop_hooks {
	void *arg;
	void (*tick)(void *arg);        /* every tick_ms */
	void (*on_sigchld)(void *arg);  /* reap children */
	void (*on_signal)(void *arg, int sig); /* SIGTERM, SIGINT, SIGHUP */
	unsigned tick_ms;
};

/* Create the loop; signals above are blocked in the calling thread (do it
 * before starting other threads so they inherit the mask). */
SBX_NODISCARD sbx_err loop_new(struct loop **out, const struct loop_hooks *h);
void loop_free(struct loop *lp);

/* Any thread. Takes ownership of CMD until CMD->fn runs. */
void loop_post(struct loop *lp, struct loop_cmd *cmd);

/* Watch W->fd for EVENTS (EPOLLIN, ...). W must stay valid until unwatched;
 * after loop_unwatch its owner may be freed, even from inside a callback. */
SBX_NODISCARD sbx_err loop_watch(struct loop *lp, struct loop_watch *w,
                                 uint32_t events);
void loop_unwatch(struct loop *lp, struct loop_watch *w);

/* Run until loop_stop; returns after draining posted commands. */
void loop_run(struct loop *lp);

/* Run the commands posted so far (for shutdown, after loop_run). */
void loop_run_pending(struct loop *lp);

/* Any thread: make loop_run return after the current iteration. */
void loop_stop(struct loop *lp);

/* Any thread: take ownership if the loop is asleep; false if it is busy
 * (then post instead). Never blocks. */
bool loop_try_enter(struct loop *lp);

/* Give back ownership taken with loop_try_enter. */
void loop_leave(struct loop *lp);

/* True if the calling thread owns the loop (for assertions). */
bool loop_owned(const struct loop *lp);

#endif
