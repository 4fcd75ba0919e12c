/*
 * Publisher and backlogs. The backlog is a ring of retained events; its
 * payloads are heap copies so that fetch replies can point into them.
 */
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>

#include "config.h"
#include "events.h"
#include "listen.h"
#include "log.h"
#include "msgbuf.h"
#include "wire.h"

struct publisher {
	nng_socket sock;
	struct listeners listeners;
	uint64_t sent;
	uint64_t failed;
};

sbx_err
publisher_open(struct publisher **out, const struct config *cfg, char *why,
               size_t whylen)
{
	struct publisher *p;
	int rv;

	if ((p = calloc(1, sizeof(*p))) == NULL) {
		return SBX_ENOMEM;
	}
	if ((rv = nng_pub0_open(&p->sock)) != 0) {
		snprintf(why, whylen, "pub socket: %s", nng_strerror(rv));
		free(p);
		return SBX_EINTERNAL;
	}
	if ((rv = nng_socket_set_int(p->sock, NNG_OPT_SENDBUF, 256)) != 0 ||
	    listen_urls(&p->listeners, p->sock, cfg, cfg->events_urls,
	                LISTEN_EVENTS, why, whylen) != SBX_OK) {
		if (rv != 0) {
			snprintf(why, whylen, "pub socket: %s", nng_strerror(rv));
		}
		nng_close(p->sock);
		free(p);
		return SBX_EINVAL;
	}
	*out = p;
	return SBX_OK;
}

void
publisher_check_listeners(struct publisher *p, int64_t now_mono_ms)
{
	listen_check(&p->listeners, now_mono_ms);
}

void
publisher_close(struct publisher *p)
{
	if (p != NULL) {
		listen_fini(&p->listeners);
		nng_close(p->sock);
		free(p);
	}
}

void
publisher_send(struct publisher *p, const Sbx__V1__Event *ev)
{
	size_t size = sbx__v1__event__get_packed_size(ev) + 2 * 64 + 2;
	struct sbx_msgbuf b;

	if (sbx_msgbuf_init(&b, size) != 0) {
		p->failed++;
		return;
	}
	sbx_wire_event_encode(&b.base, ev);
	/* pub0 never blocks: it drops for subscribers that cannot keep up. */
	if (b.err != 0 || nng_sendmsg(p->sock, b.msg, 0) != 0) {
		nng_msg_free(b.msg);
		p->failed++;
		return;
	}
	p->sent++;
}

uint64_t
publisher_count(const struct publisher *p)
{
	return p->sent;
}

void
backlog_init(struct backlog *b, size_t max_bytes)
{
	memset(b, 0, sizeof(*b));
	b->max_bytes = max_bytes;
	b->next_seq = 1;
	b->pinned_after = UINT64_MAX;
}

static struct bl_event *
backlog_at(const struct backlog *b, size_t i)
{
	return &b->ring[(b->head + i) % b->cap];
}

static void
bl_event_clear(struct bl_event *e)
{
	free(e->data);
	free(e->status);
	memset(e, 0, sizeof(*e));
}

static void
backlog_drop_oldest(struct backlog *b)
{
	struct bl_event *e = backlog_at(b, 0);

	b->bytes -= e->len;
	bl_event_clear(e);
	b->head = (b->head + 1) % b->cap;
	b->count--;
}

void
backlog_fini(struct backlog *b)
{
	while (b->count > 0) {
		backlog_drop_oldest(b);
	}
	free(b->ring);
	b->ring = NULL;
	b->cap = 0;
}

static bool
backlog_reserve(struct backlog *b)
{
	struct bl_event *ring;
	size_t cap;

	if (b->count < b->cap) {
		return true;
	}
	cap = b->cap != 0 ? b->cap * 2 : 16;
	if ((ring = calloc(cap, sizeof(*ring))) == NULL) {
		return false;
	}
	for (size_t i = 0; i < b->count; i++) {
		ring[i] = *backlog_at(b, i);
	}
	free(b->ring);
	b->ring = ring;
	b->cap = cap;
	b->head = 0;
	return true;
}

static bool
bl_event_fill(struct bl_event *e, const Sbx__V1__Event *ev)
{
	const ProtobufCBinaryData *d = NULL;

	e->seq = ev->seq;
	e->time_ms = ev->time_ms;
	e->kind = ev->body_case;
	switch (ev->body_case) {
	case SBX__V1__EVENT__BODY_STDOUT:
		d = &ev->stdout;
		break;
	case SBX__V1__EVENT__BODY_STDERR:
		d = &ev->stderr;
		break;
	case SBX__V1__EVENT__BODY_PTY:
		d = &ev->pty;
		break;
	case SBX__V1__EVENT__BODY_EXIT:
		e->exit_code = ev->exit->exit_code;
		e->signal = ev->exit->signal;
		e->status = strdup(ev->exit->status);
		return e->status != NULL;
	case SBX__V1__EVENT__BODY__NOT_SET:
	case _SBX__V1__EVENT__BODY__CASE_IS_INT_SIZE:
		return true;
	}
	if (d->len > 0 && (e->data = malloc(d->len)) == NULL) {
		return false;
	}
	if (d->len > 0) {
		memcpy(e->data, d->data, d->len);
	}
	e->len = d->len;
	return true;
}

bool
backlog_append(struct backlog *b, const Sbx__V1__Event *ev)
{
	struct bl_event *e;

	if (ev->seq < b->next_seq || b->ended) {
		return false;
	}
	if (ev->seq > b->next_seq) {
		/* Events were lost upstream; a fetch across the hole must
		 * fail, so nothing before it is kept. */
		while (b->count > 0) {
			backlog_drop_oldest(b);
		}
		log_warn("SBX-EVENTS-GAP", "want=%llu got=%llu",
		         (unsigned long long) b->next_seq,
		         (unsigned long long) ev->seq);
	}
	if (!backlog_reserve(b)) {
		return false;
	}
	e = backlog_at(b, b->count);
	if (!bl_event_fill(e, ev)) {
		bl_event_clear(e);
		return false;
	}
	b->count++;
	b->bytes += e->len;
	b->next_seq = ev->seq + 1;
	if (ev->body_case == SBX__V1__EVENT__BODY_EXIT) {
		b->ended = true;
	}
	backlog_trim(b);
	return true;
}

void
backlog_trim(struct backlog *b)
{
	/* Keep at least the newest event, whatever its size, and every
	 * pinned one: a held stream's size is bounded by sbx-init's window,
	 * which sbxd stops acknowledging. */
	while (b->bytes > b->max_bytes && b->count > 1 &&
	       backlog_at(b, 0)->seq <= b->pinned_after) {
		backlog_drop_oldest(b);
	}
}

uint64_t
backlog_first_seq(const struct backlog *b)
{
	return b->count > 0 ? backlog_at(b, 0)->seq : b->next_seq;
}

void
backlog_event_view(const struct bl_event *e, const char *sandbox,
                   const char *stream, Sbx__V1__Event *ev,
                   Sbx__V1__ProcessExit *exit)
{
	ProtobufCBinaryData d = {.len = e->len, .data = e->data};

	sbx__v1__event__init(ev);
	ev->sandbox_id = (char *) sandbox;
	ev->stream = (char *) stream;
	ev->seq = e->seq;
	ev->time_ms = e->time_ms;
	ev->body_case = e->kind;
	switch (e->kind) {
	case SBX__V1__EVENT__BODY_STDOUT:
		ev->stdout = d;
		break;
	case SBX__V1__EVENT__BODY_STDERR:
		ev->stderr = d;
		break;
	case SBX__V1__EVENT__BODY_PTY:
		ev->pty = d;
		break;
	case SBX__V1__EVENT__BODY_EXIT:
		sbx__v1__process_exit__init(exit);
		exit->exit_code = e->exit_code;
		exit->signal = e->signal;
		exit->status = e->status;
		ev->exit = exit;
		break;
	case SBX__V1__EVENT__BODY__NOT_SET:
	case _SBX__V1__EVENT__BODY__CASE_IS_INT_SIZE:
		break;
	}
}

/* One fetched event with room for its exit body; EV first so that the
 * array can be freed through reply->events[0]. */
struct fetch_slot {
	Sbx__V1__Event ev;
	Sbx__V1__ProcessExit exit;
};

sbx_err
backlog_fetch(const struct backlog *b, const char *sandbox, const char *stream,
              uint64_t from_seq, size_t max_bytes,
              Sbx__V1__EventsFetchReply *reply, char *why, size_t whylen)
{
	uint64_t first = backlog_first_seq(b);
	size_t start, n = 0, bytes = 0;
	struct fetch_slot *slots;

	sbx__v1__events_fetch_reply__init(reply);
	reply->next_seq = b->next_seq;
	reply->ended = b->ended;
	if (from_seq == 0) {
		from_seq = 1;
	}
	if (from_seq < first) {
		snprintf(why, whylen,
		         "events %llu..%llu of stream %s were dropped "
		         "(backlog of %zu bytes overrun)",
		         (unsigned long long) from_seq,
		         (unsigned long long) first - 1, stream, b->max_bytes);
		return SBX_EDATALOSS;
	}
	if (from_seq >= b->next_seq) {
		return SBX_OK;
	}
	start = (size_t) (from_seq - first);
	while (start + n < b->count &&
	       (n == 0 || bytes + backlog_at(b, start + n)->len <= max_bytes)) {
		bytes += backlog_at(b, start + n)->len;
		n++;
	}
	slots = calloc(n, sizeof(*slots));
	reply->events = calloc(n, sizeof(*reply->events));
	if (slots == NULL || reply->events == NULL) {
		free(slots);
		free(reply->events);
		reply->events = NULL;
		return SBX_ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		backlog_event_view(backlog_at(b, start + i), sandbox, stream,
		                   &slots[i].ev, &slots[i].exit);
		reply->events[i] = &slots[i].ev;
	}
	reply->n_events = n;
	return SBX_OK;
}

void
backlog_fetch_fini(Sbx__V1__EventsFetchReply *reply)
{
	if (reply->n_events > 0) {
		free((struct fetch_slot *) reply->events[0]);
	}
	free(reply->events);
	reply->events = NULL;
	reply->n_events = 0;
}
