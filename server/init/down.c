/*
 * sbxd's requests. Each handler returns a status and, on error, leaves a
 * sentence in c->why; the dispatcher answers unless the handler already
 * did (a reply whose body lives on the handler's stack). Replies are built
 * around borrowed strings and never freed as protobuf messages.
 * Loop thread only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "down.h"
#include "events.h"
#include "link.h"
#include "log.h"
#include "proc.h"

#define DOWN_WHY_MAX 512

struct down_ctx {
	struct init *in;
	Sbx__Init__V1__Down *d;
	uint32_t pipe;
	Sbx__Init__V1__Up up;
	char why[DOWN_WHY_MAX];
	bool replied;
};

typedef sbx_err (*down_fn)(struct down_ctx *c);

static void
down_reply(struct down_ctx *c, sbx_err rv)
{
	c->replied = true;
	c->up.id = c->d->id;
	c->up.status = (Sbx__V1__Status) rv;
	if (rv != SBX_OK) {
		c->up.body_case = SBX__INIT__V1__UP__BODY__NOT_SET;
		c->up.message =
			c->why[0] != '\0' ? c->why : (char *) sbx_strerror(rv);
	}
	if (link_send(c->in->link, &c->up, false) != SBX_OK) {
		log_error("SBX-INIT-NOMEM", "what=reply id=%llu",
			  (unsigned long long) c->d->id);
	}
}

static void
down_why(struct down_ctx *c, const char *why)
{
	snprintf(c->why, sizeof(c->why), "%s", why);
}

/* The process of STREAM, or SBX_ENOTFOUND. */
static sbx_err
down_find(struct down_ctx *c, const char *stream, struct proc **out)
{
	if ((*out = procs_find(c->in->procs, stream)) == NULL) {
		snprintf(c->why, sizeof(c->why), "no process with stream %.64s",
			 stream);
		return SBX_ENOTFOUND;
	}
	return SBX_OK;
}

/* ---- hello ---- */

/* The arrays of one HelloReply: infos, and env entries of all of them. */
struct hello_bufs {
	Sbx__V1__ProcessInfo *infos;
	Sbx__V1__ProcessInfo **infop;
	Sbx__V1__ProcessExit *exits;
	Sbx__V1__ProcessInfo__EnvEntry *env;
	Sbx__V1__ProcessInfo__EnvEntry **envp;
};

static void
hello_bufs_free(struct hello_bufs *b)
{
	free(b->infos);
	free(b->infop);
	free(b->exits);
	free(b->env);
	free(b->envp);
}

static sbx_err
hello_bufs_alloc(struct hello_bufs *b, struct procs *t)
{
	size_t n = procs_count(t), n_env = 0;
	struct proc_view v;

	for (size_t i = 0; i < n; i++) {
		proc_view(procs_at(t, i), &v);
		n_env += v.spec->n_env_given;
	}
	/* +1: calloc(0) may return NULL. */
	b->infos = calloc(n + 1, sizeof(*b->infos));
	b->infop = calloc(n + 1, sizeof(*b->infop));
	b->exits = calloc(n + 1, sizeof(*b->exits));
	b->env = calloc(n_env + 1, sizeof(*b->env));
	b->envp = calloc(n_env + 1, sizeof(*b->envp));
	if (b->infos == NULL || b->infop == NULL || b->exits == NULL ||
	    b->env == NULL || b->envp == NULL) {
		return SBX_ENOMEM;
	}
	return SBX_OK;
}

/* Fill INFO from V, with env entries from *NEXT on. */
static void
hello_info(struct hello_bufs *b, size_t i, const struct proc_view *v,
	   size_t *next)
{
	const Sbx__Init__V1__Spawn *s = v->spec;
	Sbx__V1__ProcessInfo *info = &b->infos[i];

	sbx__v1__process_info__init(info);
	info->stream = s->stream;
	info->pid = (uint32_t) v->pid;
	info->tag = s->tag;
	info->n_argv = s->n_argv;
	info->argv = s->argv;
	info->command = s->command;
	info->cwd = s->cwd;
	info->user = s->user;
	info->running = v->running;
	info->pty = s->pty != NULL;
	if (!v->running) {
		sbx__v1__process_exit__init(&b->exits[i]);
		b->exits[i].exit_code = v->exit_code;
		b->exits[i].signal = v->exit_signal;
		b->exits[i].status =
			(char *) (v->exit_signal != 0 ? "signaled" : "exited");
		info->exit = &b->exits[i];
	}
	info->n_env = s->n_env_given;
	info->env = &b->envp[*next];
	for (size_t k = 0; k < s->n_env_given; k++, (*next)++) {
		sbx__v1__process_info__env_entry__init(&b->env[*next]);
		b->env[*next].key = s->env_given[k]->key;
		b->env[*next].value = s->env_given[k]->value;
		b->envp[*next] = &b->env[*next];
	}
	b->infop[i] = info;
}

/*
 * List every process, then replay every kept event: sbxd may have
 * restarted and lost everything. The reply goes out before the replay
 * because the link sends in order.
 */
static sbx_err
down_hello(struct down_ctx *c)
{
	Sbx__Init__V1__HelloReply hr = SBX__INIT__V1__HELLO_REPLY__INIT;
	struct procs *t = c->in->procs;
	struct hello_bufs b = {0};
	struct proc_view v;
	size_t next = 0;
	sbx_err rv;

	if ((rv = hello_bufs_alloc(&b, t)) != SBX_OK) {
		down_why(c, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < procs_count(t); i++) {
		proc_view(procs_at(t, i), &v);
		hello_info(&b, i, &v, &next);
	}
	hr.version = INIT_PROTO_VERSION;
	hr.n_processes = procs_count(t);
	hr.processes = b.infop;
	c->up.body_case = SBX__INIT__V1__UP__BODY_HELLO;
	c->up.hello = &hr;
	link_hello(c->in->link, c->pipe);
	down_reply(c, SBX_OK);
	events_replay(t);
	log_notice("SBX-INIT-HELLO", "version=%u processes=%zu",
		   (unsigned) c->d->hello->version, procs_count(t));
out:
	hello_bufs_free(&b);
	return rv;
}

/* ---- processes ---- */

static sbx_err
down_spawn(struct down_ctx *c)
{
	Sbx__Init__V1__SpawnReply sr = SBX__INIT__V1__SPAWN_REPLY__INIT;
	pid_t pid;
	sbx_err rv;

	rv = procs_spawn(c->in->procs, c->d->spawn, &pid, c->why,
			 sizeof(c->why));
	if (rv != SBX_OK) {
		return rv;
	}
	/* The process owns the request now (for listings); detach it so
	 * that freeing the Down leaves it alone. */
	c->d->spawn = NULL;
	c->d->body_case = SBX__INIT__V1__DOWN__BODY__NOT_SET;
	sr.pid = (uint32_t) pid;
	c->up.body_case = SBX__INIT__V1__UP__BODY_SPAWN;
	c->up.spawn = &sr;
	down_reply(c, SBX_OK);
	return SBX_OK;
}

static sbx_err
down_input(struct down_ctx *c)
{
	const Sbx__Init__V1__Input *m = c->d->input;
	const char *why = "";
	struct proc *p;
	sbx_err rv;

	if ((rv = down_find(c, m->stream, &p)) == SBX_OK &&
	    (rv = proc_input(p, m->data.data, m->data.len, &why)) != SBX_OK) {
		down_why(c, why);
	}
	return rv;
}

static sbx_err
down_close_stdin(struct down_ctx *c)
{
	const char *why = "";
	struct proc *p;
	sbx_err rv;

	if ((rv = down_find(c, c->d->close_stdin->stream, &p)) == SBX_OK &&
	    (rv = proc_close_stdin(p, &why)) != SBX_OK) {
		down_why(c, why);
	}
	return rv;
}

static sbx_err
down_signal(struct down_ctx *c)
{
	const Sbx__Init__V1__Signal *m = c->d->signal;
	const char *why = "";
	struct proc *p;
	sbx_err rv;

	if ((rv = down_find(c, m->stream, &p)) == SBX_OK &&
	    (rv = proc_signal(p, m->signal, &why)) != SBX_OK) {
		down_why(c, why);
	}
	return rv;
}

static sbx_err
down_resize(struct down_ctx *c)
{
	const Sbx__Init__V1__Resize *m = c->d->resize;
	const char *why = "";
	struct proc *p;
	sbx_err rv;

	if ((rv = down_find(c, m->stream, &p)) == SBX_OK &&
	    (rv = proc_resize(p, m->size, &why)) != SBX_OK) {
		down_why(c, why);
	}
	return rv;
}

/* sbxd stored these events. A process whose exit it stored is done. */
static sbx_err
down_ack(struct down_ctx *c)
{
	const Sbx__Init__V1__Ack *m = c->d->ack;
	struct proc *p;

	for (size_t i = 0; i < m->n_acks; i++) {
		if ((p = procs_find(c->in->procs, m->acks[i]->stream)) ==
		    NULL) {
			continue; /* already forgotten: a repeated ack */
		}
		evlog_ack(proc_log(p), m->acks[i]->seq);
		if (evlog_done(proc_log(p))) {
			procs_forget(c->in->procs, p);
		}
	}
	/* Acks are fire-and-forget unless sbxd asked with an id. */
	c->replied = c->d->id == 0;
	return SBX_OK;
}

static const struct down_handler {
	Sbx__Init__V1__Down__BodyCase body;
	const char *name;
	down_fn fn;
} down_handlers[] = {
	{SBX__INIT__V1__DOWN__BODY_HELLO, "hello", down_hello},
	{SBX__INIT__V1__DOWN__BODY_SPAWN, "spawn", down_spawn},
	{SBX__INIT__V1__DOWN__BODY_INPUT, "input", down_input},
	{SBX__INIT__V1__DOWN__BODY_CLOSE_STDIN, "close_stdin",
	 down_close_stdin},
	{SBX__INIT__V1__DOWN__BODY_SIGNAL, "signal", down_signal},
	{SBX__INIT__V1__DOWN__BODY_RESIZE, "resize", down_resize},
	{SBX__INIT__V1__DOWN__BODY_ACK, "ack", down_ack},
};

void
down_dispatch(struct init *in, Sbx__Init__V1__Down *d, uint32_t pipe)
{
	struct down_ctx c = {.in = in, .d = d, .pipe = pipe};
	const struct down_handler *h = NULL;
	sbx_err rv;

	sbx__init__v1__up__init(&c.up);
	for (size_t i = 0; i < sizeof(down_handlers) / sizeof(*h); i++) {
		if (down_handlers[i].body == d->body_case) {
			h = &down_handlers[i];
		}
	}
	if (h == NULL) {
		down_why(&c, "unknown or empty request");
		rv = SBX_EINVAL;
	} else {
		rv = h->fn(&c);
		log_debug("SBX-INIT-REQUEST", "op=%s id=%llu status=%s",
			  h->name, (unsigned long long) d->id,
			  sbx_strerror(rv));
	}
	if (!c.replied) {
		down_reply(&c, rv);
	}
	sbx__init__v1__down__free_unpacked(d, NULL);
}
