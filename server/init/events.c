/*
 * Event batching. The Up under construction borrows every event's data
 * from the logs; it is packed by link_send before any log can change.
 * Loop thread only.
 */
#include <stdlib.h>

#include "events.h"
#include "link.h"
#include "log.h"
#include "proc.h"

/* Framing per event on the wire, roughly: tag, lengths, stream, seq,
 * time. Only for sizing batches. */
#define EVENTS_FRAMING 96

struct events_taken {
	struct evlog *log;
	size_t n;
};

struct events {
	Sbx__V1__Event ev[EVENTS_MSG_MAX];
	Sbx__V1__Event *evp[EVENTS_MSG_MAX];
	Sbx__V1__ProcessExit exits[EVENTS_MSG_MAX];
	struct events_taken taken[EVENTS_MSG_MAX]; /* >= 1 event per log */
	size_t n;
	size_t bytes;
	size_t n_taken;
	size_t rr; /* the process the next batch starts with */
};

struct events *
events_new(void)
{
	struct events *e;

	if ((e = calloc(1, sizeof(*e))) == NULL) {
		return NULL;
	}
	for (size_t i = 0; i < EVENTS_MSG_MAX; i++) {
		e->evp[i] = &e->ev[i];
	}
	return e;
}

void
events_free(struct events *e)
{
	free(e);
}

static bool
batch_full(const struct events *e)
{
	return e->n == EVENTS_MSG_MAX || e->bytes >= EVENTS_MSG_BYTES;
}

static void
batch_add(struct events *e, const char *stream, const struct evlog_event *ev)
{
	Sbx__V1__Event *out = &e->ev[e->n];
	Sbx__V1__ProcessExit *x = &e->exits[e->n];
	ProtobufCBinaryData data = {.len = ev->len,
				    .data = (uint8_t *) ev->data};

	sbx__v1__event__init(out);
	out->stream = (char *) stream;
	out->seq = ev->seq;
	out->time_ms = ev->time_ms;
	switch (ev->kind) {
	case EVLOG_STDOUT:
		out->body_case = SBX__V1__EVENT__BODY_STDOUT;
		out->stdout = data;
		break;
	case EVLOG_STDERR:
		out->body_case = SBX__V1__EVENT__BODY_STDERR;
		out->stderr = data;
		break;
	case EVLOG_PTY:
		out->body_case = SBX__V1__EVENT__BODY_PTY;
		out->pty = data;
		break;
	case EVLOG_EXIT:
		sbx__v1__process_exit__init(x);
		x->exit_code = ev->exit_code;
		x->signal = ev->signal;
		x->status = (char *) (ev->signal != 0 ? "signaled" : "exited");
		out->body_case = SBX__V1__EVENT__BODY_EXIT;
		out->exit = x;
		break;
	}
	e->n++;
	e->bytes += ev->len + EVENTS_FRAMING;
}

/* Take the unsent events of T, each process's in order, from e->rr on. */
static void
batch_fill(struct events *e, struct procs *t)
{
	size_t count = procs_count(t), k;
	const struct evlog_event *ev;
	struct proc *p;

	e->n = e->bytes = e->n_taken = 0;
	for (size_t i = 0; i < count && !batch_full(e); i++) {
		p = procs_at(t, (e->rr + i) % count);
		for (k = 0; !batch_full(e) &&
			    (ev = evlog_unsent(proc_log(p), k)) != NULL;
		     k++) {
			batch_add(e, proc_stream(p), ev);
		}
		if (k > 0) {
			e->taken[e->n_taken++] =
				(struct events_taken){proc_log(p), k};
		}
	}
	/* A process that fills whole batches must not starve the rest. */
	e->rr = count != 0 ? (e->rr + 1) % count : 0;
}

void
events_pump(struct events *e, struct procs *t, struct link *l)
{
	Sbx__Init__V1__Up up;

	while (link_ready(l) && !link_pending(l)) {
		batch_fill(e, t);
		if (e->n == 0) {
			return;
		}
		sbx__init__v1__up__init(&up);
		up.n_events = e->n;
		up.events = e->evp;
		if (link_send(l, &up, true) != SBX_OK) {
			/* The cursors stay: the next pump tries again. */
			log_error("SBX-INIT-NOMEM", "what=events n=%zu", e->n);
			return;
		}
		for (size_t i = 0; i < e->n_taken; i++) {
			evlog_mark_sent(e->taken[i].log, e->taken[i].n);
		}
	}
}

void
events_replay(struct procs *t)
{
	for (size_t i = 0; i < procs_count(t); i++) {
		evlog_rewind(proc_log(procs_at(t, i)));
	}
}
