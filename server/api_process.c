/*
 * Handlers: process start, input, close-stdin, signal, resize, list, and
 * events fetch. Process calls go to the jail's sbx-init and complete when it
 * answers; list and fetch are served from sbxd's mirror.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "config.h"
#include "fsops.h"
#include "initconn.h"
#include "rpc.h"
#include "sandbox.h"
#include "server.h"

#define INIT_CALL_TIMEOUT_MS 10000
#define ARGV_MAX 4096
#define ARGS_BYTES_MAX (1u << 20)
#define TAG_MAX 128
#define ENV_MAX 256
/* A start with a follower holds its output this long before the follower's
 * first refresh (libsbx refreshes every few seconds). */
#define HOLD_START_TTL_MS 10000
#define HOLD_TTL_MAX_MS 60000

/* A process call waiting for sbx-init. */
struct pcall {
	struct server *srv;
	char id[SBX_WIRE_ID_MAX + 1];
	void *call;
	void (*done)(const ProtobufCMessage *, void *);
	const Sbx__V1__ProcessStartRequest *start; /* borrowed from the call */
	Sbx__V1__ProcessInfo info;                 /* for start */
	char **argv;
	char *stream;
	char *cwd;
};

static void
pcall_free(struct pcall *pc)
{
	if (pc->argv != NULL) {
		for (char **a = pc->argv; *a != NULL; a++) {
			free(*a);
		}
		free(pc->argv);
	}
	free(pc->stream);
	free(pc->cwd);
	free(pc);
}

static struct pcall *
pcall_new(struct server *srv, const char *id, void *call,
          void (*done)(const ProtobufCMessage *, void *))
{
	struct pcall *pc = calloc(1, sizeof(*pc));

	if (pc == NULL) {
		rpc_fail(call, SBX_ENOMEM, "out of memory");
		return NULL;
	}
	pc->srv = srv;
	snprintf(pc->id, sizeof(pc->id), "%s", id);
	pc->call = call;
	pc->done = done;
	return pc;
}

static struct sandbox *
running(struct server *srv, const char *id, void *call)
{
	struct sandbox *sb;
	char why[256];
	sbx_err rv;

	if ((rv = sandbox_lookup_running(srv, id, &sb, why, sizeof(why))) !=
	    SBX_OK) {
		rpc_fail(call, rv, "%s", why);
		return NULL;
	}
	if (!initconn_is_up(sb->conn)) {
		rpc_fail(call, SBX_EUNAVAIL, "sandbox %s agent is reconnecting",
		         id);
		return NULL;
	}
	return sb;
}

/* The process REF names. */
static struct proc *
proc_ref(struct sandbox *sb, const Sbx__V1__ProcessRef *ref, void *call)
{
	struct proc *p = NULL;

	if (ref == NULL) {
		rpc_fail(call, SBX_EINVAL, "process is required");
		return NULL;
	}
	switch (ref->ref_case) {
	case SBX__V1__PROCESS_REF__REF_STREAM:
		p = sandbox_proc_find(sb, ref->stream);
		break;
	case SBX__V1__PROCESS_REF__REF_PID:
		p = sandbox_proc_by_pid(sb, ref->pid);
		break;
	case SBX__V1__PROCESS_REF__REF_TAG:
		p = sandbox_proc_by_tag(sb, ref->tag);
		break;
	case SBX__V1__PROCESS_REF__REF__NOT_SET:
	case _SBX__V1__PROCESS_REF__REF__CASE_IS_INT_SIZE:
		rpc_fail(call, SBX_EINVAL, "process is required");
		return NULL;
	}
	if (p == NULL) {
		rpc_fail(call, SBX_ENOTFOUND, "no such process in sandbox %s",
		         sb->id);
	}
	return p;
}

static void
on_started(void *arg, sbx_err st, const char *message,
           const Sbx__Init__V1__Up *up)
{
	struct pcall *pc = arg;
	struct sandbox *sb = sandbox_find(pc->srv, pc->id);
	struct proc_store store;
	Sbx__V1__ProcessInfo pi;
	struct proc *p;

	if (st == SBX_OK && (up->body_case != SBX__INIT__V1__UP__BODY_SPAWN ||
	                     sb == NULL)) {
		st = SBX_EUNAVAIL;
		message = "sandbox agent answered oddly";
	}
	if (st != SBX_OK) {
		rpc_fail(pc->call, st, "%s", message != NULL && message[0] != '\0'
		                                     ? message
		                                     : sbx_strerror(st));
		goto out;
	}
	pc->info.pid = up->spawn->pid;
	pc->info.running = true;
	/* The spawn reply comes before any event of the process, so the
	 * hold is in place before there is anything to drop. */
	if (sandbox_proc_add(sb, &pc->info, &p) != SBX_OK ||
	    (pc->start->hold[0] != '\0' &&
	     sandbox_proc_hold(sb, p, pc->start->hold, 0,
	                       HOLD_START_TTL_MS) != SBX_OK) ||
	    sandbox_proc_info(p, &pi, &store) != SBX_OK) {
		rpc_fail(pc->call, SBX_ENOMEM, "out of memory");
		goto out;
	}
	pc->done(&pi.base, pc->call);
	sandbox_proc_info_fini(&store);
out:
	pcall_free(pc);
}

/* Check ARGV/COMMAND of REQ and build the argv sbx-init runs. */
static sbx_err
start_argv(const Sbx__V1__ProcessStartRequest *req, struct pcall *pc,
           char *why, size_t whylen)
{
	bool has_cmd = req->command[0] != '\0';
	size_t bytes = strlen(req->command);
	size_t n = has_cmd ? 4 : req->n_argv;

	if (has_cmd == (req->n_argv > 0)) {
		snprintf(why, whylen, "give either argv or command");
		return SBX_EINVAL;
	}
	if (req->n_argv > ARGV_MAX) {
		snprintf(why, whylen, "at most %d arguments", ARGV_MAX);
		return SBX_EINVAL;
	}
	for (size_t i = 0; i < req->n_argv; i++) {
		bytes += strlen(req->argv[i]) + 1;
	}
	if (bytes > ARGS_BYTES_MAX) {
		snprintf(why, whylen, "arguments exceed %u bytes",
		         ARGS_BYTES_MAX);
		return SBX_ELIMIT;
	}
	if (!has_cmd && req->argv[0][0] == '\0') {
		snprintf(why, whylen, "argv[0] is empty");
		return SBX_EINVAL;
	}
	if ((pc->argv = calloc(n + 1, sizeof(char *))) == NULL) {
		return SBX_ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		/* A command runs in a login shell, as E2B runs it. */
		const char *a = has_cmd ? (const char *[]){"/bin/bash", "-l",
		                                           "-c",
		                                           req->command}[i]
		                        : req->argv[i];

		if ((pc->argv[i] = strdup(a)) == NULL) {
			return SBX_ENOMEM;
		}
	}
	return SBX_OK;
}

/* Build "K=V" for the process: base, then the sandbox's, then REQ's. */
static sbx_err
start_env(struct sandbox *sb, const Sbx__V1__ProcessStartRequest *req,
          bool root, struct kvlist *env, char *why, size_t whylen)
{
	const char *home = root ? "/root" : "/home/user";
	sbx_err rv = SBX_OK;

	if (req->n_env > ENV_MAX) {
		snprintf(why, whylen, "at most %d env entries", ENV_MAX);
		return SBX_EINVAL;
	}
	if ((rv = kvlist_set(env, "PATH",
	                     "/usr/local/sbin:/usr/local/bin:/usr/sbin:"
	                     "/usr/bin:/sbin:/bin")) != SBX_OK ||
	    (rv = kvlist_set(env, "HOME", home)) != SBX_OK ||
	    (rv = kvlist_set(env, "USER", root ? "root" : "user")) != SBX_OK ||
	    (rv = kvlist_set(env, "LOGNAME", root ? "root" : "user")) !=
	            SBX_OK ||
	    (rv = kvlist_set(env, "SHELL", "/bin/bash")) != SBX_OK ||
	    (rv = kvlist_set(env, "LANG", "C.UTF-8")) != SBX_OK ||
	    (rv = kvlist_set(env, "E2B_SANDBOX", "true")) != SBX_OK ||
	    (rv = kvlist_set(env, "SBX_SANDBOX_ID", sb->id)) != SBX_OK) {
		return rv;
	}
	if (req->pty != NULL &&
	    (rv = kvlist_set(env, "TERM", "xterm-256color")) != SBX_OK) {
		return rv;
	}
	for (size_t i = 0; i < sb->env.n && rv == SBX_OK; i++) {
		rv = kvlist_set(env, sb->env.v[i].key, sb->env.v[i].value);
	}
	for (size_t i = 0; i < req->n_env && rv == SBX_OK; i++) {
		const char *k = req->env[i]->key;

		if (k[0] == '\0' || strchr(k, '=') != NULL) {
			snprintf(why, whylen, "bad env name '%.64s'", k);
			return SBX_EINVAL;
		}
		rv = kvlist_set(env, k, req->env[i]->value);
	}
	return rv;
}

static sbx_err
start_stream(struct sandbox *sb, const Sbx__V1__ProcessStartRequest *req,
             struct pcall *pc, char *why, size_t whylen)
{
	char gen[32];

	if (req->stream[0] != '\0') {
		if (!sbx_wire_stream_valid(req->stream)) {
			snprintf(why, whylen, "bad stream id");
			return SBX_EINVAL;
		}
		if (sandbox_proc_find(sb, req->stream) != NULL) {
			snprintf(why, whylen, "stream %s exists", req->stream);
			return SBX_EEXIST;
		}
		pc->stream = strdup(req->stream);
	} else {
		do {
			snprintf(gen, sizeof(gen), "p%llu",
			         (unsigned long long) ++sb->stream_counter);
		} while (sandbox_proc_find(sb, gen) != NULL);
		pc->stream = strdup(gen);
	}
	return pc->stream != NULL ? SBX_OK : SBX_ENOMEM;
}

static sbx_err
start_check(struct sandbox *sb, const Sbx__V1__ProcessStartRequest *req,
            struct pcall *pc, bool *root, char *why, size_t whylen)
{
	sbx_err rv;

	if (req->user[0] == '\0' || strcmp(req->user, "user") == 0) {
		*root = false;
	} else if (strcmp(req->user, "root") == 0) {
		*root = true;
	} else {
		snprintf(why, whylen, "unknown user '%.32s' (user or root)",
		         req->user);
		return SBX_EINVAL;
	}
	if (strlen(req->tag) > TAG_MAX) {
		snprintf(why, whylen, "tag longer than %d", TAG_MAX);
		return SBX_EINVAL;
	}
	if (req->hold[0] != '\0' && !sbx_wire_stream_valid(req->hold)) {
		snprintf(why, whylen, "bad hold id");
		return SBX_EINVAL;
	}
	if (req->pty != NULL &&
	    (req->pty->cols == 0 || req->pty->rows == 0 ||
	     req->pty->cols > 1000 || req->pty->rows > 1000)) {
		snprintf(why, whylen, "pty size must be 1..1000");
		return SBX_EINVAL;
	}
	if ((rv = start_argv(req, pc, why, whylen)) != SBX_OK ||
	    (rv = start_stream(sb, req, pc, why, whylen)) != SBX_OK) {
		return rv;
	}
	return fsops_abspath(*root ? "/root" : "/home/user", req->cwd,
	                     &pc->cwd, why, whylen);
}

void
api_process_start(Sbx__V1__Sandboxes_Service *svc,
                  const Sbx__V1__ProcessStartRequest *req,
                  Sbx__V1__ProcessInfo_Closure done, void *call)
{
	struct server *srv = server_of(svc);
	Sbx__Init__V1__Down down = SBX__INIT__V1__DOWN__INIT;
	Sbx__Init__V1__Spawn sp = SBX__INIT__V1__SPAWN__INIT;
	struct kvlist env = {0};
	char **envv = NULL, why[256];
	struct sandbox *sb;
	struct pcall *pc;
	sbx_err rv;
	bool root = false;

	if ((sb = running(srv, req->sandbox_id, call)) == NULL ||
	    (pc = pcall_new(srv, sb->id, call,
	                    (void (*)(const ProtobufCMessage *, void *)) done)) ==
	            NULL) {
		return;
	}
	if ((rv = start_check(sb, req, pc, &root, why, sizeof(why))) !=
	            SBX_OK ||
	    (rv = start_env(sb, req, root, &env, why, sizeof(why))) != SBX_OK) {
		goto fail;
	}
	if ((envv = calloc(env.n + 1, sizeof(char *))) == NULL) {
		rv = SBX_ENOMEM;
		snprintf(why, sizeof(why), "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < env.n; i++) {
		if (asprintf(&envv[i], "%s=%s", env.v[i].key,
		             env.v[i].value) < 0) {
			envv[i] = NULL;
			rv = SBX_ENOMEM;
			snprintf(why, sizeof(why), "out of memory");
			goto fail;
		}
	}
	sp.stream = pc->stream;
	sp.argv = pc->argv;
	for (sp.n_argv = 0; pc->argv[sp.n_argv] != NULL; sp.n_argv++) {
	}
	sp.env = envv;
	sp.n_env = env.n;
	sp.cwd = pc->cwd;
	sp.uid = sp.gid = root ? 0 : 1000;
	sp.stdin = req->stdin;
	sp.pty = req->pty;
	sp.tag = req->tag;
	sp.command = req->command;
	sp.user = root ? "root" : "user";
	sp.env_given = (Sbx__Init__V1__Spawn__EnvGivenEntry **) req->env;
	sp.n_env_given = req->n_env;
	down.body_case = SBX__INIT__V1__DOWN__BODY_SPAWN;
	down.spawn = &sp;
	/* What the reply will describe; strings borrow from PC and REQ. */
	sbx__v1__process_info__init(&pc->info);
	pc->start = req;
	pc->info.stream = pc->stream;
	pc->info.tag = req->tag;
	pc->info.argv = pc->argv;
	pc->info.n_argv = sp.n_argv;
	pc->info.command = req->command;
	pc->info.cwd = pc->cwd;
	pc->info.user = sp.user;
	pc->info.pty = req->pty != NULL;
	pc->info.env = (Sbx__V1__ProcessInfo__EnvEntry **) req->env;
	pc->info.n_env = req->n_env;
	rv = initconn_call(sb->conn, &down, INIT_CALL_TIMEOUT_MS, on_started,
	                   pc);
	if (rv != SBX_OK) {
		snprintf(why, sizeof(why), "sandbox agent unavailable");
		goto fail;
	}
	pc = NULL;
	goto out;
fail:
	rpc_fail(call, rv, "%s", why);
out:
	if (envv != NULL) {
		for (size_t i = 0; i < env.n; i++) {
			free(envv[i]);
		}
		free(envv);
	}
	kvlist_fini(&env);
	if (pc != NULL) {
		pcall_free(pc);
	}
}

static void
on_empty_reply(void *arg, sbx_err st, const char *message,
               const Sbx__Init__V1__Up *up)
{
	struct pcall *pc = arg;
	Sbx__V1__Empty empty = SBX__V1__EMPTY__INIT;

	(void) up;
	if (st != SBX_OK) {
		rpc_fail(pc->call, st, "%s", message != NULL && message[0] != '\0'
		                                     ? message
		                                     : sbx_strerror(st));
	} else {
		pc->done(&empty.base, pc->call);
	}
	pcall_free(pc);
}

/* Send DOWN about the process REF names and answer with Empty. */
static void
process_simple(struct server *srv, const char *sandbox_id,
               const Sbx__V1__ProcessRef *ref, Sbx__Init__V1__Down *down,
               const char **stream_field, Sbx__V1__Empty_Closure done,
               void *call)
{
	struct sandbox *sb;
	struct proc *p;
	struct pcall *pc;

	if ((sb = running(srv, sandbox_id, call)) == NULL ||
	    (p = proc_ref(sb, ref, call)) == NULL) {
		return;
	}
	if (!p->running) {
		rpc_fail(call, SBX_ESTATE, "process %s has ended", p->stream);
		return;
	}
	if ((pc = pcall_new(srv, sb->id, call,
	                    (void (*)(const ProtobufCMessage *, void *)) done)) ==
	    NULL) {
		return;
	}
	*stream_field = p->stream;
	if (initconn_call(sb->conn, down, INIT_CALL_TIMEOUT_MS, on_empty_reply,
	                  pc) != SBX_OK) {
		rpc_fail(call, SBX_EUNAVAIL, "sandbox agent unavailable");
		pcall_free(pc);
	}
}

void
api_process_input(Sbx__V1__Sandboxes_Service *svc,
                  const Sbx__V1__ProcessInputRequest *req,
                  Sbx__V1__Empty_Closure done, void *call)
{
	struct server *srv = server_of(svc);
	Sbx__Init__V1__Down down = SBX__INIT__V1__DOWN__INIT;
	Sbx__Init__V1__Input in = SBX__INIT__V1__INPUT__INIT;

	if (req->data.len > srv->cfg->file_chunk_bytes) {
		rpc_fail(call, SBX_ELIMIT, "input of %zu bytes exceeds %u",
		         req->data.len, srv->cfg->file_chunk_bytes);
		return;
	}
	in.data = req->data;
	down.body_case = SBX__INIT__V1__DOWN__BODY_INPUT;
	down.input = &in;
	process_simple(srv, req->sandbox_id, req->process, &down,
	               (const char **) &in.stream, done, call);
}

void
api_process_close_stdin(Sbx__V1__Sandboxes_Service *svc,
                        const Sbx__V1__ProcessCloseStdinRequest *req,
                        Sbx__V1__Empty_Closure done, void *call)
{
	Sbx__Init__V1__Down down = SBX__INIT__V1__DOWN__INIT;
	Sbx__Init__V1__CloseStdin cs = SBX__INIT__V1__CLOSE_STDIN__INIT;

	down.body_case = SBX__INIT__V1__DOWN__BODY_CLOSE_STDIN;
	down.close_stdin = &cs;
	process_simple(server_of(svc), req->sandbox_id, req->process, &down,
	               (const char **) &cs.stream, done, call);
}

void
api_process_signal(Sbx__V1__Sandboxes_Service *svc,
                   const Sbx__V1__ProcessSignalRequest *req,
                   Sbx__V1__Empty_Closure done, void *call)
{
	Sbx__Init__V1__Down down = SBX__INIT__V1__DOWN__INIT;
	Sbx__Init__V1__Signal sig = SBX__INIT__V1__SIGNAL__INIT;

	/* SIGRTMAX is itself a valid signal (kill -64), as sbx-init agrees. */
	if (req->signal <= 0 || req->signal > SIGRTMAX) {
		rpc_fail(call, SBX_EINVAL, "bad signal %d", req->signal);
		return;
	}
	sig.signal = req->signal;
	down.body_case = SBX__INIT__V1__DOWN__BODY_SIGNAL;
	down.signal = &sig;
	process_simple(server_of(svc), req->sandbox_id, req->process, &down,
	               (const char **) &sig.stream, done, call);
}

void
api_process_resize(Sbx__V1__Sandboxes_Service *svc,
                   const Sbx__V1__ProcessResizeRequest *req,
                   Sbx__V1__Empty_Closure done, void *call)
{
	Sbx__Init__V1__Down down = SBX__INIT__V1__DOWN__INIT;
	Sbx__Init__V1__Resize rs = SBX__INIT__V1__RESIZE__INIT;

	if (req->size == NULL || req->size->cols == 0 || req->size->rows == 0 ||
	    req->size->cols > 1000 || req->size->rows > 1000) {
		rpc_fail(call, SBX_EINVAL, "pty size must be 1..1000");
		return;
	}
	rs.size = req->size;
	down.body_case = SBX__INIT__V1__DOWN__BODY_RESIZE;
	down.resize = &rs;
	process_simple(server_of(svc), req->sandbox_id, req->process, &down,
	               (const char **) &rs.stream, done, call);
}

void
api_process_list(Sbx__V1__Sandboxes_Service *svc,
                 const Sbx__V1__ProcessListRequest *req,
                 Sbx__V1__ProcessListReply_Closure done, void *call)
{
	Sbx__V1__ProcessListReply rep = SBX__V1__PROCESS_LIST_REPLY__INIT;
	Sbx__V1__ProcessInfo *infos = NULL, **ptrs = NULL;
	struct proc_store *stores = NULL;
	struct sandbox *sb;
	struct proc *p;
	char why[256];
	size_t n = 0;
	sbx_err rv;

	if ((rv = sandbox_lookup_running(server_of(svc), req->sandbox_id, &sb,
	                                 why, sizeof(why))) != SBX_OK) {
		rpc_fail(call, rv, "%s", why);
		return;
	}
	infos = calloc(sb->n_procs + 1, sizeof(*infos));
	ptrs = calloc(sb->n_procs + 1, sizeof(*ptrs));
	stores = calloc(sb->n_procs + 1, sizeof(*stores));
	if (infos == NULL || ptrs == NULL || stores == NULL) {
		rpc_fail(call, SBX_ENOMEM, "out of memory");
		goto out;
	}
	for (p = sb->proc_head; p != NULL; p = p->next, n++) {
		if (sandbox_proc_info(p, &infos[n], &stores[n]) != SBX_OK) {
			rpc_fail(call, SBX_ENOMEM, "out of memory");
			goto out;
		}
		ptrs[n] = &infos[n];
	}
	rep.processes = ptrs;
	rep.n_processes = n;
	done(&rep, call);
out:
	for (size_t i = 0; i < n; i++) {
		sandbox_proc_info_fini(&stores[i]);
	}
	free(infos);
	free(ptrs);
	free(stores);
}

void
api_events_fetch(Sbx__V1__Sandboxes_Service *svc,
                 const Sbx__V1__EventsFetchRequest *req,
                 Sbx__V1__EventsFetchReply_Closure done, void *call)
{
	struct server *srv = server_of(svc);
	size_t cap = srv->cfg->file_chunk_bytes;
	Sbx__V1__EventsFetchReply rep;
	struct sandbox *sb;
	struct proc *p;
	char why[256];
	sbx_err rv;

	/* Any state: a dead sandbox's streams stay readable for a while, so
	 * that a subscriber that missed the last events can still get them. */
	if (!sbx_wire_id_valid(req->sandbox_id)) {
		rpc_fail(call, SBX_EINVAL, "invalid sandbox id");
		return;
	}
	if ((sb = sandbox_find(srv, req->sandbox_id)) == NULL) {
		rpc_fail(call, SBX_ENOTFOUND, "no sandbox %s", req->sandbox_id);
		return;
	}
	if ((p = sandbox_proc_find(sb, req->stream)) == NULL) {
		rpc_fail(call, SBX_ENOTFOUND, "no stream %.64s in sandbox %s",
		         req->stream, sb->id);
		return;
	}
	if (req->max_bytes != 0 && req->max_bytes < cap) {
		cap = req->max_bytes;
	}
	if ((rv = backlog_fetch(&p->bl, sb->id, p->stream, req->from_seq, cap,
	                        &rep, why, sizeof(why))) != SBX_OK) {
		rpc_fail(call, rv, "%s", why);
		return;
	}
	done(&rep, call);
	backlog_fetch_fini(&rep);
}

void
api_stream_hold(Sbx__V1__Sandboxes_Service *svc,
                const Sbx__V1__StreamHoldRequest *req,
                Sbx__V1__Empty_Closure done, void *call)
{
	Sbx__V1__Empty empty = SBX__V1__EMPTY__INIT;
	struct sandbox *sb;
	struct proc *p;
	char why[256];
	sbx_err rv;

	if (!sbx_wire_stream_valid(req->holder) ||
	    req->ttl_ms > HOLD_TTL_MAX_MS) {
		rpc_fail(call, SBX_EINVAL, "hold needs a holder id and ttl_ms "
		         "of at most %d", HOLD_TTL_MAX_MS);
		return;
	}
	if ((rv = sandbox_lookup_running(server_of(svc), req->sandbox_id, &sb,
	                                 why, sizeof(why))) != SBX_OK) {
		rpc_fail(call, rv, "%s", why);
		return;
	}
	if ((p = sandbox_proc_find(sb, req->stream)) == NULL) {
		rpc_fail(call, SBX_ENOTFOUND, "no stream %.64s in sandbox %s",
		         req->stream, sb->id);
		return;
	}
	if ((rv = sandbox_proc_hold(sb, p, req->holder, req->seq,
	                            req->ttl_ms)) != SBX_OK) {
		rpc_fail(call, rv, "stream %s already has %d followers holding "
		         "it", p->stream, PROC_HOLDS);
		return;
	}
	done(&empty, call);
}
