/*
 * events: the PUB socket sbxd publishes stream events on, and the bounded
 * per-stream backlog that EventsFetch reads to repair a subscriber's gaps.
 *
 * A stream's events carry seq 1, 2, 3, ...; its backlog keeps the newest
 * events up to a byte cap (dropping the oldest), so "from_seq older than the
 * backlog" is a clear DATA_LOSS, never silently less. Loop thread only
 * (publishing uses the thread-safe nng_sendmsg).
 */
#ifndef SBX_EVENTS_H
#define SBX_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "sbx.pb-c.h"

struct publisher;
struct config;

/* One retained event; DATA is heap. */
struct bl_event {
	uint64_t seq;
	int64_t time_ms;
	Sbx__V1__Event__BodyCase kind;
	uint8_t *data;
	size_t len;
	int32_t exit_code;
	int32_t signal;
	char *status;
};

struct backlog {
	struct bl_event *ring;
	size_t cap;   /* slots */
	size_t head;  /* index of the oldest */
	size_t count;
	size_t bytes; /* payload bytes retained */
	size_t max_bytes;
	uint64_t next_seq; /* seq the next appended event must have */
	bool ended;        /* the final event was appended */
	/* Events after this seq are never dropped (a follower holds them;
	 * see StreamHold). UINT64_MAX: none are pinned. */
	uint64_t pinned_after;
};

/* Listen on URL (ipc://, tcp://, tls+tcp://). */
SBX_NODISCARD sbx_err publisher_open(struct publisher **out,
                                     const struct config *cfg, char *why,
                                     size_t whylen);
void publisher_close(struct publisher *p);

/* Keep the listeners accepting (see listen.h). Loop tick. */
void publisher_check_listeners(struct publisher *p, int64_t now_mono_ms);

/* Publish EV (sandbox_id and stream set). Drops silently for subscribers
 * that are slow: that is what the backlog is for. Counts drops in stats. */
void publisher_send(struct publisher *p, const Sbx__V1__Event *ev);

/* Messages published so far (for health and tests). */
uint64_t publisher_count(const struct publisher *p);

void backlog_init(struct backlog *b, size_t max_bytes);
void backlog_fini(struct backlog *b);

/*
 * Append EV if EV->seq == next_seq (returns true). Events with a smaller
 * seq are duplicates (a replay after a restart) and are ignored (false). A
 * larger seq means events were lost upstream: the backlog jumps forward and
 * the gap is reported by fetch as DATA_LOSS (returns true). An exit event
 * ends the stream.
 */
bool backlog_append(struct backlog *b, const Sbx__V1__Event *ev);

/* Drop the oldest events beyond max_bytes that are not pinned. */
void backlog_trim(struct backlog *b);

/* The seq of the oldest retained event (next_seq if empty). */
uint64_t backlog_first_seq(const struct backlog *b);

/*
 * Fill REPLY with events from FROM_SEQ on, up to MAX_BYTES of payload (at
 * least one event if any). REPLY's events point into the backlog (borrowed
 * until the backlog changes) and must be released with backlog_fetch_fini.
 * SBX_EDATALOSS (with WHY) if FROM_SEQ is older than the oldest retained.
 * SANDBOX and STREAM are copied by reference into each event.
 */
SBX_NODISCARD sbx_err backlog_fetch(const struct backlog *b,
                                    const char *sandbox, const char *stream,
                                    uint64_t from_seq, size_t max_bytes,
                                    Sbx__V1__EventsFetchReply *reply, char *why,
                                    size_t whylen);
void backlog_fetch_fini(Sbx__V1__EventsFetchReply *reply);

/* Point an Event at a retained event (borrowed strings and data). */
void backlog_event_view(const struct bl_event *e, const char *sandbox,
                        const char *stream, Sbx__V1__Event *ev,
                        Sbx__V1__ProcessExit *exit);

#endif
