/*
 * Per-process event log: a ring of events holding seqs first..next-1, where
 * first = next - count. Events older than the ack are the retained ones;
 * only those are ever freed, so every event sbxd has not stored is here.
 * Pure; loop thread only.
 */
#include <stdlib.h>
#include <string.h>

#include "evlog.h"

#define EVLOG_RING_MIN 16

struct evlog {
	struct evlog_event **ring;
	size_t cap;   /* slots in ring */
	size_t head;  /* slot of the oldest event */
	size_t count; /* events in ring */
	uint64_t next_seq;
	uint64_t acked;    /* every seq <= acked is stored by sbxd */
	uint64_t send_seq; /* the next seq to hand to sbxd */
	size_t window_bytes;
	size_t retain_bytes;
	size_t unacked_cost;
	size_t retained_cost;
	struct evlog_event *exit_ev; /* preallocated until appended */
	bool ended;
};

static size_t
event_cost(const struct evlog_event *ev)
{
	return ev->len + EVLOG_EVENT_COST;
}

static uint64_t
first_seq(const struct evlog *log)
{
	return log->next_seq - log->count;
}

/* The event with seq S, which must be in the ring. */
static struct evlog_event *
event_at(const struct evlog *log, uint64_t s)
{
	return log
		->ring[(log->head + (size_t) (s - first_seq(log))) % log->cap];
}

/* Make room for NEED more events, keeping their order. */
static sbx_err
ring_reserve(struct evlog *log, size_t need)
{
	struct evlog_event **ring;
	size_t cap = log->cap;

	if (log->count + need <= log->cap) {
		return SBX_OK;
	}
	while (cap < log->count + need) {
		cap = cap != 0 ? cap * 2 : EVLOG_RING_MIN;
	}
	if ((ring = calloc(cap, sizeof(*ring))) == NULL) {
		return SBX_ENOMEM;
	}
	for (size_t i = 0; i < log->count; i++) {
		ring[i] = log->ring[(log->head + i) % log->cap];
	}
	free(log->ring);
	log->ring = ring;
	log->cap = cap;
	log->head = 0;
	return SBX_OK;
}

static void
ring_push(struct evlog *log, struct evlog_event *ev, int64_t now_ms)
{
	ev->seq = log->next_seq++;
	ev->time_ms = now_ms;
	log->ring[(log->head + log->count) % log->cap] = ev;
	log->count++;
	log->unacked_cost += event_cost(ev);
}

struct evlog *
evlog_new(size_t window_bytes, size_t retain_bytes)
{
	struct evlog *log;

	if ((log = calloc(1, sizeof(*log))) == NULL) {
		return NULL;
	}
	log->next_seq = 1;
	log->send_seq = 1;
	log->window_bytes = window_bytes;
	log->retain_bytes = retain_bytes;
	if ((log->exit_ev = calloc(1, sizeof(*log->exit_ev))) == NULL ||
	    ring_reserve(log, 1) != SBX_OK) {
		evlog_free(log);
		return NULL;
	}
	log->exit_ev->kind = EVLOG_EXIT;
	return log;
}

void
evlog_free(struct evlog *log)
{
	if (log == NULL) {
		return;
	}
	for (size_t i = 0; i < log->count; i++) {
		free(log->ring[(log->head + i) % log->cap]);
	}
	free(log->ring);
	free(log->exit_ev);
	free(log);
}

sbx_err
evlog_output_begin(struct evlog *log, enum evlog_kind kind, size_t cap,
		   struct evlog_event **out)
{
	struct evlog_event *ev;

	if (log->ended || kind == EVLOG_EXIT) {
		return SBX_ESTATE;
	}
	/* Two slots: this event and the one the exit event must find. */
	if (ring_reserve(log, 2) != SBX_OK ||
	    (ev = malloc(sizeof(*ev) + cap)) == NULL) {
		return SBX_ENOMEM;
	}
	memset(ev, 0, sizeof(*ev));
	ev->kind = kind;
	*out = ev;
	return SBX_OK;
}

void
evlog_output_commit(struct evlog *log, struct evlog_event *ev, size_t len,
		    int64_t now_ms)
{
	struct evlog_event *small;

	if (len == 0) {
		free(ev);
		return;
	}
	/* Reads are sized for the worst case; give the rest back. */
	if ((small = realloc(ev, sizeof(*ev) + len)) != NULL) {
		ev = small;
	}
	ev->len = len;
	ring_push(log, ev, now_ms);
}

void
evlog_append_exit(struct evlog *log, int32_t exit_code, int32_t signal,
		  int64_t now_ms)
{
	struct evlog_event *ev = log->exit_ev;

	if (log->ended) {
		return;
	}
	log->exit_ev = NULL;
	log->ended = true;
	ev->exit_code = exit_code;
	ev->signal = signal;
	ring_push(log, ev, now_ms);
}

bool
evlog_window_open(const struct evlog *log)
{
	return log->unacked_cost < log->window_bytes;
}

const struct evlog_event *
evlog_unsent(const struct evlog *log, size_t k)
{
	uint64_t s =
		log->send_seq > first_seq(log) ? log->send_seq : first_seq(log);

	if (k >= log->next_seq - s) {
		return NULL;
	}
	return event_at(log, s + k);
}

void
evlog_mark_sent(struct evlog *log, size_t n)
{
	uint64_t s =
		log->send_seq > first_seq(log) ? log->send_seq : first_seq(log);

	log->send_seq = n < log->next_seq - s ? s + n : log->next_seq;
}

void
evlog_rewind(struct evlog *log)
{
	log->send_seq = first_seq(log);
}

/* Free the oldest acked events until the retained ones fit the budget. */
static void
evlog_trim(struct evlog *log)
{
	struct evlog_event *ev;

	while (log->count > 0 && log->retained_cost > log->retain_bytes) {
		ev = log->ring[log->head];
		if (ev->seq > log->acked) {
			break;
		}
		log->retained_cost -= event_cost(ev);
		log->head = (log->head + 1) % log->cap;
		log->count--;
		free(ev);
	}
}

void
evlog_ack(struct evlog *log, uint64_t seq)
{
	uint64_t last = log->next_seq - 1;

	if (seq > last) {
		seq = last;
	}
	if (seq <= log->acked) {
		return;
	}
	for (uint64_t s = log->acked + 1; s <= seq; s++) {
		size_t cost = event_cost(event_at(log, s));

		log->unacked_cost -= cost;
		log->retained_cost += cost;
	}
	log->acked = seq;
	/* sbxd has these: sending them again would only cost bandwidth. */
	if (log->send_seq <= seq) {
		log->send_seq = seq + 1;
	}
	evlog_trim(log);
}

bool
evlog_done(const struct evlog *log)
{
	return log->ended && log->acked == log->next_seq - 1;
}

uint64_t
evlog_last_seq(const struct evlog *log)
{
	return log->next_seq - 1;
}

size_t
evlog_unacked_bytes(const struct evlog *log)
{
	return log->unacked_cost;
}
