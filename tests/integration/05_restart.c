/*
 * sbxd restarts lose nothing: kill -9 the daemon, start it again, and every
 * live sandbox is found again with its processes still running and their
 * output complete; sandboxes whose jails died meanwhile, or whose deadline
 * passed, are marked dead and cleaned.
 */
#include <pthread.h>
#include <sqlite3.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sbx_test.h"
#include "sbxd_fixture.h"

static struct sbxd_fixture fx;

static int
setup(void **state)
{
	int rc = sbxd_start(&fx, "restart", NULL);

	(void) state;
	if (rc == SBX_TEST_SKIP) {
		exit(SBX_TEST_SKIP);
	}
	return rc;
}

static int
teardown(void **state)
{
	(void) state;
	return sbxd_stop(&fx, false);
}

/* Wait (bounded) until ID is RUNNING again after a restart. */
static void
wait_running(const char *id)
{
	long long until = sbx_test_mono_ms() + 20000;
	Sbx__V1__SandboxInfo *info;
	sbx_err err;
	Sbx__V1__SandboxState state = SBX__V1__SANDBOX_STATE__STATE_UNSPECIFIED;

	while (sbx_test_mono_ms() < until) {
		if ((info = sbxd_get(&fx, id, &err)) != NULL) {
			state = info->state;
			sbx__v1__sandbox_info__free_unpacked(info, NULL);
			if (state == SBX__V1__SANDBOX_STATE__STATE_RUNNING) {
				return;
			}
		}
		usleep(20000);
	}
	fail_msg("sandbox %s not running after restart (state %d)", id,
	         (int) state);
}

/* Wait (bounded) until Get of ID fails; return the status and message. */
static sbx_err
wait_gone(const char *id, char *why, size_t len)
{
	long long until = sbx_test_mono_ms() + 20000;
	Sbx__V1__SandboxInfo *info;
	sbx_err err = SBX_OK;

	while (sbx_test_mono_ms() < until) {
		if ((info = sbxd_get(&fx, id, &err)) == NULL) {
			snprintf(why, len, "%s", sbx_last_error());
			return err;
		}
		sbx__v1__sandbox_info__free_unpacked(info, NULL);
		usleep(20000);
	}
	return SBX_OK;
}

static sbx_err
start_process(const char *id, const char *stream, const char *command)
{
	Sbx__V1__ProcessStartRequest req = SBX__V1__PROCESS_START_REQUEST__INIT;
	ProtobufCMessage *rep;
	sbx_err err;

	req.sandbox_id = (char *) id;
	req.stream = (char *) stream;
	req.command = (char *) command;
	if ((err = sbx_call(fx.c, "ProcessStart", &req.base, &rep)) ==
	    SBX_OK) {
		protobuf_c_message_free_unpacked(rep, NULL);
	}
	return err;
}

struct collect {
	char buf[65536];
	size_t len;
};

static void
on_data(void *arg, Sbx__V1__Event__BodyCase kind, const uint8_t *data,
        size_t len)
{
	struct collect *c = arg;

	if (kind == SBX__V1__EVENT__BODY_STDOUT &&
	    c->len + len < sizeof(c->buf)) {
		memcpy(c->buf + c->len, data, len);
		c->len += len;
	}
}

/* The expected output of "ticks" that print 0..N-1. */
static void
expect_ticks(const struct collect *c, int n)
{
	char want[65536];
	size_t len = 0;

	for (int i = 0; i < n; i++) {
		len += (size_t) snprintf(want + len, sizeof(want) - len,
		                         "tick %d\n", i);
	}
	CHECK_INT(c->len, len);
	CHECK(memcmp(c->buf, want, len) == 0);
}

static void
test_processes_survive(void **state)
{
	static struct collect col;
	struct sbx_stream_cbs cbs = {.arg = &col, .on_data = on_data};
	Sbx__V1__ProcessListRequest pl = SBX__V1__PROCESS_LIST_REQUEST__INIT;
	Sbx__V1__ProcessListReply *procs;
	char *id = sbxd_create(&fx, NULL), *out = NULL;
	sbx_stream *s;
	int32_t code = -1;
	int rc = -1;

	(void) state;
	CHECK(id != NULL);
	CHECK_OK(sbx_file_write(fx.c, id, "kept.txt", NULL, "still here\n",
	                        11, 0));
	/* Ticks before, during and after the daemon is down. */
	CHECK_OK(start_process(id, "ticks",
	                       "for i in $(seq 0 59); do echo tick $i; "
	                       "sleep 0.05; done"));
	sbxd_crash(&fx);
	CHECK_INT(sbxd_restart(&fx), 0);
	wait_running(id);
	pl.sandbox_id = id;
	CHECK_OK(sbx_call(fx.c, "ProcessList", &pl.base,
	                  (ProtobufCMessage **) &procs));
	CHECK_INT(procs->n_processes, 1);
	CHECK_STR(procs->processes[0]->stream, "ticks");
	sbx__v1__process_list_reply__free_unpacked(procs, NULL);
	/* A new client reads the stream from its first event: the output
	 * from before the crash was kept by sbx-init and replayed. */
	CHECK_OK(sbx_stream_open(fx.c, id, "ticks", &cbs, &s));
	CHECK_OK(sbx_stream_wait(s, 30000, &code, NULL));
	sbx_stream_close(s);
	CHECK_INT(code, 0);
	expect_ticks(&col, 60);
	/* Files are there, and the jail still runs new work. */
	CHECK_OK(sbxd_run(&fx, id, NULL, "cat kept.txt", &out, NULL, &rc));
	CHECK_STR(out, "still here\n");
	CHECK_INT(rc, 0);
	free(out);
	free(id);
}

struct follower {
	struct sbxd_fixture *f;
	char id[64];
	struct collect col;
	sbx_err err;
	int32_t code;
	sbx_client *c;
};

static void *
follow_main(void *arg)
{
	struct follower *fw = arg;
	struct sbx_stream_cbs cbs = {.arg = &fw->col, .on_data = on_data};
	sbx_stream *s;

	fw->err = sbx_stream_open(fw->c, fw->id, "slow", &cbs, &s);
	if (fw->err == SBX_OK) {
		fw->err = sbx_stream_wait(s, 60000, &fw->code, NULL);
		sbx_stream_close(s);
	}
	return NULL;
}

static void
test_stream_across_restart(void **state)
{
	struct sbx_client_opts o = {0};
	static struct follower fw;
	char *id = sbxd_create(&fx, NULL);
	pthread_t t;

	(void) state;
	CHECK(id != NULL);
	snprintf(fw.id, sizeof(fw.id), "%s", id);
	o.url = fx.rpc_url;
	o.events_url = fx.events_url;
	o.timeout_ms = 2000;
	/* A client of its own that lives through the restart. */
	CHECK_OK(sbx_client_open(&fw.c, &o));
	CHECK_OK(start_process(id, "slow",
	                       "for i in $(seq 0 39); do echo tick $i; "
	                       "sleep 0.05; done"));
	CHECK_INT(pthread_create(&t, NULL, follow_main, &fw), 0);
	sbxd_crash(&fx);
	CHECK_INT(sbxd_restart(&fx), 0);
	pthread_join(t, NULL);
	sbx_client_close(fw.c);
	CHECK_OK(fw.err);
	CHECK_INT(fw.code, 0);
	expect_ticks(&fw.col, 40);
	free(id);
}

/* The host pid of ID's sbx-init, from the registry. */
static int
init_pid_of(const char *id)
{
	char path[700];
	sqlite3 *db;
	sqlite3_stmt *st;
	int pid = -1;

	snprintf(path, sizeof(path), "%s/state.db", fx.state_dir);
	CHECK_INT(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL),
	          SQLITE_OK);
	CHECK_INT(sqlite3_prepare_v2(db, "SELECT init_pid FROM sandboxes "
	                                 "WHERE id = ?1",
	                             -1, &st, NULL),
	          SQLITE_OK);
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		pid = sqlite3_column_int(st, 0);
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return pid;
}

/* True once PID has exited (gone, or a zombie not yet reaped). */
static bool
pid_dead(int pid)
{
	char path[64], buf[512], *p;
	FILE *f;
	bool dead = true;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if ((f = fopen(path, "r")) == NULL) {
		return true;
	}
	if (fgets(buf, sizeof(buf), f) != NULL &&
	    (p = strrchr(buf, ')')) != NULL) {
		dead = p[2] == 'Z' || p[2] == 'X';
	}
	fclose(f);
	return dead;
}

static void
test_jail_died_while_down(void **state)
{
	char why[512] = "", path[700];
	char *id = sbxd_create(&fx, NULL);
	long long until;
	struct stat st;
	int pid;

	(void) state;
	CHECK(id != NULL);
	pid = init_pid_of(id);
	CHECK(pid > 1);
	sbxd_crash(&fx);
	CHECK_INT(kill(pid, SIGKILL), 0);
	/* SIGKILL lands asynchronously: wait until the jail is really gone
	 * (reaped, or a zombie), so the restart sees it dead. */
	until = sbx_test_mono_ms() + 10000;
	while (!pid_dead(pid) && sbx_test_mono_ms() < until) {
		usleep(5000);
	}
	CHECK(pid_dead(pid));
	CHECK_INT(sbxd_restart(&fx), 0);
	CHECK_INT(wait_gone(id, why, sizeof(why)), SBX_ENOTFOUND);
	CHECK(strstr(why, "while sbxd was down") != NULL);
	snprintf(path, sizeof(path), "%s/sandboxes/%s", fx.state_dir, id);
	until = sbx_test_mono_ms() + 10000;
	while (stat(path, &st) == 0 && sbx_test_mono_ms() < until) {
		usleep(20000);
	}
	CHECK(stat(path, &st) != 0);
	free(id);
}

static void
test_expired_while_down(void **state)
{
	Sbx__V1__CreateRequest req = SBX__V1__CREATE_REQUEST__INIT;
	Sbx__V1__SandboxInfo *info;
	char why[512] = "";
	char *id;
	sbx_err err;

	(void) state;
	req.timeout_s = 2;
	CHECK((id = sbxd_create(&fx, &req)) != NULL);
	info = sbxd_get(&fx, id, &err);
	CHECK(info != NULL);
	sbxd_crash(&fx);
	/* Stay down past its deadline. */
	while ((long long) time(NULL) * 1000 <= info->deadline_ms + 200) {
		usleep(50000);
	}
	sbx__v1__sandbox_info__free_unpacked(info, NULL);
	CHECK_INT(sbxd_restart(&fx), 0);
	CHECK_INT(wait_gone(id, why, sizeof(why)), SBX_ENOTFOUND);
	CHECK(strstr(why, "expired") != NULL);
	free(id);
}

static void
test_second_daemon_refused(void **state)
{
	char out[4096];
	char *id = sbxd_create(&fx, NULL), *echo = NULL;
	int code = -1;

	(void) state;
	CHECK(id != NULL);
	CHECK_INT(sbxd_second(&fx, out, sizeof(out)), 1);
	CHECK(strstr(out, "another sbxd") != NULL);
	/* The first daemon and its sandbox are untouched. */
	CHECK_OK(sbxd_run(&fx, id, NULL, "echo alive", &echo, NULL, &code));
	CHECK_STR(echo, "alive\n");
	free(echo);
	free(id);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_processes_survive),
		cmocka_unit_test(test_stream_across_restart),
		cmocka_unit_test(test_jail_died_while_down),
		cmocka_unit_test(test_expired_while_down),
		cmocka_unit_test(test_second_daemon_refused),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
