/*
 * Bringing a sandbox up: create (ids, uid pair, directories, cgroups, the
 * bwrap jail), the uid map handshake with bwrap, the link to sbx-init and
 * its hello; and re-attaching to live jails after an sbxd restart.
 */
#include <stdio.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "config.h"
#include "initconn.h"
#include "log.h"
#include "registry.h"
#include "rpc.h"
#include "sandbox_int.h"
#include "server.h"
#include "util.h"

#define HELLO_TIMEOUT_MS 5000

/* 20 characters of base32 (a-z, 2-7) from a random uuid: 100 bits. */
static void
new_id(char *out)
{
	static const char digits[] = "abcdefghijklmnopqrstuvwxyz234567";
	uuid_t u;
	unsigned bits = 0, acc = 0;
	size_t n = 0;

	uuid_generate_random(u);
	for (size_t i = 0; i < sizeof(u) && n < 20; i++) {
		acc = (acc << 8) | u[i];
		bits += 8;
		while (bits >= 5 && n < 20) {
			out[n++] = digits[(acc >> (bits - 5)) & 31];
			bits -= 5;
		}
	}
	out[n] = '\0';
}

static sbx_err
mkdir_owned(const char *path, uid_t uid, char *why, size_t whylen)
{
	if (mkdir(path, 0700) != 0 || chown(path, uid, (gid_t) uid) != 0) {
		snprintf(why, whylen, "mkdir %s: %s", path, strerror(errno));
		return SBX_EINTERNAL;
	}
	return SBX_OK;
}

static sbx_err
sandbox_dirs(struct sandbox *sb, char *why, size_t whylen)
{
	char path[4200];
	sbx_err rv;

	if ((rv = mkdir_owned(sb->dir, sb->host_root, why, whylen)) !=
	    SBX_OK) {
		return rv;
	}
	snprintf(path, sizeof(path), "%s/home", sb->dir);
	if ((rv = mkdir_owned(path, sb->host_user, why, whylen)) != SBX_OK) {
		return rv;
	}
	snprintf(path, sizeof(path), "%s/root", sb->dir);
	if ((rv = mkdir_owned(path, sb->host_root, why, whylen)) != SBX_OK ||
	    (rv = mkdir_owned(sb->run, sb->host_root, why, whylen)) != SBX_OK) {
		return rv;
	}
	snprintf(path, sizeof(path), "%s/jail.log", sb->dir);
	sb->log_fd = open(path,
	                  O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW,
	                  0600);
	if (sb->log_fd < 0) {
		snprintf(why, whylen, "open %.300s: %s", path, strerror(errno));
		return SBX_EINTERNAL;
	}
	return SBX_OK;
}

static sbx_err
sandbox_paths(struct sandbox *sb)
{
	const struct config *cfg = sb->srv->cfg;

	if (asprintf(&sb->dir, "%s/sandboxes/%s", cfg->state_dir, sb->id) < 0) {
		sb->dir = NULL;
		return SBX_ENOMEM;
	}
	if (asprintf(&sb->run, "%s/s/%s", cfg->run_dir, sb->id) < 0) {
		sb->run = NULL;
		return SBX_ENOMEM;
	}
	return SBX_OK;
}

static void
sandbox_set_ids(struct sandbox *sb)
{
	const struct config *cfg = sb->srv->cfg;

	sb->host_root = (uid_t) (cfg->uid_base + 2 * sb->uid_slot);
	sb->host_user = sb->host_root + 1;
}

static sbx_err
sandbox_registry_insert(struct sandbox *sb)
{
	struct reg_sandbox r;

	memset(&r, 0, sizeof(r));
	r.id = sb->id;
	r.state = (int) sb->state;
	r.template_name = sb->template_name;
	r.created_ms = sb->created_ms;
	r.deadline_ms = sb->deadline_ms;
	r.uid_slot = sb->uid_slot;
	r.memory_bytes = sb->limits.memory_bytes;
	r.cpu_millis = sb->limits.cpu_millis;
	r.pids = sb->limits.pids;
	r.network = sb->net_allow ? SBX__V1__NETWORK_POLICY__NETWORK_ALLOW
	                          : SBX__V1__NETWORK_POLICY__NETWORK_DENY;
	/* struct kv and struct reg_kv have the same layout by design. */
	r.labels = (struct reg_kv *) sb->labels.v;
	r.n_labels = sb->labels.n;
	r.metadata = (struct reg_kv *) sb->metadata.v;
	r.n_metadata = sb->metadata.n;
	r.env = (struct reg_kv *) sb->env.v;
	r.n_env = sb->env.n;
	return registry_insert(sb->srv->reg, &r);
}

static void sandbox_on_info(struct loop_watch *w, uint32_t events);

/* Everything up to a running bwrap. On failure WHY says what failed. */
static sbx_err
sandbox_spawn(struct sandbox *sb, char *why, size_t whylen)
{
	struct server *srv = sb->srv;
	struct cgroup_limits lim = sb->limits;
	struct jail_spec spec;
	struct jail_start js;
	int cgfds[CGROUP_MAX_FDS];
	size_t ncg = 0;
	sbx_err rv;

	if ((rv = sandbox_registry_insert(sb)) != SBX_OK) {
		snprintf(why, whylen, "registry insert failed");
		return rv;
	}
	if ((rv = sandbox_dirs(sb, why, whylen)) != SBX_OK) {
		return rv;
	}
	/* The limit is the sandbox's own: the jail's tasks come on top. */
	lim.pids += JAIL_AGENT_TASKS;
	if (srv->cg != NULL &&
	    ((rv = cgroup_create(srv->cg, sb->id, &lim, why, whylen)) !=
	             SBX_OK ||
	     (rv = cgroup_join_fds(srv->cg, sb->id, cgfds, &ncg)) != SBX_OK)) {
		if (rv == SBX_EEXIST) {
			rv = SBX_EINTERNAL;
		}
		return rv;
	}
	memset(&spec, 0, sizeof(spec));
	spec.sandbox_dir = sb->dir;
	spec.run_dir = sb->run;
	spec.hostname = srv->cfg->hostname;
	spec.host_root = sb->host_root;
	spec.host_user = sb->host_user;
	spec.net_allow = sb->net_allow;
	spec.tmp_bytes = sb->limits.memory_bytes;
	spec.nproc = lim.pids;
	spec.cgroup_fds = cgfds;
	spec.n_cgroup_fds = ncg;
	spec.log_fd = sb->log_fd;
	rv = jail_spawn(&srv->jail, &spec, &js, why, whylen);
	for (size_t i = 0; i < ncg; i++) {
		close(cgfds[i]);
	}
	if (rv != SBX_OK) {
		return rv;
	}
	sb->bwrap_pid = js.bwrap_pid;
	sb->info_fd = js.info_fd;
	sb->block_fd = js.block_fd;
	sb->info_watch.fd = sb->info_fd;
	sb->info_watch.cb = sandbox_on_info;
	if (loop_watch(srv->loop, &sb->info_watch, EPOLLIN) != SBX_OK) {
		snprintf(why, whylen, "cannot watch the jail's info pipe");
		close(sb->info_fd);
		sb->info_fd = -1;
		return SBX_EINTERNAL;
	}
	return SBX_OK;
}

void
sandbox_create(struct server *srv, struct sandbox *sb, struct rpc_call *call,
               void (*done)(const ProtobufCMessage *, void *))
{
	struct waiter *w;
	char why[512];
	sbx_err rv;

	if ((w = calloc(1, sizeof(*w))) == NULL) {
		sandbox_free(sb);
		rpc_fail(call, SBX_ENOMEM, "out of memory");
		return;
	}
	w->call = call;
	w->done = done;
	if (srv->n_running >= srv->cfg->max_sandboxes) {
		rpc_fail(call, SBX_ELIMIT, "sandbox limit of %u reached",
		         srv->cfg->max_sandboxes);
		goto fail;
	}
	if (sandbox_uid_alloc(srv, &sb->uid_slot) != SBX_OK) {
		rpc_fail(call, SBX_ELIMIT, "no free uid slot (uid_slots=%u)",
		         srv->cfg->uid_slots);
		goto fail;
	}
	sb->uid_held = true;
	do {
		new_id(sb->id);
	} while (sandbox_find(srv, sb->id) != NULL);
	sandbox_set_ids(sb);
	if (sandbox_paths(sb) != SBX_OK ||
	    hmap_put(&srv->sandboxes, sb->id, sb) != SBX_OK) {
		rpc_fail(call, SBX_ENOMEM, "out of memory");
		sandbox_uid_release(srv, sb->uid_slot);
		goto fail;
	}
	sb->state = SANDBOX_STARTING;
	srv->n_running++;
	sb->created_ms = sbx_clock_ms();
	sb->start_deadline_ms = sbx_mono_ms() + srv->cfg->create_timeout_ms;
	sb->start_waiters = w;
	if (sb->deadline_ms == 0) {
		sb->deadline_ms = sb->created_ms +
		                  (int64_t) srv->cfg->default_timeout_s * 1000;
	}
	rv = sandbox_spawn(sb, why, sizeof(why));
	log_debug("SBX-SANDBOX-PHASE", "sbx=%s phase=spawn ms=%lld", sb->id,
	          (long long) (sbx_clock_ms() - sb->created_ms));
	if (rv != SBX_OK) {
		log_warn("SBX-SANDBOX-CREATE-FAILED", "sbx=%s why=\"%s\"", sb->id,
		         why);
		sb->start_err = rv == SBX_ELIMIT || rv == SBX_ESTATE ||
		                                rv == SBX_EPERM
		                        ? rv
		                        : SBX_EINTERNAL;
		sandbox_kill(sb, why, NULL);
	}
	return;
fail:
	free(w);
	sandbox_free(sb);
}

static void
sandbox_start_failed(struct sandbox *sb, const char *what)
{
	char tail[256], why[512];

	sandbox_log_tail(sb, tail, sizeof(tail));
	snprintf(why, sizeof(why), "%s%s%s", what, tail[0] != '\0' ? ": " : "",
	         tail);
	log_warn("SBX-SANDBOX-START-FAILED", "sbx=%s why=\"%s\"", sb->id, why);
	sb->start_err = SBX_EINTERNAL;
	sandbox_kill(sb, why, NULL);
}

static void
sandbox_on_pidfd(struct loop_watch *w, uint32_t events)
{
	struct sandbox *sb = (struct sandbox *) ((char *) w -
	                                         offsetof(struct sandbox,
	                                                  pid_watch));

	(void) events;
	if (sb->state == SANDBOX_RUNNING || sb->state == SANDBOX_STARTING) {
		log_warn("SBX-SANDBOX-JAIL-EXITED", "sbx=%s pid=%d", sb->id,
		         (int) sb->init_pid);
		if (sb->end_reason == NULL) {
			sb->end_reason = strdup("jail exited unexpectedly");
		}
	}
	sandbox_jail_gone(sb);
}

/* Watch sbx-init's exit through a pidfd (works for jails that are not our
 * children, as after a restart). */
static sbx_err
sandbox_watch_init(struct sandbox *sb)
{
	int fd = (int) syscall(SYS_pidfd_open, sb->init_pid, 0);

	if (fd < 0) {
		return SBX_ENOTFOUND;
	}
	sb->pidfd = fd;
	sb->pid_watch.fd = fd;
	sb->pid_watch.cb = sandbox_on_pidfd;
	if (loop_watch(sb->srv->loop, &sb->pid_watch, EPOLLIN) != SBX_OK) {
		close(fd);
		sb->pidfd = -1;
		return SBX_EINTERNAL;
	}
	return SBX_OK;
}

/* bwrap wrote the jail's PID 1 host pid: map its ids, let it go on, and
 * dial sbx-init. */
static void
sandbox_jail_pid(struct sandbox *sb, pid_t pid)
{
	char why[256];
	int block = sb->block_fd;

	sb->init_pid = pid;
	sb->block_fd = -1;
	log_debug("SBX-SANDBOX-PHASE", "sbx=%s phase=info ms=%lld", sb->id,
	          (long long) (sbx_clock_ms() - sb->created_ms));
	if (jail_map_ids(pid, sb->host_root, sb->host_user, why,
	                 sizeof(why)) != SBX_OK) {
		close(block);
		sandbox_start_failed(sb, why);
		return;
	}
	if (jail_release(block) != SBX_OK) {
		sandbox_start_failed(sb, "jail: cannot release bwrap");
		return;
	}
	if (sandbox_watch_init(sb) != SBX_OK ||
	    jail_start_time(pid, &sb->init_start) != SBX_OK) {
		sandbox_start_failed(sb, "jail: PID 1 vanished");
		return;
	}
	if (registry_set_init(sb->srv->reg, sb->id, pid, sb->init_start) !=
	    SBX_OK) {
		/* Logged; a restart would then not find this jail. */
	}
	sandbox_link_open(sb);
}

static void
sandbox_on_info(struct loop_watch *w, uint32_t events)
{
	struct sandbox *sb = (struct sandbox *) ((char *) w -
	                                         offsetof(struct sandbox,
	                                                  info_watch));
	ssize_t n;
	pid_t pid;

	(void) events;
	for (;;) {
		n = read(sb->info_fd, sb->info + sb->info_len,
		         sizeof(sb->info) - 1 - sb->info_len);
		if (n > 0 && sb->info_len + (size_t) n < sizeof(sb->info) - 1) {
			sb->info_len += (size_t) n;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			return;
		}
		break;
	}
	/* EOF, an error, or a full buffer: bwrap has said all it will. */
	loop_unwatch(sb->srv->loop, &sb->info_watch);
	close(sb->info_fd);
	sb->info_fd = -1;
	sb->info[sb->info_len] = '\0';
	if (jail_info_pid(sb->info, sb->info_len, &pid) != SBX_OK) {
		sandbox_start_failed(sb, "jail did not report its PID 1");
		return;
	}
	sandbox_jail_pid(sb, pid);
}

static void
sandbox_on_hello(void *arg, sbx_err st, const char *message,
                 const Sbx__Init__V1__Up *up)
{
	struct sandbox *sb = arg;
	struct info_store store;
	Sbx__V1__SandboxInfo info;
	char path[64], why[300];

	if (st != SBX_OK || up->body_case != SBX__INIT__V1__UP__BODY_HELLO) {
		snprintf(why, sizeof(why), "sandbox agent hello failed: %s",
		         message != NULL && message[0] != '\0' ? message
		                                               : sbx_strerror(st));
		if (sb->state == SANDBOX_STARTING) {
			sandbox_start_failed(sb, why);
		} else {
			log_warn("SBX-SANDBOX-HELLO", "sbx=%s why=\"%s\"", sb->id,
			         why);
		}
		return;
	}
	if (sandbox_proc_sync(sb, up->hello) != SBX_OK) {
		log_warn("SBX-SANDBOX-SYNC", "sbx=%s", sb->id);
	}
	if (sb->state != SANDBOX_STARTING) {
		return;
	}
	snprintf(path, sizeof(path), "/proc/%d/root", (int) sb->init_pid);
	sb->root_fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (sb->root_fd < 0) {
		sandbox_start_failed(sb, "cannot open the jail's root");
		return;
	}
	sb->ran = true;
	sb->recovering = false;
	sandbox_set_state(sb, SANDBOX_RUNNING);
	log_notice("SBX-SANDBOX-READY", "sbx=%s pid=%d uid=%u ms=%lld", sb->id,
	           (int) sb->init_pid, (unsigned) sb->host_root,
	           (long long) (sbx_clock_ms() - sb->created_ms));
	if (sb->start_waiters == NULL) {
		return;
	}
	if (sandbox_info(sb, &info, &store) != SBX_OK) {
		sandbox_fail_start_waiters(sb, SBX_ENOMEM, "out of memory");
		return;
	}
	for (struct waiter *w; (w = sb->start_waiters) != NULL;) {
		sb->start_waiters = w->next;
		w->done(&info.base, w->call);
		free(w);
	}
	sandbox_info_fini(&store);
}

static void
sandbox_on_link_up(void *arg)
{
	struct sandbox *sb = arg;
	Sbx__Init__V1__Down down = SBX__INIT__V1__DOWN__INIT;
	Sbx__Init__V1__Hello hello = SBX__INIT__V1__HELLO__INIT;

	log_debug("SBX-SANDBOX-PHASE", "sbx=%s phase=link ms=%lld", sb->id,
	          (long long) (sbx_clock_ms() - sb->created_ms));
	hello.version = 1;
	down.body_case = SBX__INIT__V1__DOWN__BODY_HELLO;
	down.hello = &hello;
	if (initconn_call(sb->conn, &down, HELLO_TIMEOUT_MS, sandbox_on_hello,
	                  sb) != SBX_OK) {
		log_warn("SBX-SANDBOX-HELLO", "sbx=%s send failed", sb->id);
	}
}

static void
sandbox_on_link_down(void *arg)
{
	struct sandbox *sb = arg;

	/* The dialer reconnects while sbx-init lives; its exit is seen on
	 * the pidfd. */
	log_info("SBX-SANDBOX-LINK-DOWN", "sbx=%s", sb->id);
}

static void
sandbox_on_up(void *arg, const Sbx__Init__V1__Up *up)
{
	sandbox_proc_on_up(arg, up);
}

void
sandbox_link_open(struct sandbox *sb)
{
	struct initconn_owner owner = {
		.arg = sb,
		.on_link_up = sandbox_on_link_up,
		.on_link_down = sandbox_on_link_down,
		.on_up = sandbox_on_up,
	};
	char url[4200];

	snprintf(url, sizeof(url), "ipc://%s/init.sock", sb->run);
	if (initconn_open(&sb->conn, sb->srv->loop, url, sb->host_root,
	                  sb->init_pid, &owner) != SBX_OK) {
		sb->conn = NULL;
		sandbox_start_failed(sb, "cannot dial the sandbox agent");
	}
}

static sbx_err
kv_copy(struct kvlist *dst, const struct reg_kv *src, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		sbx_err rv = kvlist_set(dst, src[i].key, src[i].value);

		if (rv != SBX_OK) {
			return rv;
		}
	}
	return SBX_OK;
}

/* Is the registered sbx-init still the same live process? */
static bool
sandbox_jail_alive(const struct reg_sandbox *r)
{
	uint64_t start;

	return r->init_pid > 0 &&
	       jail_start_time((pid_t) r->init_pid, &start) == SBX_OK &&
	       start == r->init_start;
}

static sbx_err
sandbox_recover_one(const struct reg_sandbox *r, void *arg)
{
	struct server *srv = arg;
	struct sandbox *sb;
	bool alive;

	if ((sb = calloc(1, sizeof(*sb))) == NULL) {
		return SBX_ENOMEM;
	}
	sb->srv = srv;
	sb->pidfd = sb->info_fd = sb->block_fd = sb->root_fd = sb->log_fd = -1;
	hmap_init(&sb->procs);
	snprintf(sb->id, sizeof(sb->id), "%s", r->id);
	sb->state = (enum sandbox_state) r->state;
	sb->template_name = strdup(r->template_name);
	sb->created_ms = r->created_ms;
	sb->deadline_ms = r->deadline_ms;
	sb->ended_ms = r->ended_ms;
	sb->end_reason = r->end_reason != NULL ? strdup(r->end_reason) : NULL;
	sb->uid_slot = r->uid_slot;
	sb->limits.memory_bytes = r->memory_bytes;
	sb->limits.cpu_millis = r->cpu_millis;
	sb->limits.pids = r->pids;
	sb->net_allow = r->network == SBX__V1__NETWORK_POLICY__NETWORK_ALLOW;
	sb->init_pid = (pid_t) r->init_pid;
	sb->init_start = r->init_start;
	sb->ran = r->state != SANDBOX_STARTING;
	sandbox_set_ids(sb);
	if (sb->template_name == NULL || sandbox_paths(sb) != SBX_OK ||
	    kv_copy(&sb->labels, r->labels, r->n_labels) != SBX_OK ||
	    kv_copy(&sb->metadata, r->metadata, r->n_metadata) != SBX_OK ||
	    kv_copy(&sb->env, r->env, r->n_env) != SBX_OK ||
	    hmap_put(&srv->sandboxes, sb->id, sb) != SBX_OK) {
		sandbox_free(sb);
		return SBX_ENOMEM;
	}
	sandbox_uid_claim(srv, sb->uid_slot);
	sb->uid_held = true;
	if (sb->state == SANDBOX_DEAD) {
		/* A tombstone; finish any cleanup the last run left. */
		sb->cgroup_pending = true;
		return SBX_OK;
	}
	srv->n_running++;
	alive = sb->state != SANDBOX_KILLING && sandbox_jail_alive(r);
	if (alive && sandbox_watch_init(sb) == SBX_OK) {
		char path[4200];

		log_notice("SBX-SANDBOX-REATTACH", "sbx=%s pid=%d", sb->id,
		           (int) sb->init_pid);
		snprintf(path, sizeof(path), "%s/jail.log", sb->dir);
		sb->log_fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC |
		                                O_NOFOLLOW);
		sb->state = SANDBOX_STARTING;
		sb->recovering = true;
		sb->start_deadline_ms = sbx_mono_ms() +
		                        srv->cfg->create_timeout_ms;
		sandbox_link_open(sb);
		return SBX_OK;
	}
	log_notice("SBX-SANDBOX-LOST", "sbx=%s pid=%d", sb->id,
	           (int) sb->init_pid);
	if (sb->end_reason == NULL) {
		sb->end_reason = strdup("jail exited while sbxd was down");
	}
	if (sb->state == SANDBOX_KILLING) {
		sandbox_jail_gone(sb);
	} else {
		sandbox_kill(sb, sb->end_reason, NULL);
	}
	return SBX_OK;
}

sbx_err
sandbox_recover(struct server *srv)
{
	return registry_load(srv->reg, sandbox_recover_one, srv);
}
