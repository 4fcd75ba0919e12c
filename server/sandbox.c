/*
 * The sandbox table, the state machine, killing, cleanup and the periodic
 * tick. Creation and re-attaching live in sandbox_start.c, processes in
 * sandbox_proc.c.
 *
 * DESIGN: a sandbox is killed by SIGKILL to every task of its cgroups (the
 * bwrap monitor included) and to sbx-init through a pidfd; the jail is gone
 * when that pidfd turns readable, or, before sbx-init's pid is known, when
 * bwrap is reaped. Only then are cgroups removed and its directories deleted
 * (on the cleaner thread), and only after that is its uid pair reused, so no
 * file or task of a dead sandbox ever belongs to a live one.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "fsops.h"
#include "initconn.h"
#include "log.h"
#include "panic.h"
#include "registry.h"
#include "rpc.h"
#include "sandbox_int.h"
#include "server.h"
#include "util.h"
#include "workers.h"

static const char *
state_name(enum sandbox_state s)
{
	switch (s) {
	case SANDBOX_STARTING:
		return "starting";
	case SANDBOX_RUNNING:
		return "running";
	case SANDBOX_KILLING:
		return "killing";
	case SANDBOX_DEAD:
		return "dead";
	}
	return "?";
}

void
sandbox_set_state(struct sandbox *sb, enum sandbox_state to)
{
	struct server *srv = sb->srv;
	enum sandbox_state from = sb->state;
	bool ok = false;

	switch (to) {
	case SANDBOX_STARTING:
		ok = false;
		break;
	case SANDBOX_RUNNING:
		ok = from == SANDBOX_STARTING;
		break;
	case SANDBOX_KILLING:
		ok = from == SANDBOX_STARTING || from == SANDBOX_RUNNING;
		break;
	case SANDBOX_DEAD:
		ok = from == SANDBOX_KILLING;
		break;
	}
	SBX_ASSERT(ok);
	if (to == SANDBOX_DEAD) {
		srv->n_running--;
	}
	sb->state = to;
	log_info("SBX-SANDBOX-STATE", "sbx=%s from=%s to=%s", sb->id,
	         state_name(from), state_name(to));
	if (registry_set_state(srv->reg, sb->id, (int) to, sb->end_reason,
	                       sb->ended_ms) != SBX_OK) {
		/* Logged by the registry; memory stays the source of truth. */
	}
}

struct sandbox *
sandbox_find(struct server *srv, const char *id)
{
	return hmap_get(&srv->sandboxes, id);
}

sbx_err
sandbox_lookup_running(struct server *srv, const char *id,
                       struct sandbox **out, char *why, size_t whylen)
{
	struct sandbox *sb;

	if (!sbx_wire_id_valid(id)) {
		snprintf(why, whylen, "invalid sandbox id");
		return SBX_EINVAL;
	}
	if ((sb = sandbox_find(srv, id)) == NULL) {
		snprintf(why, whylen, "no sandbox %s", id);
		return SBX_ENOTFOUND;
	}
	switch (sb->state) {
	case SANDBOX_RUNNING:
		*out = sb;
		return SBX_OK;
	case SANDBOX_STARTING:
		snprintf(why, whylen, "sandbox %s is starting", id);
		return SBX_EUNAVAIL;
	case SANDBOX_KILLING:
	case SANDBOX_DEAD:
		snprintf(why, whylen, "sandbox %s %s", id,
		         sb->end_reason != NULL ? sb->end_reason : "ended");
		return SBX_ENOTFOUND;
	}
	return SBX_EINTERNAL;
}

static void
waiters_finish(struct waiter **list, sbx_err err, const char *message,
               const ProtobufCMessage *msg)
{
	struct waiter *w;

	while ((w = *list) != NULL) {
		*list = w->next;
		if (err == SBX_OK) {
			w->done(msg, w->call);
		} else {
			rpc_fail(w->call, err, "%s", message);
		}
		free(w);
	}
}

void
sandbox_fail_start_waiters(struct sandbox *sb, sbx_err err,
                           const char *message)
{
	waiters_finish(&sb->start_waiters, err, message, NULL);
}

/* Pick SIGKILL for everything of the jail that may exist. */
static void
sandbox_signal_jail(struct sandbox *sb)
{
	struct server *srv = sb->srv;

	if (srv->cg != NULL && cgroup_kill(srv->cg, sb->id) != SBX_OK) {
		/* No cgroup (failed before it was made): pids below. */
	}
	if (sb->pidfd >= 0 &&
	    syscall(SYS_pidfd_send_signal, sb->pidfd, SIGKILL, NULL, 0) != 0 &&
	    errno != ESRCH) {
		log_warn("SBX-SANDBOX-SIGNAL", "sbx=%s err=%s", sb->id,
		         strerror(errno));
	}
	if (sb->bwrap_pid > 0) {
		kill(sb->bwrap_pid, SIGKILL);
	}
}

void
sandbox_kill(struct sandbox *sb, const char *reason, struct waiter *waiter)
{
	if (waiter != NULL) {
		waiter->next = sb->dead_waiters;
		sb->dead_waiters = waiter;
	}
	if (sb->state == SANDBOX_DEAD) {
		waiters_finish(&sb->dead_waiters, SBX_OK, NULL,
		               &(Sbx__V1__KillReply) SBX__V1__KILL_REPLY__INIT
		                        .base);
		return;
	}
	if (sb->state == SANDBOX_KILLING) {
		return;
	}
	if (sb->end_reason == NULL) {
		sb->end_reason = strdup(reason);
	}
	log_notice("SBX-SANDBOX-KILL", "sbx=%s reason=\"%s\"", sb->id, reason);
	sandbox_set_state(sb, SANDBOX_KILLING);
	sandbox_fail_start_waiters(sb,
	                           sb->start_err != SBX_OK ? sb->start_err
	                                                   : SBX_EUNAVAIL,
	                           sb->end_reason);
	sandbox_signal_jail(sb);
	/* Nothing of the jail left to wait for: finish now. */
	if (sb->pidfd < 0 && sb->bwrap_pid <= 0) {
		sandbox_jail_gone(sb);
	}
}

sbx_err
sandbox_set_deadline(struct sandbox *sb, int64_t deadline_ms)
{
	sb->deadline_ms = deadline_ms;
	return registry_set_deadline(sb->srv->reg, sb->id, deadline_ms);
}

/* Work item removing a dead sandbox's directories. */
struct cleanup {
	struct work w;
	struct server *srv;
	char id[SBX_WIRE_ID_MAX + 1];
	char *dir;
	char *run;
	sbx_err rv;
};

static void
cleanup_run(struct work *w)
{
	struct cleanup *c = (struct cleanup *) w;
	sbx_err a, b;

	a = fsops_rmtree_at(AT_FDCWD, c->dir);
	b = fsops_rmtree_at(AT_FDCWD, c->run);
	c->rv = a != SBX_OK ? a : b;
}

static void sandbox_maybe_release(struct sandbox *sb);

static void
cleanup_done(struct work *w)
{
	struct cleanup *c = (struct cleanup *) w;
	struct sandbox *sb = sandbox_find(c->srv, c->id);

	if (c->rv != SBX_OK) {
		log_warn("SBX-SANDBOX-CLEANUP", "sbx=%s err=%s", c->id,
		         sbx_strerror(c->rv));
	}
	if (sb != NULL) {
		free(sb->dir);
		sb->dir = NULL;
		sandbox_maybe_release(sb);
	}
	free(c->dir);
	free(c->run);
	free(c);
}

static void
sandbox_start_cleanup(struct sandbox *sb)
{
	struct cleanup *c = calloc(1, sizeof(*c));

	if (c == NULL || (c->dir = strdup(sb->dir)) == NULL ||
	    (c->run = strdup(sb->run)) == NULL) {
		/* Without memory for the job the files stay; the uid pair
		 * stays held so nothing new ever owns them. */
		log_error("SBX-SANDBOX-CLEANUP", "sbx=%s err=ENOMEM", sb->id);
		if (c != NULL) {
			free(c->dir);
			free(c);
		}
		return;
	}
	c->srv = sb->srv;
	memcpy(c->id, sb->id, sizeof(c->id));
	c->w.run = cleanup_run;
	c->w.done = cleanup_done;
	workers_submit(sb->srv->cleaner, &c->w);
}

static void
sandbox_try_cgroup_remove(struct sandbox *sb)
{
	if (sb->srv->cg == NULL) {
		sb->cgroup_pending = false;
		return;
	}
	switch (cgroup_remove(sb->srv->cg, sb->id)) {
	case SBX_OK:
		sb->cgroup_pending = false;
		sandbox_maybe_release(sb);
		break;
	case SBX_ESTATE:
		/* Tasks still exiting; the tick tries again. */
		sb->cgroup_pending = true;
		if (cgroup_kill(sb->srv->cg, sb->id) != SBX_OK) {
			/* Already empty or gone; remove will tell. */
		}
		break;
	default:
		log_warn("SBX-SANDBOX-CGROUP", "sbx=%s remove failed", sb->id);
		sb->cgroup_pending = true;
		break;
	}
}

/* Release the uid pair once the tasks and files are gone; drop sandboxes
 * that never ran entirely (a failed create leaves nothing behind). */
static void
sandbox_maybe_release(struct sandbox *sb)
{
	struct server *srv = sb->srv;

	if (sb->state != SANDBOX_DEAD || sb->cgroup_pending || sb->dir != NULL) {
		return;
	}
	if (sb->uid_held) {
		sandbox_uid_release(srv, sb->uid_slot);
		sb->uid_held = false;
	}
	if (!sb->ran) {
		if (registry_delete(srv->reg, sb->id) != SBX_OK) {
			/* Logged by the registry. */
		}
		hmap_del(&srv->sandboxes, sb->id);
		sandbox_free(sb);
	}
}

void
sandbox_jail_gone(struct sandbox *sb)
{
	struct initconn *conn = sb->conn;
	struct loop *lp = sb->srv->loop;

	if (sb->state == SANDBOX_DEAD) {
		return;
	}
	if (sb->state != SANDBOX_KILLING) {
		if (sb->end_reason == NULL) {
			sb->end_reason = strdup("jail exited");
		}
		sandbox_set_state(sb, SANDBOX_KILLING);
		sandbox_fail_start_waiters(
		        sb, sb->start_err != SBX_OK ? sb->start_err : SBX_EINTERNAL,
		        sb->end_reason);
	}
	sb->conn = NULL;
	initconn_close(conn);
	if (sb->pidfd >= 0) {
		loop_unwatch(lp, &sb->pid_watch);
		close(sb->pidfd);
		sb->pidfd = -1;
	}
	if (sb->info_fd >= 0) {
		loop_unwatch(lp, &sb->info_watch);
		close(sb->info_fd);
		sb->info_fd = -1;
	}
	if (sb->block_fd >= 0) {
		close(sb->block_fd);
		sb->block_fd = -1;
	}
	if (sb->root_fd >= 0) {
		close(sb->root_fd);
		sb->root_fd = -1;
	}
	if (sb->log_fd >= 0) {
		close(sb->log_fd);
		sb->log_fd = -1;
	}
	/* Processes end with a last exit event; their backlogs stay for a
	 * while so that a subscriber that missed it can still fetch it. */
	sandbox_proc_end_all(sb);
	sb->ended_ms = sbx_clock_ms();
	sandbox_set_state(sb, SANDBOX_DEAD);
	log_notice("SBX-SANDBOX-DEAD", "sbx=%s reason=\"%s\"", sb->id,
	           sb->end_reason != NULL ? sb->end_reason : "");
	waiters_finish(&sb->dead_waiters, SBX_OK, NULL,
	               &(Sbx__V1__KillReply) SBX__V1__KILL_REPLY__INIT.base);
	sb->cgroup_pending = true;
	if (sb->dir != NULL) {
		sandbox_start_cleanup(sb);
	}
	sandbox_try_cgroup_remove(sb);
}

void
kvlist_fini(struct kvlist *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].key);
		free(l->v[i].value);
	}
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

const char *
kvlist_get(const struct kvlist *l, const char *key)
{
	for (size_t i = 0; i < l->n; i++) {
		if (strcmp(l->v[i].key, key) == 0) {
			return l->v[i].value;
		}
	}
	return NULL;
}

sbx_err
kvlist_set(struct kvlist *l, const char *key, const char *value)
{
	struct kv *v;
	char *k, *val;

	if ((val = strdup(value)) == NULL) {
		return SBX_ENOMEM;
	}
	for (size_t i = 0; i < l->n; i++) {
		if (strcmp(l->v[i].key, key) == 0) {
			free(l->v[i].value);
			l->v[i].value = val;
			return SBX_OK;
		}
	}
	if ((k = strdup(key)) == NULL ||
	    (v = realloc(l->v, (l->n + 1) * sizeof(*v))) == NULL) {
		free(k);
		free(val);
		return SBX_ENOMEM;
	}
	l->v = v;
	l->v[l->n].key = k;
	l->v[l->n].value = val;
	l->n++;
	return SBX_OK;
}

void
sandbox_free(struct sandbox *sb)
{
	if (sb == NULL) {
		return;
	}
	SBX_ASSERT(sb->conn == NULL && sb->start_waiters == NULL &&
	           sb->dead_waiters == NULL);
	sandbox_proc_free_all(sb);
	hmap_fini(&sb->procs);
	if (sb->pidfd >= 0) {
		close(sb->pidfd);
	}
	if (sb->info_fd >= 0) {
		close(sb->info_fd);
	}
	if (sb->block_fd >= 0) {
		close(sb->block_fd);
	}
	if (sb->root_fd >= 0) {
		close(sb->root_fd);
	}
	if (sb->log_fd >= 0) {
		close(sb->log_fd);
	}
	kvlist_fini(&sb->labels);
	kvlist_fini(&sb->metadata);
	kvlist_fini(&sb->env);
	free(sb->template_name);
	free(sb->end_reason);
	free(sb->dir);
	free(sb->run);
	free(sb);
}

sbx_err
sandbox_info(const struct sandbox *sb, Sbx__V1__SandboxInfo *info,
             struct info_store *st)
{
	size_t nl = sb->labels.n, nm = sb->metadata.n;

	memset(st, 0, sizeof(*st));
	sbx__v1__sandbox_info__init(info);
	sbx__v1__limits__init(&st->limits);
	st->limits.memory_bytes = sb->limits.memory_bytes;
	st->limits.cpu_millis = sb->limits.cpu_millis;
	st->limits.pids = sb->limits.pids;
	st->labels = calloc(nl + 1, sizeof(*st->labels));
	st->metadata = calloc(nm + 1, sizeof(*st->metadata));
	st->label_ptrs = calloc(nl + 1, sizeof(*st->label_ptrs));
	st->metadata_ptrs = calloc(nm + 1, sizeof(*st->metadata_ptrs));
	if (st->labels == NULL || st->metadata == NULL ||
	    st->label_ptrs == NULL || st->metadata_ptrs == NULL) {
		sandbox_info_fini(st);
		return SBX_ENOMEM;
	}
	for (size_t i = 0; i < nl; i++) {
		sbx__v1__sandbox_info__labels_entry__init(&st->labels[i]);
		st->labels[i].key = sb->labels.v[i].key;
		st->labels[i].value = sb->labels.v[i].value;
		st->label_ptrs[i] = &st->labels[i];
	}
	for (size_t i = 0; i < nm; i++) {
		sbx__v1__sandbox_info__metadata_entry__init(&st->metadata[i]);
		st->metadata[i].key = sb->metadata.v[i].key;
		st->metadata[i].value = sb->metadata.v[i].value;
		st->metadata_ptrs[i] = &st->metadata[i];
	}
	info->labels = st->label_ptrs;
	info->n_labels = nl;
	info->metadata = st->metadata_ptrs;
	info->n_metadata = nm;
	info->id = (char *) sb->id;
	info->state = (Sbx__V1__SandboxState) sb->state;
	info->template_ = sb->template_name;
	info->created_ms = sb->created_ms;
	info->deadline_ms = sb->deadline_ms;
	info->limits = &st->limits;
	info->network = sb->net_allow ? SBX__V1__NETWORK_POLICY__NETWORK_ALLOW
	                              : SBX__V1__NETWORK_POLICY__NETWORK_DENY;
	info->end_reason = sb->end_reason != NULL ? sb->end_reason : "";
	return SBX_OK;
}

void
sandbox_info_fini(struct info_store *st)
{
	free(st->labels);
	free(st->metadata);
	free(st->label_ptrs);
	free(st->metadata_ptrs);
	memset(st, 0, sizeof(*st));
}

void
sandbox_tick(struct server *srv)
{
	int64_t now = sbx_clock_ms(), mono = sbx_mono_ms();
	const struct config *cfg = srv->cfg;
	struct sandbox *sb;
	size_t pos = 0;
	char why[160];

	while (hmap_next(&srv->sandboxes, &pos, (void **) &sb)) {
		switch (sb->state) {
		case SANDBOX_RUNNING:
			if (sb->deadline_ms <= now) {
				sandbox_kill(sb, "expired", NULL);
				break;
			}
			sandbox_proc_gc(sb, mono);
			initconn_tick(sb->conn, mono);
			break;
		case SANDBOX_STARTING:
			if (mono >= sb->start_deadline_ms) {
				snprintf(why, sizeof(why),
				         "start timed out after %u ms",
				         cfg->create_timeout_ms);
				sandbox_kill(sb, why, NULL);
				break;
			}
			if (sb->conn != NULL) {
				initconn_tick(sb->conn, mono);
			}
			break;
		case SANDBOX_KILLING:
			break;
		case SANDBOX_DEAD:
			sandbox_proc_gc(sb, mono);
			if (sb->cgroup_pending) {
				sandbox_try_cgroup_remove(sb);
			} else if (sb->dir == NULL && sb->ran &&
			           sb->ended_ms + (int64_t) cfg->dead_retention_s *
			                                  1000 <=
			                   now) {
				if (registry_delete(srv->reg, sb->id) !=
				    SBX_OK) {
					/* Logged by the registry. */
				}
				hmap_del(&srv->sandboxes, sb->id);
				sandbox_free(sb);
			}
			break;
		}
	}
}

void
sandbox_on_sigchld(struct server *srv)
{
	struct sandbox *sb;
	size_t pos;
	pid_t pid;
	int status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (pos = 0; hmap_next(&srv->sandboxes, &pos, (void **) &sb);) {
			if (sb->bwrap_pid != pid) {
				continue;
			}
			sb->bwrap_pid = 0;
			if (sb->state != SANDBOX_DEAD && sb->pidfd < 0) {
				/* bwrap ended before sbx-init's pid was known:
				 * the jail never came up. */
				char tail[256];

				sandbox_log_tail(sb, tail, sizeof(tail));
				if (sb->end_reason == NULL &&
				    asprintf(&sb->end_reason,
				             "jail setup failed: %s", tail) < 0) {
					sb->end_reason = NULL;
				}
				sandbox_jail_gone(sb);
			}
			break;
		}
	}
}

void
sandbox_shutdown(struct server *srv)
{
	struct sandbox *sb;
	size_t pos = 0;

	while (hmap_next(&srv->sandboxes, &pos, (void **) &sb)) {
		struct initconn *conn = sb->conn;

		sandbox_fail_start_waiters(sb, SBX_EUNAVAIL,
		                           "sbxd is shutting down");
		waiters_finish(&sb->dead_waiters, SBX_EUNAVAIL,
		               "sbxd is shutting down", NULL);
		sb->conn = NULL;
		initconn_close(conn);
	}
	pos = 0;
	while (hmap_next(&srv->sandboxes, &pos, (void **) &sb)) {
		hmap_del(&srv->sandboxes, sb->id);
		if (sb->pidfd >= 0) {
			loop_unwatch(srv->loop, &sb->pid_watch);
		}
		if (sb->info_fd >= 0) {
			loop_unwatch(srv->loop, &sb->info_watch);
		}
		sandbox_free(sb);
	}
}

void
sandbox_log_tail(const struct sandbox *sb, char *buf, size_t len)
{
	char path[4200];
	off_t size;
	ssize_t n;
	int fd;

	buf[0] = '\0';
	if (sb->dir == NULL) {
		return;
	}
	snprintf(path, sizeof(path), "%s/jail.log", sb->dir);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		return;
	}
	size = lseek(fd, 0, SEEK_END);
	if (size > (off_t) len - 1) {
		lseek(fd, size - (off_t) len + 1, SEEK_SET);
	} else {
		lseek(fd, 0, SEEK_SET);
	}
	n = read(fd, buf, len - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	for (char *p = buf; *p != '\0'; p++) {
		if (*p == '\n' || *p == '"') {
			*p = ' ';
		}
	}
}

sbx_err
sandbox_uid_alloc(struct server *srv, uint32_t *slot)
{
	for (uint32_t i = 0; i < srv->cfg->uid_slots; i++) {
		if (!srv->uid_used[i]) {
			srv->uid_used[i] = 1;
			*slot = i;
			return SBX_OK;
		}
	}
	return SBX_ELIMIT;
}

void
sandbox_uid_claim(struct server *srv, uint32_t slot)
{
	if (slot < srv->cfg->uid_slots) {
		srv->uid_used[slot] = 1;
	}
}

void
sandbox_uid_release(struct server *srv, uint32_t slot)
{
	if (slot < srv->cfg->uid_slots) {
		srv->uid_used[slot] = 0;
	}
}
