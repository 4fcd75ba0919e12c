/*
 * Streams: one SUB socket per client, read by libsbx's I/O thread, which
 * hands each stream its events in seq order. A gap (an event with a seq past
 * the next expected) is filled from sbxd's backlog with EventsFetch before
 * the event is delivered; silence is checked the same way on a backoff timer
 * (20 ms doubling to 1 s, reset by every event), so a dropped final event
 * costs at most that delay, never a hang.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>

#include "internal.h"
#include "util.h"
#include "wire.h"

#define POLL_MIN_MS 20
#define POLL_MAX_MS 1000
/* A held stream tells sbxd what it has read at most this often, and at
 * least this often while nothing moves (the hold lasts HOLD_TTL_MS). */
#define HOLD_GAP_MS 10
#define HOLD_REFRESH_MS 2000
#define HOLD_TTL_MS 10000

struct sbx_stream {
	struct sbx_stream *next;
	sbx_client *c;
	char sandbox[SBX_WIRE_ID_MAX + 1];
	char stream[SBX_WIRE_STREAM_MAX + 1];
	char topic[SBX_WIRE_ID_MAX + SBX_WIRE_STREAM_MAX + 4];
	size_t topic_len;
	struct sbx_stream_cbs cbs;
	uint64_t next_seq;
	bool armed; /* the process exists: silence may be polled */
	bool ended;
	sbx_err status;
	char error[256];
	int32_t exit_code;
	int32_t signal;
	int64_t due_ms; /* next silence poll, monotonic */
	bool hold;      /* this client holds the stream (flow control) */
	uint64_t hold_sent;
	int64_t hold_ms;
	uint64_t fetched; /* events repaired from the backlog */
	uint32_t poll_ms;
};

static void
stream_end(struct sbx_stream *s, sbx_err st, const char *why)
{
	s->ended = true;
	s->status = st;
	snprintf(s->error, sizeof(s->error), "%s", why != NULL ? why : "");
	pthread_cond_broadcast(&s->c->cv);
}

/* Deliver EV if it is the next one. Called with c->mtx held. */
static void
stream_deliver(struct sbx_stream *s, const Sbx__V1__Event *ev)
{
	if (s->ended || ev->seq != s->next_seq) {
		return;
	}
	s->next_seq++;
	switch (ev->body_case) {
	case SBX__V1__EVENT__BODY_STDOUT:
	case SBX__V1__EVENT__BODY_STDERR:
	case SBX__V1__EVENT__BODY_PTY: {
		const ProtobufCBinaryData *d =
		        ev->body_case == SBX__V1__EVENT__BODY_STDOUT
		                ? &ev->stdout
		                : ev->body_case == SBX__V1__EVENT__BODY_STDERR
		                          ? &ev->stderr
		                          : &ev->pty;

		if (s->cbs.on_data != NULL) {
			s->cbs.on_data(s->cbs.arg, ev->body_case, d->data,
			               d->len);
		}
		break;
	}
	case SBX__V1__EVENT__BODY_EXIT:
		s->exit_code = ev->exit->exit_code;
		s->signal = ev->exit->signal;
		if (s->cbs.on_exit != NULL) {
			s->cbs.on_exit(s->cbs.arg, ev->exit);
		}
		stream_end(s, SBX_OK, NULL);
		break;
	case SBX__V1__EVENT__BODY__NOT_SET:
	case _SBX__V1__EVENT__BODY__CASE_IS_INT_SIZE:
		break;
	}
}

/*
 * Whether S may simply not have started yet: sbx_stream_open is meant to
 * be called before the process is started, so until its first event an
 * unknown stream is a process still being spawned, as long as its sandbox
 * exists. (A stream whose output sbxd has already collected looks the
 * same; it waits for the caller's timeout rather than failing.)
 */
static bool
stream_not_started(struct sbx_stream *s)
{
	Sbx__V1__GetRequest req = SBX__V1__GET_REQUEST__INIT;
	ProtobufCMessage *rep;
	sbx_err err;

	if (s->next_seq != 1) {
		return false;
	}
	req.id = s->sandbox;
	if ((err = sbx_call(s->c, "Get", &req.base, &rep)) == SBX_OK) {
		protobuf_c_message_free_unpacked(rep, NULL);
		return true;
	}
	/* sbxd away: we cannot tell, so try again later. */
	return err == SBX_EUNAVAIL || err == SBX_ETIMEDOUT;
}

/*
 * Fetch and deliver events from next_seq up to (not including) UNTIL, or
 * everything available when UNTIL is 0. Ends the stream on an error.
 */
static void
stream_fetch(struct sbx_stream *s, uint64_t until)
{
	Sbx__V1__EventsFetchRequest req = SBX__V1__EVENTS_FETCH_REQUEST__INIT;
	Sbx__V1__EventsFetchReply *rep;
	char why[256];
	sbx_err err;

	req.sandbox_id = s->sandbox;
	req.stream = s->stream;
	while (!s->ended && (until == 0 || s->next_seq < until)) {
		req.from_seq = s->next_seq;
		err = sbx_call(s->c, "EventsFetch", &req.base,
		               (ProtobufCMessage **) &rep);
		if (err != SBX_OK) {
			if (err == SBX_EUNAVAIL || err == SBX_ETIMEDOUT) {
				return; /* sbxd away: try again later */
			}
			snprintf(why, sizeof(why), "%s", sbx_last_error());
			if (err == SBX_ENOTFOUND && stream_not_started(s)) {
				return; /* polled again on the backoff timer */
			}
			stream_end(s, err, why);
			return;
		}
		for (size_t i = 0; i < rep->n_events; i++) {
			if (until == 0 || rep->events[i]->seq < until) {
				uint64_t before = s->next_seq;

				stream_deliver(s, rep->events[i]);
				s->fetched += s->next_seq - before;
			}
		}
		if (rep->n_events == 0) {
			sbx__v1__events_fetch_reply__free_unpacked(rep, NULL);
			return;
		}
		sbx__v1__events_fetch_reply__free_unpacked(rep, NULL);
	}
}

static struct sbx_stream *
stream_find(sbx_client *c, const Sbx__V1__Event *ev)
{
	for (struct sbx_stream *s = c->streams; s != NULL; s = s->next) {
		if (strcmp(s->stream, ev->stream) == 0 &&
		    strcmp(s->sandbox, ev->sandbox_id) == 0) {
			return s;
		}
	}
	return NULL;
}

static void
stream_on_event(struct sbx_stream *s, const Sbx__V1__Event *ev)
{
	if (s->ended || ev->seq < s->next_seq) {
		return;
	}
	if (ev->seq > s->next_seq) {
		stream_fetch(s, ev->seq);
	}
	stream_deliver(s, ev);
	s->poll_ms = POLL_MIN_MS;
	s->due_ms = sbx_mono_ms() + s->poll_ms;
}

/* Tell sbxd what a held stream has delivered, so it lets the process go on
 * (see StreamHold). Errors are left to the next refresh or the poll. */
static void
stream_hold_send(struct sbx_stream *s, uint64_t seq, uint32_t ttl_ms)
{
	Sbx__V1__StreamHoldRequest req = SBX__V1__STREAM_HOLD_REQUEST__INIT;
	ProtobufCMessage *rep;

	req.sandbox_id = s->sandbox;
	req.stream = s->stream;
	req.holder = s->c->holder;
	req.seq = seq;
	req.ttl_ms = ttl_ms;
	if (sbx_call(s->c, "StreamHold", &req.base, &rep) == SBX_OK) {
		protobuf_c_message_free_unpacked(rep, NULL);
	}
}

/* Returns ms until this held stream wants to report again. */
static int64_t
stream_hold_refresh(struct sbx_stream *s, int64_t now)
{
	uint64_t seq = s->next_seq - 1;

	if ((seq > s->hold_sent && now - s->hold_ms >= HOLD_GAP_MS) ||
	    now - s->hold_ms >= HOLD_REFRESH_MS) {
		stream_hold_send(s, seq, HOLD_TTL_MS);
		s->hold_sent = seq;
		s->hold_ms = now = sbx_mono_ms();
	}
	return seq > s->hold_sent ? HOLD_GAP_MS
	                          : s->hold_ms + HOLD_REFRESH_MS - now;
}

/* Poll streams that have been silent too long; returns ms to the next. */
static int64_t
streams_poll(sbx_client *c)
{
	int64_t now = sbx_mono_ms(), next = POLL_MAX_MS;

	for (struct sbx_stream *s = c->streams; s != NULL; s = s->next) {
		if (s->ended || !s->armed) {
			continue;
		}
		if (s->due_ms <= now) {
			stream_fetch(s, 0);
			s->poll_ms = s->poll_ms * 2 > POLL_MAX_MS ? POLL_MAX_MS
			                                          : s->poll_ms * 2;
			now = sbx_mono_ms();
			s->due_ms = now + s->poll_ms;
		}
		if (!s->ended && s->due_ms - now < next) {
			next = s->due_ms - now;
		}
		if (!s->ended && s->hold) {
			int64_t h = stream_hold_refresh(s, now);

			if (h < next) {
				next = h;
			}
		}
	}
	return next > 0 ? next : 1;
}

static void *
io_main(void *arg)
{
	sbx_client *c = arg;
	int64_t wait_ms = POLL_MIN_MS;
	Sbx__V1__Event *ev;
	nng_msg *msg;
	int rv;

	for (;;) {
		nng_socket_set_ms(c->sub, NNG_OPT_RECVTIMEO,
		                  (nng_duration) wait_ms);
		rv = nng_recvmsg(c->sub, &msg, 0);
		pthread_mutex_lock(&c->mtx);
		if (c->io_stop) {
			pthread_mutex_unlock(&c->mtx);
			if (rv == 0) {
				nng_msg_free(msg);
			}
			break;
		}
		if (rv == 0) {
			if (sbx_wire_event_decode(nng_msg_body(msg),
			                          nng_msg_len(msg), &ev) == SBX_OK) {
				struct sbx_stream *s = stream_find(c, ev);

				if (s != NULL) {
					stream_on_event(s, ev);
				}
				sbx__v1__event__free_unpacked(ev, NULL);
			}
			nng_msg_free(msg);
		}
		wait_ms = streams_poll(c);
		pthread_mutex_unlock(&c->mtx);
	}
	return NULL;
}

sbx_err
sbx_events_start(sbx_client *c)
{
	nng_dialer d;
	sbx_err err;
	int rv;

	if (c->io_started) {
		return SBX_OK;
	}
	if ((rv = nng_sub0_open(&c->sub)) != 0) {
		return sbx_fail(SBX_EINTERNAL, "sub socket: %s",
		                nng_strerror(rv));
	}
	if ((rv = nng_socket_set_int(c->sub, NNG_OPT_RECVBUF,
	                              (int) c->event_queue)) != 0 ||
	    (rv = nng_socket_set_size(c->sub, NNG_OPT_RECVMAXSZ,
	                              64u << 20)) != 0 ||
	    (rv = nng_socket_set_ms(c->sub, NNG_OPT_RECONNMINT, 10)) != 0 ||
	    (rv = nng_socket_set_ms(c->sub, NNG_OPT_RECONNMAXT, 1000)) != 0 ||
	    (rv = nng_dialer_create(&d, c->sub, c->events_url)) != 0) {
		nng_close(c->sub);
		return sbx_fail(SBX_EINVAL, "%s: %s", c->events_url,
		                nng_strerror(rv));
	}
	if ((err = sbx_dialer_tls(c, d, c->events_url, true)) != SBX_OK) {
		nng_close(c->sub);
		return err;
	}
	if ((rv = nng_dialer_start(d, 0)) != 0) {
		nng_close(c->sub);
		return sbx_fail(SBX_EUNAVAIL, "events at %s: %s",
		                c->events_url, nng_strerror(rv));
	}
	if (pthread_create(&c->io, NULL, io_main, c) != 0) {
		nng_close(c->sub);
		return sbx_fail(SBX_EINTERNAL, "cannot start the I/O thread");
	}
	c->io_started = true;
	return SBX_OK;
}

void
sbx_events_stop(sbx_client *c)
{
	struct sbx_stream *s;

	pthread_mutex_lock(&c->mtx);
	if (!c->io_started) {
		pthread_mutex_unlock(&c->mtx);
		return;
	}
	c->io_stop = true;
	pthread_mutex_unlock(&c->mtx);
	pthread_join(c->io, NULL);
	nng_close(c->sub);
	while ((s = c->streams) != NULL) {
		c->streams = s->next;
		free(s);
	}
	c->io_started = false;
}

static sbx_err
stream_open(sbx_client *c, const char *sandbox, const char *stream,
            const struct sbx_stream_cbs *cbs, bool armed, bool hold,
            sbx_stream **out)
{
	struct sbx_stream *s;
	sbx_err err;
	int rv;

	if (!sbx_wire_id_valid(sandbox) || !sbx_wire_stream_valid(stream)) {
		return sbx_fail(SBX_EINVAL, "bad sandbox or stream id");
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		return sbx_fail(SBX_ENOMEM, "out of memory");
	}
	s->c = c;
	snprintf(s->sandbox, sizeof(s->sandbox), "%s", sandbox);
	snprintf(s->stream, sizeof(s->stream), "%s", stream);
	s->topic_len = sbx_wire_topic(s->topic, sizeof(s->topic), sandbox,
	                              stream);
	if (cbs != NULL) {
		s->cbs = *cbs;
	}
	s->next_seq = 1;
	s->armed = armed;
	s->hold = hold;
	s->hold_ms = sbx_mono_ms();
	s->poll_ms = POLL_MIN_MS;
	s->due_ms = sbx_mono_ms() + POLL_MIN_MS;
	pthread_mutex_lock(&c->mtx);
	if ((err = sbx_events_start(c)) != SBX_OK) {
		pthread_mutex_unlock(&c->mtx);
		free(s);
		return err;
	}
	if ((rv = nng_socket_set(c->sub, NNG_OPT_SUB_SUBSCRIBE, s->topic,
	                         s->topic_len)) != 0) {
		pthread_mutex_unlock(&c->mtx);
		free(s);
		return sbx_fail(SBX_EINTERNAL, "subscribe: %s",
		                nng_strerror(rv));
	}
	s->next = c->streams;
	c->streams = s;
	pthread_mutex_unlock(&c->mtx);
	*out = s;
	return SBX_OK;
}

SBX_API sbx_err
sbx_stream_open(sbx_client *c, const char *sandbox, const char *stream,
                const struct sbx_stream_cbs *cbs, sbx_stream **out)
{
	return stream_open(c, sandbox, stream, cbs, true, false, out);
}

SBX_API sbx_err
sbx_stream_wait(sbx_stream *s, uint32_t timeout_ms, int32_t *exit_code,
                int32_t *signal)
{
	sbx_client *c = s->c;
	struct timespec ts;
	sbx_err err;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long) (timeout_ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&c->mtx);
	while (!s->ended) {
		if (timeout_ms == 0) {
			pthread_cond_wait(&c->cv, &c->mtx);
		} else if (pthread_cond_timedwait(&c->cv, &c->mtx, &ts) != 0) {
			break;
		}
	}
	if (!s->ended) {
		err = sbx_fail(SBX_ETIMEDOUT, "stream %s still running",
		               s->stream);
	} else if (s->status != SBX_OK) {
		err = sbx_fail(s->status, "%s", s->error);
	} else {
		err = SBX_OK;
		if (exit_code != NULL) {
			*exit_code = s->exit_code;
		}
		if (signal != NULL) {
			*signal = s->signal;
		}
	}
	pthread_mutex_unlock(&c->mtx);
	return err;
}

SBX_API uint64_t
sbx_stream_fetched(sbx_stream *s)
{
	uint64_t n;

	pthread_mutex_lock(&s->c->mtx);
	n = s->fetched;
	pthread_mutex_unlock(&s->c->mtx);
	return n;
}

SBX_API void
sbx_stream_close(sbx_stream *s)
{
	sbx_client *c;
	struct sbx_stream **pp;
	bool release;

	if (s == NULL) {
		return;
	}
	c = s->c;
	pthread_mutex_lock(&c->mtx);
	release = s->hold && !s->ended;
	pthread_mutex_unlock(&c->mtx);
	/* A follower leaving early lets its process run on at once, rather
	 * than when the hold lapses. */
	if (release) {
		stream_hold_send(s, 0, 0);
	}
	pthread_mutex_lock(&c->mtx);
	for (pp = &c->streams; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	}
	/* Another stream may follow the same topic; NNG counts nothing, so
	 * only unsubscribe when none does. */
	for (struct sbx_stream *o = c->streams; o != NULL; o = o->next) {
		if (strcmp(o->topic, s->topic) == 0) {
			s->topic_len = 0;
			break;
		}
	}
	if (s->topic_len > 0 && c->io_started) {
		nng_socket_set(c->sub, NNG_OPT_SUB_UNSUBSCRIBE, s->topic,
		               s->topic_len);
	}
	pthread_mutex_unlock(&c->mtx);
	free(s);
}

SBX_API void
sbx_stream_id(char out[24])
{
	uint64_t r = 0;

	if (sbx_random(&r, sizeof(r)) != SBX_OK) {
		r = (uint64_t) sbx_mono_ns() ^ (uint64_t) (uintptr_t) out;
	}
	snprintf(out, 24, "c%016llx", (unsigned long long) r);
}

SBX_API sbx_err
sbx_process_run(sbx_client *c, Sbx__V1__ProcessStartRequest *req,
                const struct sbx_stream_cbs *cbs, uint32_t timeout_ms,
                Sbx__V1__ProcessInfo **info, int32_t *exit_code,
                int32_t *signal)
{
	Sbx__V1__ProcessInfo *pi = NULL;
	char id[24];
	char *given = req->stream;
	sbx_stream *s;
	sbx_err err;

	char *given_hold = req->hold;

	if (req->stream == NULL || req->stream[0] == '\0') {
		sbx_stream_id(id);
		req->stream = id;
	}
	/* Every byte: the stream is held for this client from its first
	 * event, so a slow reader slows the process instead of losing
	 * output. */
	req->hold = c->holder;
	err = stream_open(c, req->sandbox_id, req->stream, cbs, false, true,
	                  &s);
	if (err != SBX_OK) {
		req->stream = given;
		req->hold = given_hold;
		return err;
	}
	err = sbx_call(c, "ProcessStart", &req->base, (ProtobufCMessage **) &pi);
	req->stream = given;
	req->hold = given_hold;
	if (err != SBX_OK) {
		sbx_stream_close(s);
		return err;
	}
	pthread_mutex_lock(&c->mtx);
	s->armed = true;
	pthread_mutex_unlock(&c->mtx);
	if (cbs != NULL && cbs->on_start != NULL) {
		cbs->on_start(cbs->arg, pi);
	}
	err = sbx_stream_wait(s, timeout_ms, exit_code, signal);
	sbx_stream_close(s);
	if (info != NULL) {
		*info = pi;
	} else {
		sbx__v1__process_info__free_unpacked(pi, NULL);
	}
	return err;
}
