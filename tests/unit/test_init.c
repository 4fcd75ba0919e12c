/*
 * sbx-init, driven from outside a jail: each test starts the real binary
 * as an ordinary child on a scratch socket and speaks init.proto to it
 * over an NNG pair1 dialer, as sbxd does.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/pair1/pair.h>

#include "evlog.h"
#include "init.pb-c.h"
#include "sbx_test.h"
#include "util.h"

#define T_TIMEOUT_MS 20000        /* bound on any one wait */
#define T_HELLO_TRY_MS 500        /* per hello attempt while connecting */
#define T_QUIET_MS 700            /* "no more output is coming" */
#define T_WINDOW (1024 * 1024)    /* sbx-init's default */
#define T_CHUNK (64 * 1024)       /* bytes per output event at most */
#define T_INPUT_MAX (1024 * 1024) /* queued stdin per process */
#define T_PATH_ENV "PATH=/usr/local/bin:/usr/bin:/bin"

struct t_buf {
	char *p;
	size_t len;
	size_t cap;
};

/* What the test has seen of one process's event stream. */
struct t_stream {
	char name[80];
	uint64_t next_seq;
	uint64_t bytes; /* output bytes received */
	bool exited;
	int32_t code;
	int32_t sig;
	char status[32];
	struct t_buf out, err, pty;
};

struct t_init {
	char *dir;
	char sock[256];
	char url[300];
	pid_t pid;
	nng_socket s;
	bool open;
	uint64_t next_id;
	struct t_stream *streams;
	size_t n_streams;
};

struct t_spawn_opts {
	bool stdin;
	uint32_t cols, rows; /* pty when cols != 0 */
	uint32_t uid, gid;
	const char *cwd;
};

/* ---- collecting events ---- */

static void
t_buf_add(struct t_buf *b, const uint8_t *p, size_t len)
{
	if (b->len + len + 1 > b->cap) {
		b->cap = (b->len + len + 1) * 2;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	memcpy(b->p + b->len, p, len);
	b->len += len;
	b->p[b->len] = '\0';
}

static void
t_streams_free(struct t_init *t)
{
	for (size_t i = 0; i < t->n_streams; i++) {
		free(t->streams[i].out.p);
		free(t->streams[i].err.p);
		free(t->streams[i].pty.p);
	}
	free(t->streams);
	t->streams = NULL;
	t->n_streams = 0;
}

static struct t_stream *
t_find(struct t_init *t, const char *name)
{
	for (size_t i = 0; i < t->n_streams; i++) {
		if (strcmp(t->streams[i].name, name) == 0) {
			return &t->streams[i];
		}
	}
	return NULL;
}

static struct t_stream *
t_stream(struct t_init *t, const char *name)
{
	struct t_stream *s = t_find(t, name);

	if (s != NULL) {
		return s;
	}
	t->streams = realloc(t->streams, (t->n_streams + 1) * sizeof(*s));
	assert_non_null(t->streams);
	s = &t->streams[t->n_streams++];
	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->next_seq = 1;
	return s;
}

/* Every event must be the next of its stream: no gap, no repeat, nothing
 * after the exit. */
static void
t_event(struct t_init *t, const Sbx__V1__Event *ev)
{
	struct t_stream *s = t_stream(t, ev->stream);

	if (ev->seq != s->next_seq) {
		fail_msg("stream %s: got seq %llu, want %llu", s->name,
			 (unsigned long long) ev->seq,
			 (unsigned long long) s->next_seq);
	}
	if (s->exited) {
		fail_msg("stream %s: event after exit", s->name);
	}
	CHECK_STR(ev->sandbox_id, "");
	CHECK(ev->time_ms > 0);
	s->next_seq++;
	switch (ev->body_case) {
	case SBX__V1__EVENT__BODY_STDOUT:
		t_buf_add(&s->out, ev->stdout.data, ev->stdout.len);
		s->bytes += ev->stdout.len;
		break;
	case SBX__V1__EVENT__BODY_STDERR:
		t_buf_add(&s->err, ev->stderr.data, ev->stderr.len);
		s->bytes += ev->stderr.len;
		break;
	case SBX__V1__EVENT__BODY_PTY:
		t_buf_add(&s->pty, ev->pty.data, ev->pty.len);
		s->bytes += ev->pty.len;
		break;
	case SBX__V1__EVENT__BODY_EXIT:
		s->exited = true;
		s->code = ev->exit->exit_code;
		s->sig = ev->exit->signal;
		snprintf(s->status, sizeof(s->status), "%s", ev->exit->status);
		break;
	default:
		fail_msg("stream %s: event without body", s->name);
	}
}

/* ---- talking to sbx-init ---- */

static int64_t
t_left(int64_t deadline)
{
	int64_t left = deadline - sbx_mono_ms();

	return left > 0 ? left : 0;
}

/* Receive one Up within TIMEOUT_MS, its events collected. NULL if none. */
static Sbx__Init__V1__Up *
t_recv(struct t_init *t, int64_t timeout_ms)
{
	Sbx__Init__V1__Up *up;
	nng_msg *m;
	int rv;

	nng_socket_set_ms(t->s, NNG_OPT_RECVTIMEO, (nng_duration) timeout_ms);
	if ((rv = nng_recvmsg(t->s, &m, 0)) != 0) {
		if (rv != NNG_ETIMEDOUT) {
			fail_msg("recv: %s", nng_strerror(rv));
		}
		return NULL;
	}
	up = sbx__init__v1__up__unpack(NULL, nng_msg_len(m), nng_msg_body(m));
	nng_msg_free(m);
	assert_non_null(up);
	for (size_t i = 0; i < up->n_events; i++) {
		t_event(t, up->events[i]);
	}
	return up;
}

static int
t_send(struct t_init *t, Sbx__Init__V1__Down *d)
{
	size_t len = sbx__init__v1__down__get_packed_size(d);
	uint8_t *buf = malloc(len + 1);
	int rv;

	assert_non_null(buf);
	sbx__init__v1__down__pack(d, buf);
	rv = nng_send(t->s, buf, len, 0);
	free(buf);
	return rv;
}

/* The reply to ID within TIMEOUT_MS, or NULL; events meanwhile are
 * collected. */
static Sbx__Init__V1__Up *
t_reply(struct t_init *t, uint64_t id, int64_t timeout_ms)
{
	int64_t deadline = sbx_mono_ms() + timeout_ms;
	Sbx__Init__V1__Up *up;

	while ((up = t_recv(t, t_left(deadline))) != NULL) {
		if (up->id == id) {
			return up;
		}
		sbx__init__v1__up__free_unpacked(up, NULL);
	}
	return NULL;
}

/* Send D with a fresh id and return its reply; fail if none comes. */
static Sbx__Init__V1__Up *
t_call(struct t_init *t, Sbx__Init__V1__Down *d)
{
	Sbx__Init__V1__Up *up;
	int rv;

	d->id = ++t->next_id;
	if ((rv = t_send(t, d)) != 0) {
		fail_msg("send: %s", nng_strerror(rv));
	}
	if ((up = t_reply(t, d->id, T_TIMEOUT_MS)) == NULL) {
		fail_msg("no reply to request %llu",
			 (unsigned long long) d->id);
	}
	return up;
}

static void
t_socket_open(struct t_init *t)
{
	CHECK_INT(nng_pair1_open(&t->s), 0);
	t->open = true;
	nng_socket_set_ms(t->s, NNG_OPT_SENDTIMEO, T_HELLO_TRY_MS);
	nng_socket_set_ms(t->s, NNG_OPT_RECONNMINT, 10);
	nng_socket_set_ms(t->s, NNG_OPT_RECONNMAXT, 100);
	/* Non-blocking: the dialer keeps trying until sbx-init listens. */
	CHECK_INT(nng_dial(t->s, t->url, NULL, NNG_FLAG_NONBLOCK), 0);
}

static void
t_socket_close(struct t_init *t)
{
	if (t->open) {
		nng_close(t->s);
		t->open = false;
	}
}

/*
 * Say hello, retrying while sbx-init starts or drops a previous
 * connection. Returns the reply. The collector starts afresh: after the
 * reply comes the replay of every kept event, then new ones.
 */
static Sbx__Init__V1__Up *
t_hello(struct t_init *t)
{
	Sbx__Init__V1__Hello hello = SBX__INIT__V1__HELLO__INIT;
	Sbx__Init__V1__Down d = SBX__INIT__V1__DOWN__INIT;
	int64_t deadline = sbx_mono_ms() + T_TIMEOUT_MS;
	Sbx__Init__V1__Up *up = NULL;

	hello.version = 1;
	d.body_case = SBX__INIT__V1__DOWN__BODY_HELLO;
	d.hello = &hello;
	while (up == NULL && t_left(deadline) > 0) {
		d.id = ++t->next_id;
		if (t_send(t, &d) == 0) {
			up = t_reply(t, d.id, T_HELLO_TRY_MS);
		}
	}
	if (up == NULL) {
		fail_msg("sbx-init did not answer hello on %s", t->url);
	}
	t_streams_free(t);
	CHECK_INT(up->status, SBX_OK);
	CHECK_INT(up->body_case, SBX__INIT__V1__UP__BODY_HELLO);
	CHECK_INT(up->hello->version, 1);
	return up;
}

/* A new connection (as a restarted sbxd), and its hello. */
static Sbx__Init__V1__Up *
t_connect(struct t_init *t)
{
	t_socket_close(t);
	t_socket_open(t);
	return t_hello(t);
}

static void
t_connect_only(struct t_init *t)
{
	sbx__init__v1__up__free_unpacked(t_connect(t), NULL);
}

/* ---- requests ---- */

static sbx_err
t_spawn(struct t_init *t, const char *stream, const char *const *argv,
	const struct t_spawn_opts *o, uint32_t *pid, char *why, size_t wlen)
{
	Sbx__Init__V1__Spawn sp = SBX__INIT__V1__SPAWN__INIT;
	Sbx__Init__V1__Down d = SBX__INIT__V1__DOWN__INIT;
	Sbx__V1__PtySize pty = SBX__V1__PTY_SIZE__INIT;
	char *env[] = {T_PATH_ENV, "HOME=/", "TERM=xterm"};
	Sbx__Init__V1__Spawn__EnvGivenEntry given =
		SBX__INIT__V1__SPAWN__ENV_GIVEN_ENTRY__INIT;
	Sbx__Init__V1__Spawn__EnvGivenEntry *givenp = &given;
	Sbx__Init__V1__Up *up;
	sbx_err rv;

	/* Echoed in listings only. */
	given.key = "GIVEN";
	given.value = (char *) stream;
	sp.n_env_given = 1;
	sp.env_given = &givenp;
	sp.tag = "tag";
	sp.command = "the command";
	sp.user = "user";
	sp.stream = (char *) stream;
	while (argv[sp.n_argv] != NULL) {
		sp.n_argv++;
	}
	sp.argv = (char **) argv;
	sp.n_env = 3;
	sp.env = env;
	if (o != NULL) {
		sp.stdin = o->stdin;
		sp.uid = o->uid;
		sp.gid = o->gid;
		sp.cwd = (char *) (o->cwd != NULL ? o->cwd : "");
		if (o->cols != 0) {
			pty.cols = o->cols;
			pty.rows = o->rows;
			sp.pty = &pty;
		}
	}
	d.body_case = SBX__INIT__V1__DOWN__BODY_SPAWN;
	d.spawn = &sp;
	up = t_call(t, &d);
	rv = (sbx_err) up->status;
	if (rv == SBX_OK) {
		CHECK_INT(up->body_case, SBX__INIT__V1__UP__BODY_SPAWN);
		CHECK(up->spawn->pid > 0);
		if (pid != NULL) {
			*pid = up->spawn->pid;
		}
	}
	if (why != NULL) {
		snprintf(why, wlen, "%s", up->message);
	}
	sbx__init__v1__up__free_unpacked(up, NULL);
	return rv;
}

static sbx_err
t_simple(struct t_init *t, Sbx__Init__V1__Down *d, char *why, size_t wlen)
{
	Sbx__Init__V1__Up *up = t_call(t, d);
	sbx_err rv = (sbx_err) up->status;

	if (why != NULL) {
		snprintf(why, wlen, "%s", up->message);
	}
	sbx__init__v1__up__free_unpacked(up, NULL);
	return rv;
}

static sbx_err
t_input_n(struct t_init *t, const char *stream, const char *data, size_t len)
{
	Sbx__Init__V1__Input in = SBX__INIT__V1__INPUT__INIT;
	Sbx__Init__V1__Down d = SBX__INIT__V1__DOWN__INIT;

	in.stream = (char *) stream;
	in.data.data = (uint8_t *) data;
	in.data.len = len;
	d.body_case = SBX__INIT__V1__DOWN__BODY_INPUT;
	d.input = &in;
	return t_simple(t, &d, NULL, 0);
}

static sbx_err
t_input(struct t_init *t, const char *stream, const char *data)
{
	return t_input_n(t, stream, data, strlen(data));
}

static sbx_err
t_close_stdin(struct t_init *t, const char *stream)
{
	Sbx__Init__V1__CloseStdin cs = SBX__INIT__V1__CLOSE_STDIN__INIT;
	Sbx__Init__V1__Down d = SBX__INIT__V1__DOWN__INIT;

	cs.stream = (char *) stream;
	d.body_case = SBX__INIT__V1__DOWN__BODY_CLOSE_STDIN;
	d.close_stdin = &cs;
	return t_simple(t, &d, NULL, 0);
}

static sbx_err
t_signal(struct t_init *t, const char *stream, int sig)
{
	Sbx__Init__V1__Signal s = SBX__INIT__V1__SIGNAL__INIT;
	Sbx__Init__V1__Down d = SBX__INIT__V1__DOWN__INIT;

	s.stream = (char *) stream;
	s.signal = sig;
	d.body_case = SBX__INIT__V1__DOWN__BODY_SIGNAL;
	d.signal = &s;
	return t_simple(t, &d, NULL, 0);
}

static sbx_err
t_resize(struct t_init *t, const char *stream, uint32_t cols, uint32_t rows)
{
	Sbx__Init__V1__Resize r = SBX__INIT__V1__RESIZE__INIT;
	Sbx__Init__V1__Down d = SBX__INIT__V1__DOWN__INIT;
	Sbx__V1__PtySize sz = SBX__V1__PTY_SIZE__INIT;

	sz.cols = cols;
	sz.rows = rows;
	r.stream = (char *) stream;
	r.size = &sz;
	d.body_case = SBX__INIT__V1__DOWN__BODY_RESIZE;
	d.resize = &r;
	return t_simple(t, &d, NULL, 0);
}

/* Fire-and-forget ack (id 0), as sbxd sends them. */
static void
t_ack(struct t_init *t, const char *stream, uint64_t seq)
{
	Sbx__Init__V1__StreamSeq ss = SBX__INIT__V1__STREAM_SEQ__INIT;
	Sbx__Init__V1__StreamSeq *ssp = &ss;
	Sbx__Init__V1__Ack ack = SBX__INIT__V1__ACK__INIT;
	Sbx__Init__V1__Down d = SBX__INIT__V1__DOWN__INIT;

	ss.stream = (char *) stream;
	ss.seq = seq;
	ack.n_acks = 1;
	ack.acks = &ssp;
	d.body_case = SBX__INIT__V1__DOWN__BODY_ACK;
	d.ack = &ack;
	CHECK_INT(t_send(t, &d), 0);
}

/* A request answered after everything sent before it was handled: acks
 * have no reply, so this tells when one took effect. */
static void
t_barrier(struct t_init *t)
{
	CHECK_ERR(t_signal(t, "no-such-stream", SIGTERM), SBX_ENOTFOUND);
}

/* Collect events until STREAM has exited. */
static struct t_stream *
t_wait_exit(struct t_init *t, const char *stream)
{
	int64_t deadline = sbx_mono_ms() + T_TIMEOUT_MS;
	Sbx__Init__V1__Up *up;
	struct t_stream *s;

	while ((s = t_find(t, stream)) == NULL || !s->exited) {
		if ((up = t_recv(t, t_left(deadline))) == NULL) {
			fail_msg("stream %s did not exit in time", stream);
		}
		sbx__init__v1__up__free_unpacked(up, NULL);
	}
	return s;
}

/* Collect events until STREAM's stdout holds a newline. */
static struct t_stream *
t_wait_line(struct t_init *t, const char *stream)
{
	int64_t deadline = sbx_mono_ms() + T_TIMEOUT_MS;
	Sbx__Init__V1__Up *up;
	struct t_stream *s;

	while ((s = t_find(t, stream)) == NULL || s->out.p == NULL ||
	       strchr(s->out.p, '\n') == NULL) {
		if ((up = t_recv(t, t_left(deadline))) == NULL) {
			fail_msg("stream %s wrote no line in time", stream);
		}
		sbx__init__v1__up__free_unpacked(up, NULL);
	}
	return s;
}

/* Collect events until none has come for T_QUIET_MS. */
static void
t_drain_quiet(struct t_init *t)
{
	Sbx__Init__V1__Up *up;

	while ((up = t_recv(t, T_QUIET_MS)) != NULL) {
		sbx__init__v1__up__free_unpacked(up, NULL);
	}
}

/* ---- the sbx-init process ---- */

/*
 * LeakSanitizer, in sanitizer builds: NNG 1.5.2 itself leaks the parts of
 * connections that fail mid-handshake (the ones that break its listener,
 * see link.c), which some tests provoke on purpose. Only libnng's own
 * allocations are exempt, in this test program; and sbx-init is checked
 * for leaks (its exit status) except in those tests.
 */
const char *__lsan_default_suppressions(void);

const char *
__lsan_default_suppressions(void)
{
	return "leak:libnng.so\n";
}

/* The environment for sbx-init: ours, with leak checks off if NNG_LEAKS. */
static char **
t_init_env(bool nng_leaks, char *asan, size_t asan_len)
{
	extern char **environ;
	const char *old = getenv("ASAN_OPTIONS");
	size_t n = 0, k = 0;
	char **env;

	while (environ[n] != NULL) {
		n++;
	}
	env = calloc(n + 2, sizeof(*env));
	assert_non_null(env);
	for (size_t i = 0; i < n; i++) {
		if (!nng_leaks ||
		    strncmp(environ[i], "ASAN_OPTIONS=", 13) != 0) {
			env[k++] = environ[i];
		}
	}
	if (nng_leaks) {
		snprintf(asan, asan_len, "ASAN_OPTIONS=%s%sdetect_leaks=0",
			 old != NULL ? old : "", old != NULL ? ":" : "");
		env[k++] = asan;
	}
	return env;
}

/* Start sbx-init accepting PEER_UID, as uid AS_UID unless it is 0, with
 * the options in EXTRA (NULL-terminated, may be NULL). */
static void
t_start_args(struct t_init *t, const char *peer_uid, uid_t as_uid,
	     bool nng_leaks, const char *const *extra)
{
	char asan[512], **env;
	const char *argv[16];
	int n = 0;

	t->dir = sbx_test_scratch("init");
	snprintf(t->sock, sizeof(t->sock), "%s/init.sock", t->dir);
	snprintf(t->url, sizeof(t->url), "ipc://%s", t->sock);
	argv[n++] = SBX_INIT_PATH;
	argv[n++] = "--socket";
	argv[n++] = t->sock;
	argv[n++] = "--peer-uid";
	argv[n++] = peer_uid;
	for (int i = 0; extra != NULL && extra[i] != NULL && n < 15; i++) {
		argv[n++] = extra[i];
	}
	argv[n] = NULL;
	if (as_uid != 0) {
		CHECK_INT(chown(t->dir, as_uid, as_uid), 0);
	}
	env = t_init_env(nng_leaks, asan, sizeof(asan));
	if ((t->pid = fork()) == 0) {
		if (as_uid != 0 &&
		    (setgroups(0, NULL) != 0 || setgid(as_uid) != 0 ||
		     setuid(as_uid) != 0)) {
			_exit(126);
		}
		execve(argv[0], (char *const *) argv, env);
		_exit(127);
	}
	free(env);
	CHECK(t->pid > 0);
}

static int
setup(void **state)
{
	struct t_init *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	*state = t;
	return 0;
}

/* Stop sbx-init with SIGTERM; it must exit 0 (a leak under ASan would
 * not). */
static int
t_stop(struct t_init *t)
{
	int64_t deadline = sbx_mono_ms() + T_TIMEOUT_MS;
	int status = 0, rc = 0;
	pid_t r;

	kill(t->pid, SIGTERM);
	while ((r = waitpid(t->pid, &status, WNOHANG)) == 0 &&
	       t_left(deadline) > 0) {
		usleep(10000);
	}
	if (r == 0) {
		kill(t->pid, SIGKILL);
		waitpid(t->pid, &status, 0);
		fprintf(stderr, "sbx-init did not stop on SIGTERM\n");
		rc = -1;
	} else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "sbx-init ended with status 0x%x\n", status);
		rc = -1;
	}
	t->pid = 0;
	return rc;
}

static int
teardown(void **state)
{
	struct t_init *t = *state;
	int rc = 0;

	t_socket_close(t);
	if (t->pid > 0) {
		rc = t_stop(t);
	}
	t_streams_free(t);
	sbx_test_scratch_free(t->dir);
	free(t);
	return rc;
}

static void
t_start(struct t_init *t)
{
	t_start_args(t, "0", 0, false, NULL);
}

/* Wait until PID no longer exists (reaped, not merely a zombie). */
static bool
t_pid_gone(pid_t pid)
{
	int64_t deadline = sbx_mono_ms() + T_TIMEOUT_MS;

	while (kill(pid, 0) == 0 || errno != ESRCH) {
		if (t_left(deadline) == 0) {
			return false;
		}
		usleep(10000);
	}
	return true;
}

/* The parent pid and state of PID from /proc, or -1. */
static pid_t
t_ppid(pid_t pid, char *state)
{
	char path[64], *buf, *p;
	int ppid = -1;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
	if ((buf = sbx_test_read_file(path, NULL)) == NULL) {
		return -1;
	}
	/* The command may hold spaces and parentheses: skip to the last. */
	if ((p = strrchr(buf, ')')) != NULL &&
	    sscanf(p + 1, " %c %d", state, &ppid) != 2) {
		ppid = -1;
	}
	free(buf);
	return (pid_t) ppid;
}

/* ---- evlog: the pure event log ---- */

/* Append an output event of LEN bytes of C; returns its seq. */
static uint64_t
t_log_out(struct evlog *log, size_t len, char c)
{
	struct evlog_event *ev;

	CHECK_OK(evlog_output_begin(log, EVLOG_STDOUT, len, &ev));
	memset(ev->data, c, len);
	evlog_output_commit(log, ev, len, 1);
	return evlog_last_seq(log);
}

static void
test_evlog_window(void **state)
{
	struct evlog *log = evlog_new(1000, 0);
	struct evlog_event *ev;

	(void) state;
	assert_non_null(log);
	CHECK(evlog_window_open(log));
	CHECK_INT(t_log_out(log, 500, 'a'), 1);
	CHECK(evlog_window_open(log));
	CHECK_INT(t_log_out(log, 500, 'b'), 2);
	/* 1000 bytes plus bookkeeping: closed. */
	CHECK(!evlog_window_open(log));
	CHECK_INT(evlog_unacked_bytes(log), 1000 + 2 * EVLOG_EVENT_COST);
	evlog_ack(log, 1);
	CHECK(evlog_window_open(log));
	/* An empty read appends nothing. */
	CHECK_OK(evlog_output_begin(log, EVLOG_STDERR, 10, &ev));
	evlog_output_commit(log, ev, 0, 1);
	CHECK_INT(evlog_last_seq(log), 2);
	evlog_free(log);
}

static void
test_evlog_cursor_and_retain(void **state)
{
	struct evlog *log = evlog_new(1 << 20, 250);

	(void) state;
	assert_non_null(log);
	for (int i = 0; i < 4; i++) {
		t_log_out(log, 100, (char) ('a' + i));
	}
	CHECK_INT(evlog_unsent(log, 0)->seq, 1);
	CHECK_INT(evlog_unsent(log, 3)->seq, 4);
	CHECK(evlog_unsent(log, 4) == NULL);
	evlog_mark_sent(log, 3);
	CHECK_INT(evlog_unsent(log, 0)->seq, 4);
	/* Acked: 3 events of 164 cost; 250 keep only the newest one. */
	evlog_ack(log, 3);
	evlog_rewind(log);
	CHECK_INT(evlog_unsent(log, 0)->seq, 3);
	CHECK_INT(evlog_unsent(log, 0)->data[0], 'c');
	/* Acks beyond the last event are clamped; older ones ignored. */
	evlog_ack(log, 99);
	evlog_ack(log, 2);
	CHECK(evlog_unsent(log, 0) == NULL);
	evlog_rewind(log);
	CHECK_INT(evlog_unsent(log, 0)->seq, 4);
	CHECK(!evlog_done(log));
	evlog_free(log);
}

static void
test_evlog_exit_last(void **state)
{
	struct evlog *log = evlog_new(100, 100);
	struct evlog_event *ev;

	(void) state;
	assert_non_null(log);
	t_log_out(log, 10, 'x');
	evlog_append_exit(log, -1, 9, 5);
	evlog_append_exit(log, 0, 0, 6); /* idempotent */
	CHECK_INT(evlog_last_seq(log), 2);
	CHECK_INT(evlog_unsent(log, 1)->kind, EVLOG_EXIT);
	CHECK_INT(evlog_unsent(log, 1)->signal, 9);
	CHECK_ERR(evlog_output_begin(log, EVLOG_STDOUT, 10, &ev), SBX_ESTATE);
	evlog_ack(log, 1);
	CHECK(!evlog_done(log));
	evlog_ack(log, 2);
	CHECK(evlog_done(log));
	evlog_free(log);
}

/* ---- sbx-init, the program ---- */

static void
test_hello_empty(void **state)
{
	struct t_init *t = *state;
	Sbx__Init__V1__Up *up;

	t_start(t);
	up = t_connect(t);
	CHECK_INT(up->hello->n_processes, 0);
	CHECK_INT(up->n_events, 0);
	sbx__init__v1__up__free_unpacked(up, NULL);
}

static void
test_spawn_output(void **state)
{
	static const char *const argv[] = {
		"/bin/sh", "-c", "echo out; echo err >&2; exit 3", NULL};
	struct t_init *t = *state;
	Sbx__Init__V1__Up *up;
	struct t_stream *s;
	uint32_t pid = 0;
	uint64_t last;

	t_start(t);
	t_connect_only(t);
	CHECK_OK(t_spawn(t, "sh.1", argv, NULL, &pid, NULL, 0));
	CHECK(pid > 0);
	s = t_wait_exit(t, "sh.1");
	CHECK_STR(s->out.p, "out\n");
	CHECK_STR(s->err.p, "err\n");
	CHECK_INT(s->code, 3);
	CHECK_INT(s->sig, 0);
	CHECK_STR(s->status, "exited");
	last = s->next_seq - 1;
	CHECK(last >= 3);
	/* Exited, not acked: listed with its exit, and replayed in full
	 * (the collector starts again from seq 1). */
	up = t_hello(t);
	CHECK_INT(up->hello->n_processes, 1);
	CHECK(!up->hello->processes[0]->running);
	CHECK_INT(up->hello->processes[0]->pid, pid);
	CHECK_INT(up->hello->processes[0]->exit->exit_code, 3);
	sbx__init__v1__up__free_unpacked(up, NULL);
	s = t_wait_exit(t, "sh.1");
	CHECK_STR(s->out.p, "out\n");
	CHECK_INT(s->next_seq - 1, last);
	/* Acked through its exit: forgotten, even by a new sbxd. */
	t_ack(t, "sh.1", last);
	t_barrier(t);
	up = t_connect(t);
	CHECK_INT(up->hello->n_processes, 0);
	sbx__init__v1__up__free_unpacked(up, NULL);
}

static void
test_spawn_errors(void **state)
{
	static const char *const missing[] = {"python4", "-c", "1", NULL};
	static const char *const truth[] = {"true", NULL};
	static const char *const sleeper[] = {"sleep", "100", NULL};
	static const char *const none[] = {NULL};
	struct t_spawn_opts nocwd = {.cwd = "/nope"};
	struct t_init *t = *state;
	Sbx__Init__V1__Up *up;
	char why[256];

	t_start(t);
	t_connect_only(t);
	CHECK_ERR(t_spawn(t, "m", missing, NULL, NULL, why, sizeof(why)),
		  SBX_ENOTFOUND);
	CHECK(strstr(why, "python4") != NULL);
	CHECK_ERR(t_spawn(t, "c", truth, &nocwd, NULL, why, sizeof(why)),
		  SBX_ENOTFOUND);
	CHECK(strstr(why, "/nope") != NULL);
	CHECK_ERR(t_spawn(t, "e", none, NULL, NULL, NULL, 0), SBX_EINVAL);
	CHECK_ERR(t_spawn(t, "bad stream", truth, NULL, NULL, NULL, 0),
		  SBX_EINVAL);
	CHECK_OK(t_spawn(t, "dup", sleeper, NULL, NULL, NULL, 0));
	CHECK_ERR(t_spawn(t, "dup", truth, NULL, NULL, why, sizeof(why)),
		  SBX_EEXIST);
	/* The failed ones are not tracked and said nothing. */
	CHECK(t_find(t, "m") == NULL && t_find(t, "c") == NULL);
	up = t_hello(t);
	CHECK_INT(up->hello->n_processes, 1);
	CHECK_STR(up->hello->processes[0]->stream, "dup");
	CHECK(up->hello->processes[0]->running);
	sbx__init__v1__up__free_unpacked(up, NULL);
	CHECK_OK(t_signal(t, "dup", SIGKILL));
	CHECK_INT(t_wait_exit(t, "dup")->sig, SIGKILL);
}

static void
test_max_procs(void **state)
{
	static const char *const sleeper[] = {"sleep", "100", NULL};
	static const char *const truth[] = {"true", NULL};
	static const char *const max[] = {"--max-procs", "2", NULL};
	struct t_init *t = *state;
	struct t_stream *s;

	t_start_args(t, "0", 0, false, max);
	t_connect_only(t);
	CHECK_OK(t_spawn(t, "a", sleeper, NULL, NULL, NULL, 0));
	CHECK_OK(t_spawn(t, "b", truth, NULL, NULL, NULL, 0));
	CHECK_ERR(t_spawn(t, "c", sleeper, NULL, NULL, NULL, 0), SBX_ELIMIT);
	/* An ended process counts until sbxd acks its exit. */
	s = t_wait_exit(t, "b");
	CHECK_ERR(t_spawn(t, "c", sleeper, NULL, NULL, NULL, 0), SBX_ELIMIT);
	t_ack(t, "b", s->next_seq - 1);
	CHECK_OK(t_spawn(t, "c", sleeper, NULL, NULL, NULL, 0));
	/* A forgotten stream id can be used again. */
	CHECK_OK(t_signal(t, "c", SIGKILL));
	s = t_wait_exit(t, "c");
	t_ack(t, "c", s->next_seq - 1);
	CHECK_OK(t_spawn(t, "b", truth, NULL, NULL, NULL, 0));
}

static void
test_stdin(void **state)
{
	static const char *const cat[] = {"cat", NULL};
	static const char *const sleeper[] = {"sleep", "100", NULL};
	struct t_spawn_opts with_stdin = {.stdin = true};
	struct t_init *t = *state;
	struct t_stream *s;
	char *big;

	t_start(t);
	t_connect_only(t);
	CHECK_OK(t_spawn(t, "cat", cat, &with_stdin, NULL, NULL, 0));
	CHECK_OK(t_input(t, "cat", "hel"));
	CHECK_OK(t_input(t, "cat", "lo"));
	CHECK_OK(t_close_stdin(t, "cat"));
	CHECK_ERR(t_input(t, "cat", "late"), SBX_ESTATE);
	s = t_wait_exit(t, "cat");
	CHECK_STR(s->out.p, "hello");
	CHECK_INT(s->code, 0);
	CHECK_ERR(t_input(t, "cat", "x"), SBX_ESTATE);

	CHECK_OK(t_spawn(t, "nostdin", sleeper, NULL, NULL, NULL, 0));
	CHECK_ERR(t_input(t, "nostdin", "x"), SBX_ESTATE);
	CHECK_ERR(t_close_stdin(t, "nostdin"), SBX_ESTATE);
	CHECK_ERR(t_input(t, "nobody", "x"), SBX_ENOTFOUND);
	CHECK_OK(t_signal(t, "nostdin", SIGKILL));
	t_wait_exit(t, "nostdin");

	/* A reader that never reads: 1 MiB of input waits, no more. */
	big = calloc(1, T_INPUT_MAX + 1);
	assert_non_null(big);
	CHECK_OK(t_spawn(t, "deaf", sleeper, &with_stdin, NULL, NULL, 0));
	CHECK_ERR(t_input_n(t, "deaf", big, T_INPUT_MAX + 1), SBX_ELIMIT);
	CHECK_OK(t_input_n(t, "deaf", big, T_INPUT_MAX / 2 + 100000));
	CHECK_ERR(t_input_n(t, "deaf", big, T_INPUT_MAX / 2 + 100000),
		  SBX_ELIMIT);
	free(big);
	CHECK_OK(t_signal(t, "deaf", SIGKILL));
	t_wait_exit(t, "deaf");
}

static void
test_signal(void **state)
{
	static const char *const sleeper[] = {"sleep", "100", NULL};
	static const char *const group[] = {"/bin/sh", "-c",
					    "sleep 100 & echo $!; wait", NULL};
	static const char *const masks[] = {"grep", "^Sig[IB]",
					    "/proc/self/status", NULL};
	struct t_init *t = *state;
	struct t_stream *s;
	pid_t child;

	t_start(t);
	t_connect_only(t);
	CHECK_OK(t_spawn(t, "s", sleeper, NULL, NULL, NULL, 0));
	CHECK_ERR(t_signal(t, "s", 0), SBX_EINVAL);
	CHECK_ERR(t_signal(t, "s", 999), SBX_EINVAL);
	CHECK_ERR(t_signal(t, "none", SIGTERM), SBX_ENOTFOUND);
	CHECK_OK(t_signal(t, "s", SIGTERM));
	s = t_wait_exit(t, "s");
	CHECK_INT(s->sig, SIGTERM);
	CHECK_INT(s->code, -1);
	CHECK_STR(s->status, "signaled");
	CHECK_ERR(t_signal(t, "s", SIGTERM), SBX_ESTATE);

	/* The whole group dies, not only the shell. */
	CHECK_OK(t_spawn(t, "g", group, NULL, NULL, NULL, 0));
	child = (pid_t) atoi(t_wait_line(t, "g")->out.p);
	CHECK(child > 0);
	CHECK_INT(kill(child, 0), 0);
	CHECK_OK(t_signal(t, "g", SIGKILL));
	CHECK_INT(t_wait_exit(t, "g")->sig, SIGKILL);
	CHECK(t_pid_gone(child));

	/* sbx-init blocks and ignores signals; its children must not. */
	CHECK_OK(t_spawn(t, "m", masks, NULL, NULL, NULL, 0));
	CHECK_STR(t_wait_exit(t, "m")->out.p,
		  "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
}

static void
test_uid_switch(void **state)
{
	static const char *const id[] = {"id", "-u", NULL};
	static const char *const idg[] = {"id", "-G", NULL};
	struct t_spawn_opts user = {.uid = 4321, .gid = 4321};
	struct t_init *t = *state;
	struct t_stream *s;

	if (geteuid() != 0) {
		skip();
	}
	t_start(t);
	t_connect_only(t);
	CHECK_OK(t_spawn(t, "u", id, &user, NULL, NULL, 0));
	s = t_wait_exit(t, "u");
	CHECK_STR(s->out.p, "4321\n");
	/* No supplementary group of sbx-init's survives. */
	CHECK_OK(t_spawn(t, "g", idg, &user, NULL, NULL, 0));
	CHECK_STR(t_wait_exit(t, "g")->out.p, "4321\n");
}

static void
test_pty(void **state)
{
	static const char *const tty[] = {
		"/bin/sh", "-c", "tty; stty size; read x; echo got $x", NULL};
	static const char *const cat[] = {"cat", NULL};
	struct t_spawn_opts pty = {.cols = 80, .rows = 24};
	struct t_init *t = *state;
	struct t_stream *s;

	t_start(t);
	t_connect_only(t);
	CHECK_OK(t_spawn(t, "p", tty, &pty, NULL, NULL, 0));
	CHECK_OK(t_resize(t, "p", 100, 30));
	CHECK_ERR(t_resize(t, "p", 0, 30), SBX_EINVAL);
	CHECK_OK(t_input(t, "p", "abc\n"));
	s = t_wait_exit(t, "p");
	CHECK(s->pty.p != NULL);
	CHECK(strstr(s->pty.p, "/dev/pts/") != NULL);
	/* The size was set before the child started, so stty saw 24x80
	 * or, if the resize won the race, 30x100. */
	CHECK(strstr(s->pty.p, "24 80") != NULL ||
	      strstr(s->pty.p, "30 100") != NULL);
	CHECK(strstr(s->pty.p, "got abc") != NULL);
	CHECK_INT(s->code, 0);
	CHECK(s->out.p == NULL && s->err.p == NULL);

	/* close_stdin on a pty: EOT, which cat reads as end of file. */
	CHECK_OK(t_spawn(t, "c", cat, &pty, NULL, NULL, 0));
	CHECK_OK(t_input(t, "c", "hi\n"));
	CHECK_OK(t_close_stdin(t, "c"));
	CHECK_ERR(t_input(t, "c", "more"), SBX_ESTATE);
	s = t_wait_exit(t, "c");
	CHECK_INT(s->code, 0);
	CHECK(strstr(s->pty.p, "hi") != NULL);
}

static void
test_pty_size(void **state)
{
	static const char *const tty[] = {"/bin/sh", "-c", "tty; stty size",
					  NULL};
	struct t_spawn_opts pty = {.cols = 80, .rows = 24};
	struct t_init *t = *state;
	struct t_stream *s;

	t_start(t);
	t_connect_only(t);
	CHECK_OK(t_spawn(t, "p", tty, &pty, NULL, NULL, 0));
	s = t_wait_exit(t, "p");
	CHECK(strstr(s->pty.p, "/dev/pts/") != NULL);
	CHECK(strstr(s->pty.p, "24 80") != NULL);
	CHECK_ERR(t_resize(t, "p", 10, 10), SBX_ESTATE);
}

/* A process that closes its terminal and lives on is not hung up: the
 * terminal ends with the process, not before. */
static void
test_pty_closed_early(void **state)
{
	static const char *const quiet[] = {
		"/bin/sh", "-c",
		"echo bye; exec 0<&- 1>&- 2>&-; sleep 0.3; exit 7", NULL};
	struct t_spawn_opts pty = {.cols = 80, .rows = 24};
	struct t_init *t = *state;
	struct t_stream *s;

	t_start(t);
	t_connect_only(t);
	CHECK_OK(t_spawn(t, "q", quiet, &pty, NULL, NULL, 0));
	s = t_wait_exit(t, "q");
	CHECK_INT(s->sig, 0);
	CHECK_INT(s->code, 7);
	CHECK(strstr(s->pty.p, "bye") != NULL);
}

/* Output beyond the window waits in the pipe; acks let it through, all
 * of it, in order. */
static void
test_flow_control(void **state)
{
	static const char *const big[] = {
		"/bin/sh", "-c", "head -c 5000000 /dev/zero | tr '\\0' x",
		NULL};
	int64_t deadline;
	struct t_init *t = *state;
	Sbx__Init__V1__Up *up;
	struct t_stream *s;
	uint64_t at_ack;

	t_start(t);
	t_connect_only(t);
	CHECK_OK(t_spawn(t, "big", big, NULL, NULL, NULL, 0));
	/* No acks: sbx-init must stop near the window. */
	t_drain_quiet(t);
	s = t_find(t, "big");
	assert_non_null(s);
	CHECK(!s->exited);
	CHECK(s->bytes < T_WINDOW + T_CHUNK);
	CHECK(s->bytes > T_WINDOW / 2);
	/* Ack as things arrive; the unacked part never exceeds the window. */
	deadline = sbx_mono_ms() + T_TIMEOUT_MS * 3;
	while (!s->exited) {
		t_ack(t, "big", s->next_seq - 1);
		at_ack = s->bytes;
		up = t_recv(t, t_left(deadline));
		if (up == NULL) {
			fail_msg("stalled at %llu bytes",
				 (unsigned long long) s->bytes);
		}
		sbx__init__v1__up__free_unpacked(up, NULL);
		s = t_find(t, "big");
		/* At exit the pipe is drained regardless of the window:
		 * up to one pipe buffer more. */
		CHECK(s->bytes - at_ack <
		      T_WINDOW + T_CHUNK + (s->exited ? T_CHUNK : 0));
	}
	CHECK_INT(s->bytes, 5000000);
	CHECK_INT(s->out.len, 5000000);
	for (size_t i = 0; i < s->out.len; i++) {
		if (s->out.p[i] != 'x') {
			fail_msg("byte %zu is 0x%02x", i,
				 (unsigned) (uint8_t) s->out.p[i]);
		}
	}
	CHECK_INT(s->code, 0);
}

/* Output still in the pipe when the process is reaped comes before its
 * exit event, even with the window closed: with a 64 KiB window, most of
 * these 100000 bytes wait in the pipe when head exits. */
static void
test_exit_drains_output(void **state)
{
	static const char *const head[] = {"head", "-c", "100000", "/dev/zero",
					   NULL};
	static const char *const window[] = {"--window", "65536", NULL};
	struct t_init *t = *state;
	struct t_stream *s;

	t_start_args(t, "0", 0, false, window);
	t_connect_only(t);
	CHECK_OK(t_spawn(t, "head", head, NULL, NULL, NULL, 0));
	s = t_wait_exit(t, "head");
	CHECK_INT(s->out.len, 100000);
	CHECK_INT(s->code, 0);
}

static void
test_reconnect_replay(void **state)
{
	static const char *const slow[] = {
		"/bin/sh", "-c",
		"for i in 1 2 3 4 5; do echo $i; sleep 0.4; done", NULL};
	struct t_init *t = *state;
	Sbx__V1__ProcessInfo *info;
	Sbx__Init__V1__Up *up;
	struct t_stream *s;

	t_start(t);
	t_connect_only(t);
	CHECK_OK(t_spawn(t, "slow", slow, NULL, NULL, NULL, 0));
	t_wait_line(t, "slow");
	CHECK(!t_find(t, "slow")->exited);
	/* sbxd dies without acking anything. */
	up = t_connect(t);
	CHECK_INT(up->hello->n_processes, 1);
	CHECK_STR(up->hello->processes[0]->stream, "slow");
	info = up->hello->processes[0];
	CHECK(info->running);
	CHECK_INT(info->n_argv, 3);
	CHECK_STR(info->argv[2], slow[2]);
	CHECK_STR(info->tag, "tag");
	CHECK_STR(info->command, "the command");
	CHECK_STR(info->user, "user");
	CHECK_STR(info->cwd, "");
	CHECK(!info->pty && info->exit == NULL);
	CHECK_INT(info->n_env, 1);
	CHECK_STR(info->env[0]->key, "GIVEN");
	CHECK_STR(info->env[0]->value, "slow");
	sbx__init__v1__up__free_unpacked(up, NULL);
	/* The fresh collector insists on seq 1, 2, 3, ... with no gap. */
	s = t_wait_exit(t, "slow");
	CHECK_STR(s->out.p, "1\n2\n3\n4\n5\n");
	CHECK_INT(s->code, 0);
}

/* Replay of retained (acked) events to a new sbxd, then forgetting. */
static void
test_replay_retained(void **state)
{
	static const char *const two[] = {"/bin/sh", "-c",
					  "echo a; sleep 0.2; echo b", NULL};
	struct t_init *t = *state;
	struct t_stream *s;
	uint64_t last;

	t_start(t);
	t_connect_only(t);
	CHECK_OK(t_spawn(t, "two", two, NULL, NULL, NULL, 0));
	s = t_wait_exit(t, "two");
	last = s->next_seq - 1;
	t_ack(t, "two", last - 1); /* everything but the exit */
	t_barrier(t);
	t_connect_only(t);
	s = t_wait_exit(t, "two");
	CHECK_STR(s->out.p, "a\nb\n");
	CHECK_INT(s->next_seq - 1, last);
}

/* The helper run as another uid: connect, hello, exit 0 on an answer. */
static int
hello_as(uid_t uid, const char *url)
{
	struct t_init t = {0};
	Sbx__Init__V1__Up *up;

	if (setgroups(0, NULL) != 0 || setgid(uid) != 0 || setuid(uid) != 0) {
		perror("setuid");
		return 2;
	}
	snprintf(t.url, sizeof(t.url), "%s", url);
	up = t_connect(&t);
	sbx__init__v1__up__free_unpacked(up, NULL);
	t_socket_close(&t);
	return 0;
}

static void
test_peer_refused(void **state)
{
	Sbx__Init__V1__Hello hello = SBX__INIT__V1__HELLO__INIT;
	Sbx__Init__V1__Down d = SBX__INIT__V1__DOWN__INIT;
	int64_t deadline = sbx_mono_ms() + T_TIMEOUT_MS;
	struct t_init *t = *state;
	Sbx__Init__V1__Up *up;
	struct stat st;
	int status;
	pid_t pid;

	if (geteuid() != 0) {
		skip();
	}
	/* sbx-init runs as 4242 too, so that its socket lets 4242 in (and
	 * root, as always): only the peer check stands between. */
	t_start_args(t, "4242", 4242, true, NULL);
	while (stat(t->sock, &st) != 0 && t_left(deadline) > 0) {
		usleep(10000);
	}
	CHECK(S_ISSOCK(st.st_mode));
	CHECK_INT(st.st_mode & 0777, 0600);
	CHECK_INT(st.st_uid, 4242);

	t_socket_open(t);
	hello.version = 1;
	d.body_case = SBX__INIT__V1__DOWN__BODY_HELLO;
	d.hello = &hello;
	for (int i = 0; i < 3; i++) {
		d.id = ++t->next_id;
		if (t_send(t, &d) == 0) {
			up = t_reply(t, d.id, T_HELLO_TRY_MS);
			CHECK(up == NULL);
		}
	}
	t_socket_close(t);

	if ((pid = fork()) == 0) {
		execl("/proc/self/exe", "unit_init", "--hello-as", "4242",
		      t->url, (char *) NULL);
		_exit(127);
	}
	CHECK(pid > 0);
	CHECK_INT(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status));
	CHECK_INT(WEXITSTATUS(status), 0);
}

/* However its listener is broken, a new sbxd gets in again. */
static void
test_listener_recovers(void **state)
{
	struct t_init *t = *state;
	nng_socket s;

	t_start_args(t, "0", 0, true, NULL);
	t_connect_only(t);
	t_socket_close(t);
	/* Peers hanging up mid-handshake: NNG 1.5.2 stops accepting after
	 * some of these (nanomsg/nng#1518), sbx-init's watchdog starts it
	 * again. */
	for (int i = 0; i < 40; i++) {
		CHECK_INT(nng_pair1_open(&s), 0);
		CHECK_INT(nng_dial(s, t->url, NULL, NNG_FLAG_NONBLOCK), 0);
		usleep((useconds_t) (i % 4) * 500);
		nng_close(s);
	}
	t_connect_only(t);
	t_socket_close(t);
	/* The socket file gone (a root process of the sandbox can do it). */
	CHECK_INT(unlink(t->sock), 0);
	t_connect_only(t);
}

static void
test_hostile_input(void **state)
{
	static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
	static const char *const sleeper[] = {"sleep", "100", NULL};
	Sbx__Init__V1__Down d = SBX__INIT__V1__DOWN__INIT;
	struct t_spawn_opts huge = {.cols = 70000, .rows = 1};
	struct t_init *t = *state;
	char why[256];

	t_start(t);
	t_connect_only(t);
	CHECK_INT(nng_send(t->s, (void *) garbage, sizeof(garbage), 0), 0);
	CHECK_INT(nng_send(t->s, (void *) garbage, 0, 0), 0);
	CHECK_ERR(t_simple(t, &d, why, sizeof(why)), SBX_EINVAL);
	CHECK(why[0] != '\0');
	CHECK_ERR(t_spawn(t, "h", sleeper, &huge, NULL, NULL, 0), SBX_EINVAL);
	CHECK_OK(t_spawn(t, "s", sleeper, NULL, NULL, NULL, 0));
	CHECK_ERR(t_resize(t, "s", 80, 24), SBX_ESTATE);
	CHECK_ERR(t_resize(t, "nobody", 80, 24), SBX_ENOTFOUND);
	/* Acks beyond anything sent, and for unknown streams. */
	t_ack(t, "s", UINT64_MAX);
	t_ack(t, "nobody", 5);
	t_ack(t, "", 0);
	sbx__init__v1__up__free_unpacked(t_hello(t), NULL);
	CHECK_OK(t_signal(t, "s", SIGKILL));
	t_wait_exit(t, "s");
	CHECK_INT(kill(t->pid, 0), 0);
}

static void
test_orphans_reaped(void **state)
{
	static const char *const orphan[] = {"/bin/sh", "-c",
					     "sleep 2 & echo $!; exit 0", NULL};
	struct t_init *t = *state;
	struct t_stream *s;
	char st = '?';
	pid_t child;

	t_start(t);
	t_connect_only(t);
	CHECK_OK(t_spawn(t, "o", orphan, NULL, NULL, NULL, 0));
	s = t_wait_exit(t, "o");
	CHECK_INT(s->code, 0);
	child = (pid_t) atoi(s->out.p);
	CHECK(child > 0);
	/* The orphan came to sbx-init (a subreaper even when not PID 1)... */
	CHECK_INT(t_ppid(child, &st), t->pid);
	/* ...which reaps it: no zombie stays. */
	CHECK(t_pid_gone(child));
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_evlog_window),
		cmocka_unit_test(test_evlog_cursor_and_retain),
		cmocka_unit_test(test_evlog_exit_last),
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_hello_empty),
		T(test_spawn_output),
		T(test_spawn_errors),
		T(test_max_procs),
		T(test_stdin),
		T(test_signal),
		T(test_uid_switch),
		T(test_pty),
		T(test_pty_size),
		T(test_pty_closed_early),
		T(test_flow_control),
		T(test_exit_drains_output),
		T(test_reconnect_replay),
		T(test_replay_retained),
		T(test_peer_refused),
		T(test_listener_recovers),
		T(test_hostile_input),
		T(test_orphans_reaped),
#undef T
	};
	int rc;

	if (argc == 4 && strcmp(argv[1], "--hello-as") == 0) {
		return hello_as((uid_t) atoi(argv[2]), argv[3]);
	}
	/* SBX_TEST_FILTER=test_pty* runs a subset. */
	if (getenv("SBX_TEST_FILTER") != NULL) {
		cmocka_set_test_filter(getenv("SBX_TEST_FILTER"));
	}
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	/* NNG frees closed sockets' parts on its own threads: wait for them
	 * so that LeakSanitizer sees nothing in flight. */
	nng_fini();
	return rc;
}
