/*
 * The loop thread: epoll over the inbox eventfd, the signalfd and watched
 * fds, a periodic tick, and the inbox of posted commands.
 *
 * DESIGN: posters append to a singly linked list under a mutex and bump an
 * eventfd; the loop swaps the whole list out under the lock and runs it in
 * posting order outside the lock. The tick is driven by the epoll timeout
 * against a monotonic deadline, so a busy inbox does not delay it and an
 * idle loop sleeps until the next tick.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "panic.h"
#include "util.h"

struct loop {
	int epfd;
	struct loop_watch wake;
	struct loop_watch sig;
	pthread_mutex_t mtx;
	struct loop_cmd *head;
	struct loop_cmd *tail;
	struct loop_hooks hooks;
	pthread_mutex_t owner; /* held by whoever runs as the loop */
	pthread_t owner_thread;
	bool owned;
	/* The batch being dispatched, so that unwatching a watch whose event
	 * is still pending in it (and freeing its owner) is safe. */
	struct epoll_event evs[64];
	int n_evs;
	int stop; /* atomic */
};

static void
loop_own(struct loop *lp)
{
	pthread_mutex_lock(&lp->owner);
	lp->owner_thread = pthread_self();
	lp->owned = true;
}

static void
loop_disown(struct loop *lp)
{
	lp->owned = false;
	pthread_mutex_unlock(&lp->owner);
}

static void
loop_on_wake(struct loop_watch *w, uint32_t events)
{
	uint64_t n;

	(void) events;
	/* Reading resets the counter; EAGAIN means another read beat us. */
	if (read(w->fd, &n, sizeof(n)) < 0 && errno != EAGAIN) {
		log_error("SBX-LOOP-WAKE", "err=%s", strerror(errno));
	}
}

static void
loop_on_signal_fd(struct loop_watch *w, uint32_t events)
{
	struct loop *lp = (struct loop *) ((char *) w -
	                                   __builtin_offsetof(struct loop, sig));
	struct signalfd_siginfo si;

	(void) events;
	while (read(w->fd, &si, sizeof(si)) == (ssize_t) sizeof(si)) {
		if (si.ssi_signo == SIGCHLD) {
			if (lp->hooks.on_sigchld != NULL) {
				lp->hooks.on_sigchld(lp->hooks.arg);
			}
		} else if (lp->hooks.on_signal != NULL) {
			lp->hooks.on_signal(lp->hooks.arg, (int) si.ssi_signo);
		}
	}
}

sbx_err
loop_new(struct loop **out, const struct loop_hooks *h)
{
	struct loop *lp;
	sigset_t set;

	if ((lp = calloc(1, sizeof(*lp))) == NULL) {
		return SBX_ENOMEM;
	}
	lp->hooks = *h;
	if (lp->hooks.tick_ms == 0) {
		lp->hooks.tick_ms = 100;
	}
	lp->epfd = -1;
	lp->wake.fd = -1;
	lp->sig.fd = -1;
	pthread_mutex_init(&lp->mtx, NULL);
	pthread_mutex_init(&lp->owner, NULL);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0 ||
	    (lp->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    (lp->wake.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0 ||
	    (lp->sig.fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK)) <
	            0) {
		log_error("SBX-LOOP-INIT", "err=%s", strerror(errno));
		loop_free(lp);
		return SBX_EINTERNAL;
	}
	lp->wake.cb = loop_on_wake;
	lp->sig.cb = loop_on_signal_fd;
	if (loop_watch(lp, &lp->wake, EPOLLIN) != SBX_OK ||
	    loop_watch(lp, &lp->sig, EPOLLIN) != SBX_OK) {
		loop_free(lp);
		return SBX_EINTERNAL;
	}
	*out = lp;
	return SBX_OK;
}

void
loop_free(struct loop *lp)
{
	if (lp == NULL) {
		return;
	}
	if (lp->sig.fd >= 0) {
		close(lp->sig.fd);
	}
	if (lp->wake.fd >= 0) {
		close(lp->wake.fd);
	}
	if (lp->epfd >= 0) {
		close(lp->epfd);
	}
	pthread_mutex_destroy(&lp->mtx);
	pthread_mutex_destroy(&lp->owner);
	free(lp);
}

void
loop_post(struct loop *lp, struct loop_cmd *cmd)
{
	uint64_t one = 1;
	bool was_empty;

	cmd->next = NULL;
	pthread_mutex_lock(&lp->mtx);
	was_empty = lp->head == NULL;
	if (lp->tail != NULL) {
		lp->tail->next = cmd;
	} else {
		lp->head = cmd;
	}
	lp->tail = cmd;
	pthread_mutex_unlock(&lp->mtx);
	/* Only the post that finds the inbox empty wakes the loop: a later
	 * one is drained together with it, so a burst costs one write. The
	 * loop empties the inbox after clearing the eventfd, so no post is
	 * left unseen. EAGAIN means the counter is saturated (loop awake). */
	if (was_empty &&
	    write(lp->wake.fd, &one, sizeof(one)) != (ssize_t) sizeof(one)) {
		SBX_ASSERT(errno == EAGAIN);
	}
}

sbx_err
loop_watch(struct loop *lp, struct loop_watch *w, uint32_t events)
{
	struct epoll_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.events = events;
	ev.data.ptr = w;
	if (epoll_ctl(lp->epfd, EPOLL_CTL_ADD, w->fd, &ev) != 0) {
		log_error("SBX-LOOP-WATCH", "fd=%d err=%s", w->fd,
		          strerror(errno));
		return SBX_EINTERNAL;
	}
	return SBX_OK;
}

void
loop_unwatch(struct loop *lp, struct loop_watch *w)
{
	/* The fd may already be closed by its owner; nothing to undo then. */
	(void) epoll_ctl(lp->epfd, EPOLL_CTL_DEL, w->fd, NULL);
	for (int i = 0; i < lp->n_evs; i++) {
		if (lp->evs[i].data.ptr == w) {
			lp->evs[i].data.ptr = NULL;
		}
	}
}

static void
loop_drain(struct loop *lp)
{
	struct loop_cmd *c, *next;

	pthread_mutex_lock(&lp->mtx);
	c = lp->head;
	lp->head = lp->tail = NULL;
	pthread_mutex_unlock(&lp->mtx);
	for (; c != NULL; c = next) {
		next = c->next;
		c->fn(c);
	}
}

void
loop_run(struct loop *lp)
{
	int64_t next_tick = sbx_mono_ms() + lp->hooks.tick_ms;
	int64_t now;
	int n, timeout;

	loop_own(lp);
	while (!__atomic_load_n(&lp->stop, __ATOMIC_ACQUIRE)) {
		now = sbx_mono_ms();
		timeout = next_tick > now ? (int) (next_tick - now) : 0;
		/* Asleep, the loop owns nothing: short work may run inline
		 * on other threads meanwhile (loop_try_enter). */
		loop_disown(lp);
		n = epoll_wait(lp->epfd, lp->evs, 64, timeout);
		loop_own(lp);
		if (n < 0 && errno != EINTR) {
			log_error("SBX-LOOP-EPOLL", "err=%s", strerror(errno));
			break;
		}
		lp->n_evs = n > 0 ? n : 0;
		for (int i = 0; i < lp->n_evs; i++) {
			struct loop_watch *w = lp->evs[i].data.ptr;

			if (w != NULL) {
				w->cb(w, lp->evs[i].events);
			}
		}
		lp->n_evs = 0;
		loop_drain(lp);
		if ((now = sbx_mono_ms()) >= next_tick) {
			next_tick = now + lp->hooks.tick_ms;
			if (lp->hooks.tick != NULL) {
				lp->hooks.tick(lp->hooks.arg);
			}
		}
	}
	loop_drain(lp);
	loop_disown(lp);
}

void
loop_run_pending(struct loop *lp)
{
	loop_own(lp);
	loop_drain(lp);
	loop_disown(lp);
}

void
loop_stop(struct loop *lp)
{
	uint64_t one = 1;

	__atomic_store_n(&lp->stop, 1, __ATOMIC_RELEASE);
	if (write(lp->wake.fd, &one, sizeof(one)) < 0) {
		SBX_ASSERT(errno == EAGAIN);
	}
}

bool
loop_try_enter(struct loop *lp)
{
	if (pthread_mutex_trylock(&lp->owner) != 0) {
		return false;
	}
	lp->owner_thread = pthread_self();
	lp->owned = true;
	return true;
}

void
loop_leave(struct loop *lp)
{
	loop_disown(lp);
}

bool
loop_owned(const struct loop *lp)
{
	return lp->owned && pthread_equal(lp->owner_thread, pthread_self());
}
