/*
 * The integration fixture (see sbxd_fixture.h).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sbx_test.h"
#include "sbxd_fixture.h"

#define START_TIMEOUT_MS 20000

void
sbxd_dump_log(const struct sbxd_fixture *f)
{
	char *log = sbx_test_read_file(f->log_path, NULL);

	fprintf(stderr, "---- sbxd log (%s) ----\n%s---- end ----\n",
	        f->log_path, log != NULL ? log : "(none)\n");
	free(log);
}

static unsigned fixture_uid_base(void);

static pid_t
spawn_sbxd_log(struct sbxd_fixture *f, const char *log_path)
{
	char *args[64], uidbase[64], state[600], run[600], rpc[600], ev[600];
	const char *wrap = getenv("SBX_TEST_WRAP");
	size_t n = 0;
	pid_t pid;
	int fd;

	/* Each concurrent fixture gets its own block of 32 uid pairs. */
	snprintf(uidbase, sizeof(uidbase), "--uid_base=%u",
	         fixture_uid_base());
	snprintf(state, sizeof(state), "--state_dir=%s", f->state_dir);
	snprintf(run, sizeof(run), "--run_dir=%s/run", f->dir);
	snprintf(rpc, sizeof(rpc), "--listen=%s", f->rpc_url);
	snprintf(ev, sizeof(ev), "--events=%s", f->events_url);
	if (wrap != NULL && wrap[0] != '\0') {
		args[n++] = "/bin/sh";
		args[n++] = "-c";
		args[n++] = "exec $SBX_TEST_WRAP \"$@\"";
		args[n++] = "sbxd";
	}
	args[n++] = SBX_SBXD_PATH;
	args[n++] = "--init_path=" SBX_INIT_PATH;
	args[n++] = uidbase;
	args[n++] = "--uid_slots=32";
	args[n++] = state;
	args[n++] = run;
	args[n++] = rpc;
	args[n++] = ev;
	args[n++] = "--log_level=info";
	for (size_t i = 0; i < f->n_extra; i++) {
		args[n++] = (char *) f->extra[i];
	}
	args[n] = NULL;
	if ((pid = fork()) == 0) {
		fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0) {
			_exit(126);
		}
		execv(args[0], args);
		_exit(127);
	}
	return pid;
}

static pid_t
spawn_sbxd(struct sbxd_fixture *f)
{
	return spawn_sbxd_log(f, f->log_path);
}

int
sbxd_second(struct sbxd_fixture *f, char *out, size_t len)
{
	char path[600];
	char *text;
	long long until = sbx_test_mono_ms() + 20000;
	int status = -1;
	pid_t pid;

	snprintf(path, sizeof(path), "%s/second.log", f->dir);
	if ((pid = spawn_sbxd_log(f, path)) < 0) {
		return -1;
	}
	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (sbx_test_mono_ms() > until) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			break;
		}
		usleep(10000);
	}
	text = sbx_test_read_file(path, NULL);
	snprintf(out, len, "%s", text != NULL ? text : "");
	free(text);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Wait until Health answers (or sbxd exited, or the time is up). */
static int
wait_ready(struct sbxd_fixture *f)
{
	Sbx__V1__HealthRequest req = SBX__V1__HEALTH_REQUEST__INIT;
	struct sbx_client_opts o = {0};
	long long until = sbx_test_mono_ms() + START_TIMEOUT_MS;
	ProtobufCMessage *rep;
	int status;

	o.url = f->rpc_url;
	o.events_url = f->events_url;
	o.timeout_ms = 1000;
	while (sbx_test_mono_ms() < until) {
		if (waitpid(f->pid, &status, WNOHANG) == f->pid) {
			fprintf(stderr, "sbxd exited during start (status %d)\n",
			        status);
			f->pid = 0;
			sbxd_dump_log(f);
			return -1;
		}
		if (f->c == NULL && sbx_client_open(&f->c, &o) != SBX_OK) {
			f->c = NULL;
			usleep(10000); /* poll interval while it binds */
			continue;
		}
		if (sbx_call(f->c, "Health", &req.base, &rep) == SBX_OK) {
			protobuf_c_message_free_unpacked(rep, NULL);
			/* Calls from here on get the usual timeout. */
			sbx_client_close(f->c);
			o.timeout_ms = 60000;
			return sbx_client_open(&f->c, &o) == SBX_OK ? 0 : -1;
		}
		usleep(10000);
	}
	fprintf(stderr, "sbxd did not answer Health in %d ms\n",
	        START_TIMEOUT_MS);
	sbxd_dump_log(f);
	return -1;
}

int
sbxd_start(struct sbxd_fixture *f, const char *name,
           const char *const *extra)
{
	memset(f, 0, sizeof(*f));
	if (geteuid() != 0 || access("/usr/bin/bwrap", X_OK) != 0) {
		fprintf(stderr, "skip: needs root and bwrap\n");
		return SBX_TEST_SKIP;
	}
	f->dir = sbx_test_scratch(name);
	/* Sandbox uids traverse it to reach their directories. */
	chmod(f->dir, 0711);
	snprintf(f->state_dir, sizeof(f->state_dir), "%s/state", f->dir);
	snprintf(f->log_path, sizeof(f->log_path), "%s/sbxd.log", f->dir);
	snprintf(f->rpc_url, sizeof(f->rpc_url), "ipc://%s/run/rpc", f->dir);
	snprintf(f->events_url, sizeof(f->events_url), "ipc://%s/run/events",
	         f->dir);
	for (size_t i = 0; extra != NULL && extra[i] != NULL && i < 16; i++) {
		f->extra[f->n_extra++] = extra[i];
	}
	if ((f->pid = spawn_sbxd(f)) < 0) {
		return -1;
	}
	return wait_ready(f);
}

static int
reap(struct sbxd_fixture *f, int sig)
{
	long long until = sbx_test_mono_ms() + 30000;
	int status = 0;

	if (f->pid <= 0) {
		return -1;
	}
	kill(f->pid, sig);
	while (waitpid(f->pid, &status, WNOHANG) == 0) {
		if (sbx_test_mono_ms() > until) {
			fprintf(stderr, "sbxd did not stop; killing it\n");
			kill(f->pid, SIGKILL);
			waitpid(f->pid, &status, 0);
			break;
		}
		usleep(5000);
	}
	f->pid = 0;
	return status;
}

static unsigned
fixture_uid_base(void)
{
	return 1000000u + (unsigned) (getpid() % 40000) * 64u;
}

/* Kill every sandbox through the API (the clean path: cgroups and files
 * are removed), so that a test leaves nothing behind on the host. */
static void
kill_sandboxes(struct sbxd_fixture *f)
{
	static Sbx__V1__SandboxState live[] = {
		SBX__V1__SANDBOX_STATE__STATE_STARTING,
		SBX__V1__SANDBOX_STATE__STATE_RUNNING,
		SBX__V1__SANDBOX_STATE__STATE_KILLING,
	};
	Sbx__V1__ListRequest req = SBX__V1__LIST_REQUEST__INIT;
	Sbx__V1__KillRequest kr = SBX__V1__KILL_REQUEST__INIT;
	Sbx__V1__ListReply *rep;
	ProtobufCMessage *kill_rep;

	req.states = live;
	req.n_states = 3;
	if (f->c == NULL || sbx_call(f->c, "List", &req.base,
	                             (ProtobufCMessage **) &rep) != SBX_OK) {
		return;
	}
	for (size_t i = 0; i < rep->n_sandboxes; i++) {
		kr.id = rep->sandboxes[i]->id;
		if (sbx_call(f->c, "Kill", &kr.base, &kill_rep) == SBX_OK) {
			protobuf_c_message_free_unpacked(kill_rep, NULL);
		}
	}
	sbx__v1__list_reply__free_unpacked(rep, NULL);
}

void
sbxd_kill_uids(unsigned lo, unsigned hi)
{
	char path[64], line[256];
	struct dirent *d;
	DIR *proc = opendir("/proc");
	unsigned uid;
	FILE *fp;

	while (proc != NULL && (d = readdir(proc)) != NULL) {
		if (d->d_name[0] < '1' || d->d_name[0] > '9') {
			continue;
		}
		snprintf(path, sizeof(path), "/proc/%s/status", d->d_name);
		if ((fp = fopen(path, "r")) == NULL) {
			continue;
		}
		while (fgets(line, sizeof(line), fp) != NULL) {
			if (sscanf(line, "Uid: %u", &uid) == 1) {
				if (uid >= lo && uid < hi) {
					kill(atoi(d->d_name), SIGKILL);
				}
				break;
			}
		}
		fclose(fp);
	}
	if (proc != NULL) {
		closedir(proc);
	}
}

int
sbxd_stop(struct sbxd_fixture *f, bool keep)
{
	int status;

	kill_sandboxes(f);
	sbx_client_close(f->c);
	f->c = NULL;
	status = reap(f, SIGTERM);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "sbxd exit status %d\n", status);
		sbxd_dump_log(f);
		keep = true;
	}
	/* The safety net: this fixture's sandbox uids. */
	sbxd_kill_uids(fixture_uid_base(), fixture_uid_base() + 64);
	if (!keep) {
		sbx_test_scratch_free(f->dir);
	} else {
		free(f->dir);
	}
	f->dir = NULL;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void
sbxd_crash(struct sbxd_fixture *f)
{
	sbx_client_close(f->c);
	f->c = NULL;
	reap(f, SIGKILL);
}

int
sbxd_restart(struct sbxd_fixture *f)
{
	if ((f->pid = spawn_sbxd(f)) < 0) {
		return -1;
	}
	return wait_ready(f);
}

int
sbxd_crash_restart(struct sbxd_fixture *f)
{
	sbxd_crash(f);
	return sbxd_restart(f);
}

char *
sbxd_create(struct sbxd_fixture *f, Sbx__V1__CreateRequest *req)
{
	Sbx__V1__CreateRequest def = SBX__V1__CREATE_REQUEST__INIT;
	Sbx__V1__SandboxInfo *info;
	char *id;

	if (sbx_call(f->c, "Create", &(req != NULL ? req : &def)->base,
	             (ProtobufCMessage **) &info) != SBX_OK) {
		fprintf(stderr, "create: %s\n", sbx_last_error());
		sbxd_dump_log(f);
		return NULL;
	}
	id = strdup(info->id);
	sbx__v1__sandbox_info__free_unpacked(info, NULL);
	return id;
}

Sbx__V1__SandboxInfo *
sbxd_get(struct sbxd_fixture *f, const char *id, sbx_err *err)
{
	Sbx__V1__GetRequest req = SBX__V1__GET_REQUEST__INIT;
	Sbx__V1__SandboxInfo *info = NULL;

	req.id = (char *) id;
	*err = sbx_call(f->c, "Get", &req.base, (ProtobufCMessage **) &info);
	return info;
}

sbx_err
sbxd_kill(struct sbxd_fixture *f, const char *id)
{
	Sbx__V1__KillRequest req = SBX__V1__KILL_REQUEST__INIT;
	ProtobufCMessage *rep;
	sbx_err err;

	req.id = (char *) id;
	if ((err = sbx_call(f->c, "Kill", &req.base, &rep)) == SBX_OK) {
		protobuf_c_message_free_unpacked(rep, NULL);
	}
	return err;
}

struct collect {
	char *buf[2];
	size_t len[2];
};

static void
collect_data(void *arg, Sbx__V1__Event__BodyCase kind, const uint8_t *data,
             size_t len)
{
	struct collect *c = arg;
	int i = kind == SBX__V1__EVENT__BODY_STDERR;
	char *p = realloc(c->buf[i], c->len[i] + len + 1);

	if (p == NULL) {
		abort();
	}
	c->buf[i] = p;
	memcpy(c->buf[i] + c->len[i], data, len);
	c->len[i] += len;
	c->buf[i][c->len[i]] = '\0';
}

sbx_err
sbxd_run_as(struct sbxd_fixture *f, const char *sandbox, const char *user,
            const char *const *argv, const char *command,
            uint32_t timeout_ms, char **out, char **err, int *code)
{
	Sbx__V1__ProcessStartRequest req = SBX__V1__PROCESS_START_REQUEST__INIT;
	struct collect col = {0};
	struct sbx_stream_cbs cbs = {.arg = &col, .on_data = collect_data};
	int32_t ec = 0, sig = 0;
	size_t n = 0;
	sbx_err rv;

	req.sandbox_id = (char *) sandbox;
	req.user = (char *) (user != NULL ? user : "");
	if (argv != NULL) {
		while (argv[n] != NULL) {
			n++;
		}
		req.argv = (char **) argv;
		req.n_argv = n;
	} else {
		req.command = (char *) command;
	}
	rv = sbx_process_run(f->c, &req, &cbs, timeout_ms, NULL, &ec, &sig);
	for (int i = 0; i < 2; i++) {
		if (col.buf[i] == NULL && (col.buf[i] = calloc(1, 1)) == NULL) {
			abort();
		}
	}
	if (out != NULL) {
		*out = col.buf[0];
	} else {
		free(col.buf[0]);
	}
	if (err != NULL) {
		*err = col.buf[1];
	} else {
		free(col.buf[1]);
	}
	if (code != NULL) {
		*code = sig != 0 ? 128 + sig : ec;
	}
	return rv;
}

sbx_err
sbxd_run(struct sbxd_fixture *f, const char *sandbox, const char *const *argv,
         const char *command, char **out, char **err, int *code)
{
	return sbxd_run_as(f, sandbox, NULL, argv, command, 120000, out, err,
	                   code);
}
