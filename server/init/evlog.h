/*
 * The event log of one process: every event sbx-init produced for it, from
 * the oldest one sbxd may still need to the newest, with three cursors:
 *
 *   retained (acked, kept for a restarted sbxd) | unacked | ... | unsent
 *   ^oldest                 ^acked                    ^send cursor
 *
 * Events are numbered 1, 2, 3, ... in one sequence across stdout, stderr,
 * pty output and the exit event, which is always the last. Pure: no I/O,
 * no clocks (callers pass the time). Loop thread only.
 */
#ifndef SBX_INIT_EVLOG_H
#define SBX_INIT_EVLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* What an event carries; the values are private to sbx-init. */
enum evlog_kind {
	EVLOG_STDOUT,
	EVLOG_STDERR,
	EVLOG_PTY,
	EVLOG_EXIT,
};

/*
 * What one event costs against the window and the retention budget on top
 * of its data: the bookkeeping, so that a process writing one byte at a
 * time cannot pin unbounded memory while sbxd is away.
 */
#define EVLOG_EVENT_COST 64

struct evlog_event {
	uint64_t seq;
	int64_t time_ms;
	enum evlog_kind kind;
	int32_t exit_code; /* EVLOG_EXIT: -1 when signaled */
	int32_t signal;    /* EVLOG_EXIT: the terminating signal, or 0 */
	size_t len;        /* bytes of output in data */
	uint8_t data[];
};

struct evlog;

/*
 * A new, empty log. WINDOW_BYTES bounds unacked events (see
 * evlog_window_open), RETAIN_BYTES the acked events kept for replay. The
 * exit event is allocated now, so appending it later cannot fail.
 * Returns NULL when out of memory. Free with evlog_free.
 */
struct evlog *evlog_new(size_t window_bytes, size_t retain_bytes);

void evlog_free(struct evlog *log);

/*
 * Reserve an output event of up to CAP bytes of KIND (not EVLOG_EXIT). The
 * caller reads into (*OUT)->data and then calls evlog_output_commit. Room
 * is made before the read so that no output is ever read and then lost to
 * an allocation failure. SBX_ENOMEM, or SBX_ESTATE after the exit event.
 */
SBX_NODISCARD sbx_err evlog_output_begin(struct evlog *log,
					 enum evlog_kind kind, size_t cap,
					 struct evlog_event **out);

/*
 * Append EV (from evlog_output_begin) with its first LEN bytes, stamped
 * NOW_MS. Takes ownership of EV; LEN 0 frees it and appends nothing.
 */
void evlog_output_commit(struct evlog *log, struct evlog_event *ev, size_t len,
			 int64_t now_ms);

/* Append the exit event; nothing can follow it. Idempotent. */
void evlog_append_exit(struct evlog *log, int32_t exit_code, int32_t signal,
		       int64_t now_ms);

/* True while the unacked events cost less than the window. */
bool evlog_window_open(const struct evlog *log);

/* The K-th event not yet handed to sbxd, or NULL; borrowed until the next
 * call that changes the log. */
const struct evlog_event *evlog_unsent(const struct evlog *log, size_t k);

/* Move the send cursor past N events returned by evlog_unsent. */
void evlog_mark_sent(struct evlog *log, size_t n);

/* Move the send cursor back to the oldest event kept (replay to a new sbxd). */
void evlog_rewind(struct evlog *log);

/*
 * sbxd stored every event up to SEQ: they stop counting against the
 * window, and the oldest acked ones beyond the retention budget are freed.
 * SEQ beyond the last event is clamped; an older SEQ changes nothing.
 */
void evlog_ack(struct evlog *log, uint64_t seq);

/* True once the exit event is acked: the process can be forgotten. */
bool evlog_done(const struct evlog *log);

/* The seq of the newest event, 0 if none. */
uint64_t evlog_last_seq(const struct evlog *log);

/* The cost of the events not yet acked (for logs and tests). */
size_t evlog_unacked_bytes(const struct evlog *log);

#endif
