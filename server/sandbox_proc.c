/*
 * The mirror of a jail's processes: one record per stream, with its event
 * backlog. Records come from process starts, from sbx-init's hello (after a
 * restart) and, lazily, from events of streams not yet known. Ended
 * processes stay a while so that late subscribers can still fetch their
 * output, then are collected.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "initconn.h"
#include "log.h"
#include "sandbox_int.h"
#include "server.h"
#include "util.h"

#define PROC_KEEP_ENDED_MS (5 * 60 * 1000)
#define PROC_KEEP_ENDED_MAX 256

static void proc_flow(struct sandbox *sb, struct proc *p);

struct proc *
sandbox_proc_find(struct sandbox *sb, const char *stream)
{
	return hmap_get(&sb->procs, stream);
}

struct proc *
sandbox_proc_by_pid(struct sandbox *sb, uint32_t pid)
{
	struct proc *found = NULL;

	/* The newest match wins: pids are reused after a process ends. */
	for (struct proc *p = sb->proc_head; p != NULL; p = p->next) {
		if (p->pid == pid) {
			found = p;
		}
	}
	return found;
}

struct proc *
sandbox_proc_by_tag(struct sandbox *sb, const char *tag)
{
	struct proc *found = NULL;

	for (struct proc *p = sb->proc_head; p != NULL; p = p->next) {
		if (p->tag != NULL && strcmp(p->tag, tag) == 0) {
			found = p;
		}
	}
	return found;
}

static void
proc_free(struct proc *p)
{
	if (p == NULL) {
		return;
	}
	free(p->stream);
	free(p->tag);
	if (p->argv != NULL) {
		for (char **a = p->argv; *a != NULL; a++) {
			free(*a);
		}
		free(p->argv);
	}
	free(p->command);
	free(p->cwd);
	free(p->user);
	free(p->exit_status);
	kvlist_fini(&p->env);
	backlog_fini(&p->bl);
	free(p);
}

static char *
dup_or_null(const char *s)
{
	return s != NULL && s[0] != '\0' ? strdup(s) : NULL;
}

static sbx_err
proc_fill(struct proc *p, const Sbx__V1__ProcessInfo *pi)
{
	p->pid = pi->pid;
	p->pty = pi->pty;
	/* An exit already seen in the events wins over a stale "running". */
	p->running = pi->running && p->exit_status == NULL;
	if ((p->argv = calloc(pi->n_argv + 1, sizeof(char *))) == NULL) {
		return SBX_ENOMEM;
	}
	for (size_t i = 0; i < pi->n_argv; i++) {
		if ((p->argv[i] = strdup(pi->argv[i])) == NULL) {
			return SBX_ENOMEM;
		}
	}
	p->tag = dup_or_null(pi->tag);
	p->command = dup_or_null(pi->command);
	p->cwd = dup_or_null(pi->cwd);
	p->user = dup_or_null(pi->user);
	for (size_t i = 0; i < pi->n_env; i++) {
		if (kvlist_set(&p->env, pi->env[i]->key, pi->env[i]->value) !=
		    SBX_OK) {
			return SBX_ENOMEM;
		}
	}
	if (pi->exit != NULL) {
		p->running = false;
		p->exit_code = pi->exit->exit_code;
		p->exit_signal = pi->exit->signal;
		p->exit_status = dup_or_null(pi->exit->status);
	}
	return SBX_OK;
}

static sbx_err
proc_insert(struct sandbox *sb, struct proc *p)
{
	if (hmap_put(&sb->procs, p->stream, p) != SBX_OK) {
		return SBX_ENOMEM;
	}
	if (sb->proc_tail != NULL) {
		sb->proc_tail->next = p;
	} else {
		sb->proc_head = p;
	}
	sb->proc_tail = p;
	sb->n_procs++;
	return SBX_OK;
}

static struct proc *
proc_new(struct sandbox *sb, const char *stream)
{
	struct proc *p = calloc(1, sizeof(*p));

	if (p == NULL || (p->stream = strdup(stream)) == NULL) {
		free(p);
		return NULL;
	}
	backlog_init(&p->bl, sb->srv->cfg->event_backlog_bytes);
	p->running = true;
	return p;
}

sbx_err
sandbox_proc_add(struct sandbox *sb, const Sbx__V1__ProcessInfo *pi,
                 struct proc **out)
{
	struct proc *p;

	if ((p = sandbox_proc_find(sb, pi->stream)) != NULL) {
		/* Events may have created it already; fill in the rest. */
		if (p->argv == NULL && proc_fill(p, pi) != SBX_OK) {
			return SBX_ENOMEM;
		}
		*out = p;
		return SBX_OK;
	}
	if ((p = proc_new(sb, pi->stream)) == NULL ||
	    proc_fill(p, pi) != SBX_OK || proc_insert(sb, p) != SBX_OK) {
		proc_free(p);
		return SBX_ENOMEM;
	}
	*out = p;
	return SBX_OK;
}

sbx_err
sandbox_proc_sync(struct sandbox *sb, const Sbx__Init__V1__HelloReply *h)
{
	for (size_t i = 0; i < h->n_processes; i++) {
		const Sbx__V1__ProcessInfo *pi = h->processes[i];
		struct proc *p;
		sbx_err rv;

		if (!sbx_wire_stream_valid(pi->stream)) {
			continue;
		}
		if ((rv = sandbox_proc_add(sb, pi, &p)) != SBX_OK) {
			return rv;
		}
	}
	return SBX_OK;
}

static void
proc_unlink(struct sandbox *sb, struct proc *victim)
{
	struct proc **pp, *prev = NULL;

	for (pp = &sb->proc_head; *pp != NULL; prev = *pp, pp = &(*pp)->next) {
		if (*pp == victim) {
			*pp = victim->next;
			if (sb->proc_tail == victim) {
				sb->proc_tail = prev;
			}
			break;
		}
	}
	hmap_del(&sb->procs, victim->stream);
	sb->n_procs--;
}

void
sandbox_proc_gc(struct sandbox *sb, int64_t now_mono_ms)
{
	struct proc *p, *next;
	uint32_t ended = 0;

	for (p = sb->proc_head; p != NULL; p = p->next) {
		ended += !p->running;
	}
	for (p = sb->proc_head; p != NULL; p = next) {
		next = p->next;
		if (p->n_holds > 0) {
			/* A lapsed hold frees the process's output. */
			proc_flow(sb, p);
		}
		if (p->running) {
			continue;
		}
		if (ended > PROC_KEEP_ENDED_MAX ||
		    p->ended_ms + PROC_KEEP_ENDED_MS <= now_mono_ms) {
			proc_unlink(sb, p);
			proc_free(p);
			ended--;
		}
	}
}

void
sandbox_proc_free_all(struct sandbox *sb)
{
	struct proc *p, *next;

	for (p = sb->proc_head; p != NULL; p = next) {
		next = p->next;
		hmap_del(&sb->procs, p->stream);
		proc_free(p);
	}
	sb->proc_head = sb->proc_tail = NULL;
	sb->n_procs = 0;
}

/* Store EV in P's backlog, publish it, and note an exit. */
static void
proc_event(struct sandbox *sb, struct proc *p, Sbx__V1__Event *ev)
{
	if (!backlog_append(&p->bl, ev)) {
		return;
	}
	char *given = ev->sandbox_id;

	/* Borrow the id for publishing; the unpacked message frees its own
	 * string later, so it must get it back. */
	ev->sandbox_id = sb->id;
	publisher_send(sb->srv->pub, ev);
	ev->sandbox_id = given;
	if (ev->body_case == SBX__V1__EVENT__BODY_EXIT && ev->exit != NULL) {
		p->running = false;
		p->exit_code = ev->exit->exit_code;
		p->exit_signal = ev->exit->signal;
		free(p->exit_status);
		p->exit_status = strdup(ev->exit->status);
		p->ended_ms = sbx_mono_ms();
	}
}

void
sandbox_proc_end_all(struct sandbox *sb)
{
	Sbx__V1__ProcessExit exit = SBX__V1__PROCESS_EXIT__INIT;
	Sbx__V1__Event ev = SBX__V1__EVENT__INIT;

	exit.exit_code = -1;
	exit.signal = 9;
	exit.status = "sandbox ended";
	ev.body_case = SBX__V1__EVENT__BODY_EXIT;
	ev.exit = &exit;
	for (struct proc *p = sb->proc_head; p != NULL; p = p->next) {
		if (!p->running) {
			continue;
		}
		ev.stream = p->stream;
		ev.seq = p->bl.next_seq;
		ev.time_ms = sbx_clock_ms();
		proc_event(sb, p, &ev);
	}
}

#define ACKS_PER_MSG 16

struct acks {
	Sbx__Init__V1__StreamSeq v[ACKS_PER_MSG];
	Sbx__Init__V1__StreamSeq *p[ACKS_PER_MSG];
	size_t n;
};

/* Tell sbx-init which events are stored, so it may drop them and read more
 * of the processes' output (its flow control waits for acks). */
static void
acks_flush(struct sandbox *sb, struct acks *a)
{
	Sbx__Init__V1__Ack ack = SBX__INIT__V1__ACK__INIT;
	Sbx__Init__V1__Down down = SBX__INIT__V1__DOWN__INIT;

	if (a->n == 0) {
		return;
	}
	ack.acks = a->p;
	ack.n_acks = a->n;
	down.body_case = SBX__INIT__V1__DOWN__BODY_ACK;
	down.ack = &ack;
	if (sb->conn != NULL && initconn_send(sb->conn, &down) != SBX_OK) {
		/* The next batch acks again; sbx-init holds the events. */
	}
	a->n = 0;
}

/*
 * How far sbx-init may drop P's events: all it sent, unless followers hold
 * the stream; then only what the slowest of them has read, so that sbx-init
 * stops reading the process once its window of unacked output is full.
 * Expired holds are dropped here, and the backlog's pin follows the holds.
 */
static uint64_t
proc_ack_target(struct proc *p, int64_t now)
{
	uint64_t target = p->bl.next_seq - 1, pin = UINT64_MAX;

	for (unsigned i = 0; i < p->n_holds;) {
		if (p->holds[i].until_ms <= now) {
			p->holds[i] = p->holds[--p->n_holds];
			continue;
		}
		if (p->holds[i].seq < pin) {
			pin = p->holds[i].seq;
		}
		i++;
	}
	if (pin != p->bl.pinned_after) {
		p->bl.pinned_after = pin;
		backlog_trim(&p->bl);
	}
	return target < pin ? target : pin;
}

static void
acks_note(struct sandbox *sb, struct acks *a, struct proc *p)
{
	uint64_t target = proc_ack_target(p, sbx_mono_ms());
	size_t k;

	for (k = 0; k < a->n && strcmp(a->v[k].stream, p->stream) != 0; k++) {
	}
	if (k == a->n) {
		if (a->n == ACKS_PER_MSG) {
			acks_flush(sb, a);
			k = 0;
		}
		sbx__init__v1__stream_seq__init(&a->v[k]);
		a->v[k].stream = p->stream;
		a->p[k] = &a->v[k];
		a->n++;
	}
	a->v[k].seq = target;
	p->acked = target;
}

/* Send sbx-init what P's holds allow now, if more than before. */
static void
proc_flow(struct sandbox *sb, struct proc *p)
{
	struct acks acks;

	acks.n = 0;
	if (proc_ack_target(p, sbx_mono_ms()) > p->acked) {
		acks_note(sb, &acks, p);
		acks_flush(sb, &acks);
	}
}

sbx_err
sandbox_proc_hold(struct sandbox *sb, struct proc *p, const char *holder,
                  uint64_t seq, uint32_t ttl_ms)
{
	struct hold *h = NULL;

	for (unsigned i = 0; i < p->n_holds; i++) {
		if (strcmp(p->holds[i].holder, holder) == 0) {
			h = &p->holds[i];
		}
	}
	if (ttl_ms == 0) {
		if (h != NULL) {
			*h = p->holds[--p->n_holds];
		}
	} else {
		if (h == NULL) {
			if (p->n_holds == PROC_HOLDS) {
				return SBX_ELIMIT;
			}
			h = &p->holds[p->n_holds++];
			snprintf(h->holder, sizeof(h->holder), "%s", holder);
			h->seq = seq;
		}
		/* A hold only moves forward: a late, stale refresh must not
		 * pull back what the follower already read. */
		if (seq > h->seq) {
			h->seq = seq;
		}
		h->until_ms = sbx_mono_ms() + ttl_ms;
	}
	proc_flow(sb, p);
	return SBX_OK;
}

void
sandbox_proc_on_up(struct sandbox *sb, const Sbx__Init__V1__Up *up)
{
	struct acks acks;

	acks.n = 0;
	for (size_t i = 0; i < up->n_events; i++) {
		Sbx__V1__Event *ev = up->events[i];
		struct proc *p;

		if (!sbx_wire_stream_valid(ev->stream)) {
			log_warn("SBX-INIT-BAD-EVENT", "sbx=%s", sb->id);
			continue;
		}
		if ((p = sandbox_proc_find(sb, ev->stream)) == NULL &&
		    ((p = proc_new(sb, ev->stream)) == NULL ||
		     proc_insert(sb, p) != SBX_OK)) {
			/* Out of memory: not acked, so sbx-init keeps it. */
			proc_free(p);
			continue;
		}
		proc_event(sb, p, ev);
		acks_note(sb, &acks, p);
	}
	acks_flush(sb, &acks);
}

sbx_err
sandbox_proc_info(const struct proc *p, Sbx__V1__ProcessInfo *pi,
                  struct proc_store *st)
{
	size_t n = p->env.n, argc = 0;

	memset(st, 0, sizeof(*st));
	sbx__v1__process_info__init(pi);
	if (n > 0) {
		st->env = calloc(n, sizeof(*st->env));
		st->envp = calloc(n, sizeof(*st->envp));
		if (st->env == NULL || st->envp == NULL) {
			sandbox_proc_info_fini(st);
			return SBX_ENOMEM;
		}
	}
	for (size_t i = 0; i < n; i++) {
		sbx__v1__process_info__env_entry__init(&st->env[i]);
		st->env[i].key = p->env.v[i].key;
		st->env[i].value = p->env.v[i].value;
		st->envp[i] = &st->env[i];
	}
	if (p->argv != NULL) {
		while (p->argv[argc] != NULL) {
			argc++;
		}
	}
	pi->stream = p->stream;
	pi->pid = p->pid;
	pi->tag = p->tag != NULL ? p->tag : "";
	pi->argv = p->argv;
	pi->n_argv = argc;
	pi->command = p->command != NULL ? p->command : "";
	pi->cwd = p->cwd != NULL ? p->cwd : "";
	pi->user = p->user != NULL ? p->user : "";
	pi->running = p->running;
	pi->pty = p->pty;
	pi->env = st->envp;
	pi->n_env = n;
	if (!p->running) {
		sbx__v1__process_exit__init(&st->exit);
		st->exit.exit_code = p->exit_code;
		st->exit.signal = p->exit_signal;
		st->exit.status = p->exit_status != NULL ? p->exit_status : "";
		pi->exit = &st->exit;
	}
	return SBX_OK;
}

void
sandbox_proc_info_fini(struct proc_store *st)
{
	free(st->env);
	free(st->envp);
	memset(st, 0, sizeof(*st));
}
