/*
 * The worker pool: a mutex+condvar queue and N threads. Jobs never touch
 * sandbox state; they get copies of what they need and post results back.
 */
#include <errno.h>
#include <linux/capability.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "workers.h"

struct workers {
	struct loop *loop;
	pthread_mutex_t mtx;
	pthread_cond_t cv;
	struct work *head;
	struct work *tail;
	bool stopping;
	int flags;
	unsigned n;
	char name[16];
	pthread_t threads[];
};

static void
work_on_done(struct loop_cmd *cmd)
{
	struct work *w = (struct work *) ((char *) cmd -
	                                  __builtin_offsetof(struct work, cmd));

	w->done(w);
}

/*
 * Keep only CAP_SETUID/CAP_SETGID for this thread. capset(2) on the calling
 * thread changes only that thread; glibc has no wrapper, and libcap is not
 * worth a dependency for one call.
 */
static int
workers_drop_caps(void)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
		.pid = 0,
	};
	struct __user_cap_data_struct data[2];
	uint32_t keep = (1u << CAP_SETUID) | (1u << CAP_SETGID);

	memset(data, 0, sizeof(data));
	data[0].effective = keep;
	data[0].permitted = keep;
	return (int) syscall(SYS_capset, &hdr, data);
}

static void *
workers_main(void *arg)
{
	struct workers *ws = arg;
	struct work *w;

	pthread_setname_np(pthread_self(), ws->name);
	if ((ws->flags & WORKERS_DROP_CAPS) != 0 && workers_drop_caps() != 0) {
		/* Fail closed: a file worker must not run with root's caps. */
		log_error("SBX-WORKERS-CAPS", "err=%s", strerror(errno));
		abort();
	}
	pthread_mutex_lock(&ws->mtx);
	for (;;) {
		while (ws->head == NULL && !ws->stopping) {
			pthread_cond_wait(&ws->cv, &ws->mtx);
		}
		if ((w = ws->head) == NULL) {
			break;
		}
		if ((ws->head = w->next) == NULL) {
			ws->tail = NULL;
		}
		pthread_mutex_unlock(&ws->mtx);
		w->run(w);
		w->cmd.fn = work_on_done;
		loop_post(ws->loop, &w->cmd);
		pthread_mutex_lock(&ws->mtx);
	}
	pthread_mutex_unlock(&ws->mtx);
	return NULL;
}

sbx_err
workers_start(struct workers **out, struct loop *lp, unsigned n, int flags,
              const char *name)
{
	struct workers *ws;

	if ((ws = calloc(1, sizeof(*ws) + n * sizeof(pthread_t))) == NULL) {
		return SBX_ENOMEM;
	}
	ws->loop = lp;
	ws->flags = flags;
	snprintf(ws->name, sizeof(ws->name), "%s", name);
	pthread_mutex_init(&ws->mtx, NULL);
	pthread_cond_init(&ws->cv, NULL);
	for (; ws->n < n; ws->n++) {
		if (pthread_create(&ws->threads[ws->n], NULL, workers_main,
		                   ws) != 0) {
			workers_stop(ws);
			return SBX_EINTERNAL;
		}
	}
	*out = ws;
	return SBX_OK;
}

void
workers_submit(struct workers *ws, struct work *w)
{
	w->next = NULL;
	pthread_mutex_lock(&ws->mtx);
	if (ws->tail != NULL) {
		ws->tail->next = w;
	} else {
		ws->head = w;
	}
	ws->tail = w;
	pthread_cond_signal(&ws->cv);
	pthread_mutex_unlock(&ws->mtx);
}

void
workers_stop(struct workers *ws)
{
	if (ws == NULL) {
		return;
	}
	pthread_mutex_lock(&ws->mtx);
	ws->stopping = true;
	pthread_cond_broadcast(&ws->cv);
	pthread_mutex_unlock(&ws->mtx);
	for (unsigned i = 0; i < ws->n; i++) {
		pthread_join(ws->threads[i], NULL);
	}
	pthread_cond_destroy(&ws->cv);
	pthread_mutex_destroy(&ws->mtx);
	free(ws);
}
