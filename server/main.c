/*
 * sbxd: the sandbox daemon. Reads its configuration, opens its modules in
 * dependency order, re-attaches to live jails, and runs the loop thread
 * until SIGTERM or SIGINT. Jails outlive sbxd: shutting down leaves them
 * running for the next start to find.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "cgroup.h"
#include "config.h"
#include "events.h"
#include "log.h"
#include "loop.h"
#include "registry.h"
#include "rpc.h"
#include "sandbox.h"
#include "server.h"
#include "util.h"
#include "workers.h"

/* Calls that change state go to the audit log. */
static const char *const audited[] = {
	"Create", "Kill", "SetTimeout", "ProcessStart", "ProcessSignal",
	"ProcessCloseStdin", "FileWrite", "FileMkdir", "FileMove",
	"FileRemove",
};

/* A string field of MSG by name, or NULL. */
static const char *
msg_string(const ProtobufCMessage *msg, const char *name)
{
	const ProtobufCFieldDescriptor *f;

	if (msg == NULL ||
	    (f = protobuf_c_message_descriptor_get_field_by_name(
	             msg->descriptor, name)) == NULL ||
	    f->type != PROTOBUF_C_TYPE_STRING ||
	    f->label == PROTOBUF_C_LABEL_REPEATED) {
		return NULL;
	}
	return *(const char *const *) ((const char *) msg + f->offset);
}

static void
on_call_done(void *arg, const char *method, const ProtobufCMessage *req,
             const ProtobufCMessage *reply, sbx_err st, const char *message,
             uint64_t latency_ns)
{
	struct server *srv = arg;
	const char *sandbox, *detail;

	log_debug("SBX-CALL", "method=%s status=%s us=%llu", method,
	          sbx_strerror(st), (unsigned long long) (latency_ns / 1000));
	for (size_t i = 0; i < sizeof(audited) / sizeof(audited[0]); i++) {
		if (strcmp(audited[i], method) != 0) {
			continue;
		}
		/* The id of a created sandbox is in its reply. */
		if ((sandbox = msg_string(req, "sandbox_id")) == NULL &&
		    (sandbox = msg_string(req, "id")) == NULL) {
			sandbox = msg_string(reply, "id");
		}
		detail = msg_string(req, "path");
		if (detail == NULL && st != SBX_OK) {
			detail = message;
		}
		if (registry_audit(srv->reg, sbx_clock_ms(), method, sandbox, st,
		                   detail) != SBX_OK) {
			/* Logged by the registry. */
		}
		break;
	}
}

static void
on_tick(void *arg)
{
	struct server *srv = arg;
	const int64_t purge_every_ms = 60000;
	int64_t now = sbx_mono_ms();

	sandbox_tick(srv);
	rpc_check_listeners(srv->rpc, now);
	publisher_check_listeners(srv->pub, now);
	if (now - srv->last_purge_ms >= purge_every_ms) {
		int64_t days = (int64_t) srv->cfg->audit_retention_days;

		srv->last_purge_ms = now;
		if (registry_purge(srv->reg, 0,
		                   sbx_clock_ms() - days * 86400000) != SBX_OK) {
			/* Logged by the registry. */
		}
	}
}

static void
on_sigchld(void *arg)
{
	sandbox_on_sigchld(arg);
}

static void
on_signal(void *arg, int sig)
{
	struct server *srv = arg;

	if (sig == SIGHUP) {
		log_notice("SBX-SIGHUP", "ignored (restart to reload)");
		return;
	}
	log_notice("SBX-STOPPING", "signal=%d", sig);
	srv->stopping = true;
	loop_stop(srv->loop);
}

static void
usage(FILE *f)
{
	fprintf(f, "usage: sbxd [-c FILE] [--KEY=VALUE ...] [--print-config]\n"
	           "  -c FILE          read settings from FILE (key = value)\n"
	           "  --KEY=VALUE      override one setting (see "
	           "--print-config)\n"
	           "  --print-config   print the effective settings and exit\n"
	           "  --version\n");
}

/* Defaults, then -c FILE, then --key=value, in that order. */
static int
parse_args(struct config *cfg, int argc, char **argv, bool *print)
{
	const char *file = NULL;
	char why[512];

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
			file = argv[++i];
		} else if (strcmp(argv[i], "--print-config") == 0) {
			*print = true;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("sbxd %s\n", SBX_VERSION);
			exit(0);
		} else if (strcmp(argv[i], "-h") == 0 ||
		           strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			exit(0);
		} else if (strncmp(argv[i], "--", 2) != 0 ||
		           strchr(argv[i], '=') == NULL) {
			usage(stderr);
			return 2;
		}
	}
	if (file != NULL && config_load_file(cfg, file, why, sizeof(why)) !=
	                            SBX_OK) {
		fprintf(stderr, "sbxd: %s\n", why);
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		char key[128], *eq;

		if (strncmp(argv[i], "--", 2) != 0 ||
		    (eq = strchr(argv[i], '=')) == NULL) {
			if (strcmp(argv[i], "-c") == 0) {
				i++;
			}
			continue;
		}
		snprintf(key, sizeof(key), "%.*s", (int) (eq - argv[i] - 2),
		         argv[i] + 2);
		for (char *p = key; *p != '\0'; p++) {
			if (*p == '-') {
				*p = '_';
			}
		}
		if (config_set(cfg, key, eq + 1, why, sizeof(why)) != SBX_OK) {
			fprintf(stderr, "sbxd: %s\n", why);
			return 2;
		}
	}
	return 0;
}

static int
make_dir(const char *path, mode_t mode)
{
	if (mkdir(path, mode) != 0 && errno != EEXIST) {
		log_error("SBX-DIR", "path=%s err=%s", path, strerror(errno));
		return -1;
	}
	/* The mode matters (sandbox uids traverse these), so set it even
	 * when the directory already existed. */
	if (chmod(path, mode) != 0) {
		log_error("SBX-DIR", "path=%s err=%s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int
make_dirs(const struct config *cfg)
{
	char path[4200];

	if (make_dir(cfg->state_dir, 0711) != 0 ||
	    make_dir(cfg->run_dir, 0755) != 0) {
		return -1;
	}
	snprintf(path, sizeof(path), "%s/sandboxes", cfg->state_dir);
	if (make_dir(path, 0711) != 0) {
		return -1;
	}
	snprintf(path, sizeof(path), "%s/s", cfg->run_dir);
	return make_dir(path, 0711);
}

/*
 * Take the state dir for this process: two daemons on one registry would
 * each re-attach, and kill, the other's sandboxes. The lock lives as long as
 * the process (the fd is inherited by nothing: CLOEXEC).
 */
static sbx_err
lock_state_dir(struct server *srv, char *why, size_t whylen)
{
	char path[4200], pid[32] = "";
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/sbxd.lock", srv->cfg->state_dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		snprintf(why, whylen, "open %.300s: %s", path, strerror(errno));
		return SBX_EINTERNAL;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		n = pread(fd, pid, sizeof(pid) - 1, 0);
		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		snprintf(why, whylen,
		         "another sbxd (pid %s) is using state_dir %.300s",
		         pid[0] != '\0' ? pid : "?", srv->cfg->state_dir);
		close(fd);
		return SBX_ESTATE;
	}
	n = snprintf(pid, sizeof(pid), "%d\n", (int) getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t) n, 0) != n) {
		/* The lock is what matters; the pid is for the message. */
	}
	srv->lock_fd = fd;
	return SBX_OK;
}

/* Open every module; on failure WHY says which and why. */
static sbx_err
server_open(struct server *srv, char *why, size_t whylen)
{
	const struct config *cfg = srv->cfg;
	struct loop_hooks hooks = {
		.arg = srv,
		.tick = on_tick,
		.on_sigchld = on_sigchld,
		.on_signal = on_signal,
		.tick_ms = 100,
	};
	struct rpc_hooks rh = {.arg = srv, .on_done = on_call_done};
	char path[4200];
	sbx_err rv;

	srv->started_mono_ms = sbx_mono_ms();
	srv->service = (Sbx__V1__Sandboxes_Service) SBX__V1__SANDBOXES__INIT(
	        api_);
	hmap_init(&srv->sandboxes);
	srv->jail.seccomp_fd = -1;
	if ((srv->uid_used = calloc(cfg->uid_slots, 1)) == NULL) {
		return SBX_ENOMEM;
	}
	if (make_dirs(cfg) != 0) {
		snprintf(why, whylen, "cannot make state or run directories");
		return SBX_EINTERNAL;
	}
	if ((rv = lock_state_dir(srv, why, whylen)) != SBX_OK) {
		return rv;
	}
	/* Signals are blocked before any other thread starts. */
	if ((rv = loop_new(&srv->loop, &hooks)) != SBX_OK) {
		snprintf(why, whylen, "loop");
		return rv;
	}
	snprintf(path, sizeof(path), "%s/state.db", cfg->state_dir);
	if ((rv = registry_open(&srv->reg, path, why, whylen)) != SBX_OK ||
	    (rv = jail_env_init(&srv->jail, cfg, why, whylen)) != SBX_OK) {
		return rv;
	}
	if (cfg->cgroups &&
	    (rv = cgroup_env_open(&srv->cg, NULL, why, whylen)) != SBX_OK) {
		return rv;
	}
	if ((rv = workers_start(&srv->files, srv->loop, cfg->file_workers,
	                        WORKERS_DROP_CAPS, "sbx-files")) != SBX_OK ||
	    (rv = workers_start(&srv->cleaner, srv->loop, 1, 0,
	                        "sbx-clean")) != SBX_OK) {
		snprintf(why, whylen, "worker threads");
		return rv;
	}
	if ((rv = publisher_open(&srv->pub, cfg, why, whylen)) != SBX_OK ||
	    (rv = sandbox_recover(srv)) != SBX_OK ||
	    (rv = rpc_start(&srv->rpc, cfg, srv->loop, &srv->service.base, &rh,
	                    why, whylen)) != SBX_OK) {
		return rv;
	}
	return SBX_OK;
}

/* Close in the order that lets every pending call complete. */
static void
server_close(struct server *srv)
{
	rpc_close(srv->rpc);
	if (srv->loop != NULL) {
		loop_run_pending(srv->loop);
	}
	workers_stop(srv->files);
	srv->files = NULL;
	if (srv->loop != NULL) {
		loop_run_pending(srv->loop);
		sandbox_shutdown(srv);
		loop_run_pending(srv->loop);
	}
	rpc_free(srv->rpc);
	workers_stop(srv->cleaner);
	if (srv->loop != NULL) {
		loop_run_pending(srv->loop);
	}
	publisher_close(srv->pub);
	registry_close(srv->reg);
	cgroup_env_free(srv->cg);
	jail_env_fini(&srv->jail);
	loop_free(srv->loop);
	hmap_fini(&srv->sandboxes);
	free(srv->uid_used);
	if (srv->lock_fd > 0) {
		close(srv->lock_fd);
	}
}

int
main(int argc, char **argv)
{
	struct server srv;
	struct config cfg;
	bool print = false;
	char why[512] = "";
	int rc;

	signal(SIGPIPE, SIG_IGN);
	umask(022);
	if (config_defaults(&cfg) != SBX_OK) {
		return 1;
	}
	if ((rc = parse_args(&cfg, argc, argv, &print)) != 0) {
		config_fini(&cfg);
		return rc;
	}
	if (config_finish(&cfg, why, sizeof(why)) != SBX_OK) {
		fprintf(stderr, "sbxd: %s\n", why);
		config_fini(&cfg);
		return 2;
	}
	if (print) {
		config_dump(&cfg, stdout);
		config_fini(&cfg);
		return 0;
	}
	sbx_log_open("sbxd", (enum sbx_log_level) cfg.log_level,
	             cfg.log_syslog);
	memset(&srv, 0, sizeof(srv));
	srv.cfg = &cfg;
	if (geteuid() != 0) {
		log_error("SBX-START", "why=\"sbxd must run as root (it maps "
		                       "sandbox uids and joins cgroups)\"");
		config_fini(&cfg);
		return 1;
	}
	if (server_open(&srv, why, sizeof(why)) != SBX_OK) {
		log_error("SBX-START", "why=\"%s\"", why);
		server_close(&srv);
		config_fini(&cfg);
		return 1;
	}
	log_notice("SBX-STARTED", "version=%s rpc=%s events=%s cgroups=%s "
	                          "sandboxes=%u",
	           SBX_VERSION, cfg.listen, cfg.events,
	           srv.cg != NULL ? cgroup_env_mode(srv.cg) : "off",
	           srv.n_running);
	loop_run(srv.loop);
	server_close(&srv);
	log_notice("SBX-STOPPED", "code=0");
	config_fini(&cfg);
	return 0;
}
