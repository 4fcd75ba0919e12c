/*
 * Processes in real jails through libsbx: exec by argv and by shell
 * command, exit codes and signals, complete and ordered output, stdin,
 * signals to process groups, pseudo-terminals, environment, users and
 * working directories, process listing and lookup, the event backlog read
 * directly, many processes at once, and every way a process call can be
 * wrong.
 *
 * Two sandboxes live for the whole file (sb_a for most tests, sb_b to show
 * that bad input in one leaves the other alone); tests that need special
 * settings create their own.
 */
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <time.h>
#include <unistd.h>

#include "sbx_test.h"
#include "sbxd_fixture.h"

#define WAIT_MS 60000 /* the most any one process here may take */
#define POLL_DEADLINE_MS 10000 /* for conditions we poll for */

static struct sbxd_fixture fx;
static char *sb_a, *sb_b;

/* ---- fixture ---- */

static int
setup(void **state)
{
	int rc = sbxd_start(&fx, "process", NULL);

	(void) state;
	if (rc == SBX_TEST_SKIP) {
		exit(SBX_TEST_SKIP);
	}
	if (rc != 0) {
		return rc;
	}
	sb_a = sbxd_create(&fx, NULL);
	sb_b = sbxd_create(&fx, NULL);
	return sb_a != NULL && sb_b != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
	(void) state;
	free(sb_a);
	free(sb_b);
	return sbxd_stop(&fx, false);
}

/* ---- a started process and its collected output ---- */

enum { OUT_STDOUT, OUT_STDERR, OUT_PTY, OUT_N };

/* What a stream delivered. The I/O thread appends; the test thread reads
 * under the lock while the process runs, freely once it has ended. */
struct output {
	pthread_mutex_t mtx;
	char *buf[OUT_N]; /* NUL-terminated for convenience */
	size_t len[OUT_N];
	size_t n_chunks[OUT_N];
	bool exited;
	int32_t exit_code;
	int32_t signal;
	char status[32];
};

/* A process started by a test. Heap-allocated and linked on a list, so
 * that when a check fails (cmocka jumps out of the test) the per-test
 * cleanup still closes its stream before a late event could reach
 * callbacks whose memory is gone. */
struct tproc {
	struct tproc *next;
	char stream[72];
	sbx_stream *s;
	struct output out;
	Sbx__V1__ProcessInfo *info; /* the start reply */
};

static pthread_mutex_t live_mtx = PTHREAD_MUTEX_INITIALIZER;
static struct tproc *live;

static void
output_on_data(void *arg, Sbx__V1__Event__BodyCase kind, const uint8_t *data,
               size_t len)
{
	struct output *o = arg;
	int i = kind == SBX__V1__EVENT__BODY_STDOUT   ? OUT_STDOUT
	        : kind == SBX__V1__EVENT__BODY_STDERR ? OUT_STDERR
	                                              : OUT_PTY;
	char *b;

	pthread_mutex_lock(&o->mtx);
	if ((b = realloc(o->buf[i], o->len[i] + len + 1)) != NULL) {
		memcpy(b + o->len[i], data, len);
		o->buf[i] = b;
		o->len[i] += len;
		o->buf[i][o->len[i]] = '\0';
		o->n_chunks[i]++;
	}
	pthread_mutex_unlock(&o->mtx);
}

static void
output_on_exit(void *arg, const Sbx__V1__ProcessExit *exit)
{
	struct output *o = arg;

	pthread_mutex_lock(&o->mtx);
	o->exited = true;
	o->exit_code = exit->exit_code;
	o->signal = exit->signal;
	snprintf(o->status, sizeof(o->status), "%s", exit->status);
	pthread_mutex_unlock(&o->mtx);
}

static struct tproc *
tproc_new(void)
{
	struct tproc *tp = calloc(1, sizeof(*tp));

	assert_non_null(tp);
	pthread_mutex_init(&tp->out.mtx, NULL);
	for (int i = 0; i < OUT_N; i++) {
		tp->out.buf[i] = calloc(1, 1);
	}
	pthread_mutex_lock(&live_mtx);
	tp->next = live;
	live = tp;
	pthread_mutex_unlock(&live_mtx);
	return tp;
}

/* Close TP's stream (no callback runs after that) and free it. */
static void
tproc_free(struct tproc *tp)
{
	struct tproc **pp;

	if (tp == NULL) {
		return;
	}
	pthread_mutex_lock(&live_mtx);
	for (pp = &live; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == tp) {
			*pp = tp->next;
			break;
		}
	}
	pthread_mutex_unlock(&live_mtx);
	sbx_stream_close(tp->s);
	if (tp->info != NULL) {
		sbx__v1__process_info__free_unpacked(tp->info, NULL);
	}
	for (int i = 0; i < OUT_N; i++) {
		free(tp->out.buf[i]);
	}
	pthread_mutex_destroy(&tp->out.mtx);
	free(tp);
}

/* Per-test teardown: whatever a failed test left behind. */
static int
test_cleanup(void **state)
{
	(void) state;
	while (live != NULL) {
		tproc_free(live);
	}
	return 0;
}

/*
 * Follow a fresh stream (REQ->stream, or a random id when empty) and start
 * REQ's process on it, the way a client that must not miss a byte does:
 * listen first, then start. *OUT is set on success only.
 */
static sbx_err
tproc_start(struct tproc **out, Sbx__V1__ProcessStartRequest *req)
{
	struct tproc *tp = tproc_new();
	struct sbx_stream_cbs cbs = {
		.arg = &tp->out,
		.on_data = output_on_data,
		.on_exit = output_on_exit,
	};
	char *given = req->stream;
	sbx_err err;

	if (req->stream != NULL && req->stream[0] != '\0') {
		snprintf(tp->stream, sizeof(tp->stream), "%s", req->stream);
	} else {
		sbx_stream_id(tp->stream);
	}
	if ((err = sbx_stream_open(fx.c, req->sandbox_id, tp->stream, &cbs,
	                           &tp->s)) != SBX_OK) {
		tproc_free(tp);
		return err;
	}
	req->stream = tp->stream;
	err = sbx_call(fx.c, "ProcessStart", &req->base,
	               (ProtobufCMessage **) &tp->info);
	req->stream = given;
	if (err != SBX_OK) {
		tproc_free(tp);
		return err;
	}
	*out = tp;
	return SBX_OK;
}

/* Wait for the end; SBX_OK once the exit event has been delivered. */
static sbx_err
tproc_wait(struct tproc *tp, int32_t *code, int32_t *sig)
{
	return sbx_stream_wait(tp->s, WAIT_MS, code, sig);
}

/* Whether stream I of TP contains NEEDLE yet, polled up to a deadline. */
static bool
tproc_wait_for(struct tproc *tp, int i, const char *needle)
{
	long long until = sbx_test_mono_ms() + POLL_DEADLINE_MS;
	bool found = false;

	while (!found && sbx_test_mono_ms() < until) {
		pthread_mutex_lock(&tp->out.mtx);
		found = strstr(tp->out.buf[i], needle) != NULL;
		pthread_mutex_unlock(&tp->out.mtx);
		if (!found) {
			usleep(5000); /* poll interval */
		}
	}
	return found;
}

/* A start request for SB with ARGV (NULL-terminated) or COMMAND. */
static void
req_init(Sbx__V1__ProcessStartRequest *req, const char *sb,
         const char *const *argv, const char *command)
{
	sbx__v1__process_start_request__init(req);
	req->sandbox_id = (char *) sb;
	if (argv != NULL) {
		while (argv[req->n_argv] != NULL) {
			req->n_argv++;
		}
		req->argv = (char **) argv;
	}
	if (command != NULL) {
		req->command = (char *) command;
	}
}

/* ProcessStart alone, for requests that must fail: the reply's status. */
static sbx_err
start_status(Sbx__V1__ProcessStartRequest *req)
{
	ProtobufCMessage *rep;
	sbx_err err = sbx_call(fx.c, "ProcessStart", &req->base, &rep);

	if (err == SBX_OK) {
		protobuf_c_message_free_unpacked(rep, NULL);
	}
	return err;
}

/* Run to the end and check the exit; the caller reads the output and
 * frees the result. */
static struct tproc *
run_req(Sbx__V1__ProcessStartRequest *req, int32_t want_code, int32_t want_sig)
{
	struct tproc *tp = NULL;
	int32_t code = -100, sig = -100;

	CHECK_OK(tproc_start(&tp, req));
	CHECK_OK(tproc_wait(tp, &code, &sig));
	if (code != want_code || sig != want_sig) {
		fprintf(stderr, "stdout: %s\nstderr: %s\n", tp->out.buf[0],
		        tp->out.buf[1]);
	}
	CHECK_INT(code, want_code);
	CHECK_INT(sig, want_sig);
	return tp;
}

/* Run ARGV as USER in CWD (NULL: defaults) and return its stdout (heap),
 * requiring exit code WANT_CODE; stderr goes to *ERR if given. */
static char *
run_as(const char *sb, const char *user, const char *cwd,
       const char *const *argv, int32_t want_code, char **err)
{
	Sbx__V1__ProcessStartRequest req;
	struct tproc *tp;
	char *out;

	req_init(&req, sb, argv, NULL);
	req.user = (char *) (user != NULL ? user : "");
	req.cwd = (char *) (cwd != NULL ? cwd : "");
	tp = run_req(&req, want_code, 0);
	out = strdup(tp->out.buf[OUT_STDOUT]);
	if (err != NULL) {
		*err = strdup(tp->out.buf[OUT_STDERR]);
	}
	tproc_free(tp);
	return out;
}

/* Check that A and B (lengths LA, LB) are equal, naming the first
 * difference so a failure says where the stream went wrong. */
static void
check_bytes(const char *what, const char *a, size_t la, const char *b,
            size_t lb)
{
	size_t i = 0;

	while (i < la && i < lb && a[i] == b[i]) {
		i++;
	}
	if (i < la || i < lb) {
		fail_msg("%s: %zu vs %zu bytes, first difference at %zu "
		         "(got \"%.40s\", want \"%.40s\")",
		         what, la, lb, i, i < la ? a + i : "",
		         i < lb ? b + i : "");
	}
}

/* ---- the small calls ---- */

static Sbx__V1__ProcessRef
ref_stream(const char *stream)
{
	Sbx__V1__ProcessRef r = SBX__V1__PROCESS_REF__INIT;

	r.ref_case = SBX__V1__PROCESS_REF__REF_STREAM;
	r.stream = (char *) stream;
	return r;
}

static Sbx__V1__ProcessRef
ref_pid(uint32_t pid)
{
	Sbx__V1__ProcessRef r = SBX__V1__PROCESS_REF__INIT;

	r.ref_case = SBX__V1__PROCESS_REF__REF_PID;
	r.pid = pid;
	return r;
}

static Sbx__V1__ProcessRef
ref_tag(const char *tag)
{
	Sbx__V1__ProcessRef r = SBX__V1__PROCESS_REF__INIT;

	r.ref_case = SBX__V1__PROCESS_REF__REF_TAG;
	r.tag = (char *) tag;
	return r;
}

/* A call whose reply carries nothing we look at. */
static sbx_err
call_plain(const char *method, const ProtobufCMessage *req)
{
	ProtobufCMessage *rep;
	sbx_err err = sbx_call(fx.c, method, req, &rep);

	if (err == SBX_OK) {
		protobuf_c_message_free_unpacked(rep, NULL);
	}
	return err;
}

static sbx_err
p_input(const char *sb, Sbx__V1__ProcessRef ref, const void *data, size_t len)
{
	Sbx__V1__ProcessInputRequest req = SBX__V1__PROCESS_INPUT_REQUEST__INIT;

	req.sandbox_id = (char *) sb;
	req.process = &ref;
	req.data.data = (uint8_t *) data;
	req.data.len = len;
	return call_plain("ProcessInput", &req.base);
}

static sbx_err
p_input_str(const char *sb, Sbx__V1__ProcessRef ref, const char *s)
{
	return p_input(sb, ref, s, strlen(s));
}

static sbx_err
p_close_stdin(const char *sb, Sbx__V1__ProcessRef ref)
{
	Sbx__V1__ProcessCloseStdinRequest req =
	        SBX__V1__PROCESS_CLOSE_STDIN_REQUEST__INIT;

	req.sandbox_id = (char *) sb;
	req.process = &ref;
	return call_plain("ProcessCloseStdin", &req.base);
}

static sbx_err
p_signal(const char *sb, Sbx__V1__ProcessRef ref, int32_t sig)
{
	Sbx__V1__ProcessSignalRequest req = SBX__V1__PROCESS_SIGNAL_REQUEST__INIT;

	req.sandbox_id = (char *) sb;
	req.process = &ref;
	req.signal = sig;
	return call_plain("ProcessSignal", &req.base);
}

static sbx_err
p_resize(const char *sb, Sbx__V1__ProcessRef ref, uint32_t cols,
         uint32_t rows)
{
	Sbx__V1__ProcessResizeRequest req = SBX__V1__PROCESS_RESIZE_REQUEST__INIT;
	Sbx__V1__PtySize size = SBX__V1__PTY_SIZE__INIT;

	size.cols = cols;
	size.rows = rows;
	req.sandbox_id = (char *) sb;
	req.process = &ref;
	req.size = &size;
	return call_plain("ProcessResize", &req.base);
}

static Sbx__V1__ProcessListReply *
p_list(const char *sb)
{
	Sbx__V1__ProcessListRequest req = SBX__V1__PROCESS_LIST_REQUEST__INIT;
	Sbx__V1__ProcessListReply *rep = NULL;

	req.sandbox_id = (char *) sb;
	CHECK_OK(sbx_call(fx.c, "ProcessList", &req.base,
	                  (ProtobufCMessage **) &rep));
	return rep;
}

static const Sbx__V1__ProcessInfo *
list_find(const Sbx__V1__ProcessListReply *rep, const char *stream)
{
	for (size_t i = 0; i < rep->n_processes; i++) {
		if (strcmp(rep->processes[i]->stream, stream) == 0) {
			return rep->processes[i];
		}
	}
	return NULL;
}

static void
check_msg(const char *needle)
{
	if (strstr(sbx_last_error(), needle) == NULL) {
		fail_msg("message \"%s\" lacks \"%s\"", sbx_last_error(),
		         needle);
	}
}

/* sbxd still answers, and both sandboxes still run processes. */
static void
check_healthy(void)
{
	Sbx__V1__HealthRequest hr = SBX__V1__HEALTH_REQUEST__INIT;
	const char *const argv[] = {"echo", "still", "fine", NULL};
	const char *sbs[] = {sb_a, sb_b};
	char *out;

	CHECK_OK(call_plain("Health", &hr.base));
	for (int i = 0; i < 2; i++) {
		out = run_as(sbs[i], NULL, NULL, argv, 0, NULL);
		CHECK_STR(out, "still fine\n");
		free(out);
	}
}

/* ---- 1. exec, exit codes, signals ---- */

static void
test_exec_argv_and_command(void **state)
{
	const char *const argv[] = {"printf", "%s|", "a b", "", "c", NULL};
	Sbx__V1__ProcessStartRequest req;
	struct tproc *tp;

	(void) state;
	/* argv reaches the program verbatim: no shell splits "a b". */
	req_init(&req, sb_a, argv, NULL);
	tp = run_req(&req, 0, 0);
	CHECK_STR(tp->out.buf[OUT_STDOUT], "a b||c|");
	CHECK_STR(tp->out.buf[OUT_STDERR], "");
	CHECK_STR(tp->out.status, "exited");
	CHECK_INT(tp->info->n_argv, 5);
	CHECK_STR(tp->info->argv[2], "a b");
	CHECK_STR(tp->info->command, "");
	CHECK(tp->info->pid > 1);
	CHECK_STR(tp->info->stream, tp->stream);
	tproc_free(tp);

	/* A command runs as /bin/bash -l -c: a login shell, so $0 is bash
	 * and shell syntax works. */
	req_init(&req, sb_a, NULL,
	         "echo \"$0\"; shopt -q login_shell && echo login; "
	         "x=$((6*7)); echo \"$x\" | tr 4 X >&2");
	tp = run_req(&req, 0, 0);
	CHECK_STR(tp->out.buf[OUT_STDOUT], "/bin/bash\nlogin\n");
	CHECK_STR(tp->out.buf[OUT_STDERR], "X2\n");
	CHECK_INT(tp->info->n_argv, 4);
	CHECK_STR(tp->info->argv[0], "/bin/bash");
	CHECK_STR(tp->info->argv[1], "-l");
	CHECK_STR(tp->info->argv[2], "-c");
	CHECK_STR(tp->info->argv[3], req.command);
	CHECK_STR(tp->info->command, req.command);
	tproc_free(tp);
}

static void
test_exit_codes(void **state)
{
	static const int codes[] = {0, 3, 255};
	const char *const argv3[] = {"sh", "-c", "exit 3", NULL};
	const char *const argv_false[] = {"false", NULL};
	char cmd[32], *out = NULL;
	int code = -1;

	(void) state;
	for (size_t i = 0; i < sizeof(codes) / sizeof(*codes); i++) {
		snprintf(cmd, sizeof(cmd), "echo x; exit %d", codes[i]);
		CHECK_OK(sbxd_run(&fx, sb_a, NULL, cmd, &out, NULL, &code));
		CHECK_INT(code, codes[i]);
		CHECK_STR(out, "x\n");
		free(out);
	}
	CHECK_OK(sbxd_run(&fx, sb_a, argv3, NULL, NULL, NULL, &code));
	CHECK_INT(code, 3);
	CHECK_OK(sbxd_run(&fx, sb_a, argv_false, NULL, NULL, NULL, &code));
	CHECK_INT(code, 1);
}

static void
test_killed_by_signal(void **state)
{
	Sbx__V1__ProcessStartRequest req;
	struct tproc *tp;
	char *out = NULL;
	int code = -1;

	(void) state;
	/* The exit event says "signaled", exit_code -1 and the signal. */
	req_init(&req, sb_a, NULL, "echo before; kill -9 $$; echo after");
	tp = run_req(&req, -1, 9);
	CHECK_STR(tp->out.buf[OUT_STDOUT], "before\n");
	CHECK_STR(tp->out.status, "signaled");
	CHECK_INT(tp->out.exit_code, -1);
	CHECK_INT(tp->out.signal, 9);
	tproc_free(tp);
	/* The fixture's sbxd_run turns that into the shell's 128 + sig. */
	CHECK_OK(sbxd_run(&fx, sb_a, NULL, "kill -SEGV $$", &out, NULL,
	                  &code));
	CHECK_INT(code, 128 + SIGSEGV);
	CHECK_STR(out, "");
	free(out);
}

/* ---- 2. output order and completeness ---- */

/* "line 00001\n" ... up to N, as `seq -f 'line %05g' 1 N` prints it. */
static char *
numbered_lines(const char *prefix, int n, size_t *len)
{
	size_t cap = (size_t) n * (strlen(prefix) + 8) + 1, off = 0;
	char *s = malloc(cap);

	for (int i = 1; i <= n; i++) {
		off += (size_t) snprintf(s + off, cap - off, "%s%05d\n", prefix,
		                         i);
	}
	*len = off;
	return s;
}

static void
test_output_20000_lines(void **state)
{
	Sbx__V1__ProcessStartRequest req;
	struct tproc *tp;
	size_t want_len;
	char *want = numbered_lines("line ", 20000, &want_len);

	(void) state;
	req_init(&req, sb_a, NULL, "seq -f 'line %05g' 1 20000");
	tp = run_req(&req, 0, 0);
	check_bytes("stdout", tp->out.buf[OUT_STDOUT], tp->out.len[OUT_STDOUT],
	            want, want_len);
	CHECK_INT(tp->out.len[OUT_STDERR], 0);
	/* It really travelled as many events, not one lucky chunk. */
	CHECK(tp->out.n_chunks[OUT_STDOUT] > 1);
	tproc_free(tp);
	free(want);
}

static void
test_output_mixed_streams(void **state)
{
	Sbx__V1__ProcessStartRequest req;
	struct tproc *tp;
	size_t out_len, err_len;
	char *want_out = numbered_lines("out", 5000, &out_len);
	char *want_err = numbered_lines("err", 5000, &err_len);

	(void) state;
	req_init(&req, sb_a, NULL,
	         "for i in $(seq -f %05g 1 5000); do echo out$i; "
	         "echo err$i >&2; done");
	tp = run_req(&req, 0, 0);
	check_bytes("stdout", tp->out.buf[OUT_STDOUT], tp->out.len[OUT_STDOUT],
	            want_out, out_len);
	check_bytes("stderr", tp->out.buf[OUT_STDERR], tp->out.len[OUT_STDERR],
	            want_err, err_len);
	tproc_free(tp);
	free(want_out);
	free(want_err);
}

static void
test_output_binary(void **state)
{
	const char *const argv[] = {
		"python3", "-c",
		"import sys\n"
		"sys.stdout.buffer.write(bytes(range(256)) * 1024)\n"
		"sys.stdout.flush()\n"
		"sys.stderr.buffer.write(bytes(range(255, -1, -1)) * 3)\n",
		NULL};
	Sbx__V1__ProcessStartRequest req;
	char want_out[256 * 1024], want_err[256 * 3];
	struct tproc *tp;

	(void) state;
	for (size_t i = 0; i < sizeof(want_out); i++) {
		want_out[i] = (char) (i % 256);
	}
	for (size_t i = 0; i < sizeof(want_err); i++) {
		want_err[i] = (char) (255 - i % 256);
	}
	req_init(&req, sb_a, argv, NULL);
	tp = run_req(&req, 0, 0);
	check_bytes("stdout", tp->out.buf[OUT_STDOUT], tp->out.len[OUT_STDOUT],
	            want_out, sizeof(want_out));
	check_bytes("stderr", tp->out.buf[OUT_STDERR], tp->out.len[OUT_STDERR],
	            want_err, sizeof(want_err));
	tproc_free(tp);
}

/* ---- 3. stdin ---- */

static void
test_stdin_cat(void **state)
{
	const char *const argv[] = {"cat", NULL};
	Sbx__V1__ProcessStartRequest req;
	struct tproc *tp;
	char big[100000], *want;
	size_t want_len = 0;
	int32_t code = -1, sig = -1;

	(void) state;
	/* Every byte value, in a chunk bigger than a pipe holds. */
	for (size_t i = 0; i < sizeof(big); i++) {
		big[i] = (char) ((i * 7) % 256);
	}
	want = malloc(sizeof(big) + 64);
	req_init(&req, sb_a, argv, NULL);
	req.stdin = true;
	CHECK_OK(tproc_start(&tp, &req));
	CHECK_OK(p_input_str(sb_a, ref_stream(tp->stream), "hello "));
	CHECK_OK(p_input_str(sb_a, ref_stream(tp->stream), "world\n"));
	CHECK_OK(p_input(sb_a, ref_stream(tp->stream), big, sizeof(big)));
	CHECK_OK(p_input(sb_a, ref_stream(tp->stream), "", 0));
	CHECK_OK(p_input_str(sb_a, ref_stream(tp->stream), "\nthe end"));
	CHECK_OK(p_close_stdin(sb_a, ref_stream(tp->stream)));
	CHECK_OK(tproc_wait(tp, &code, &sig));
	CHECK_INT(code, 0);
	CHECK_INT(sig, 0);
	memcpy(want, "hello world\n", 12);
	want_len = 12;
	memcpy(want + want_len, big, sizeof(big));
	want_len += sizeof(big);
	memcpy(want + want_len, "\nthe end", 8);
	want_len += 8;
	check_bytes("stdout", tp->out.buf[OUT_STDOUT], tp->out.len[OUT_STDOUT],
	            want, want_len);
	/* Input after the end is refused, clearly. */
	CHECK_ERR(p_input_str(sb_a, ref_stream(tp->stream), "late"),
	          SBX_ESTATE);
	check_msg("ended");
	CHECK_ERR(p_close_stdin(sb_a, ref_stream(tp->stream)), SBX_ESTATE);
	tproc_free(tp);
	free(want);
}

static void
test_stdin_errors(void **state)
{
	const char *const argv[] = {"sleep", "1000", NULL};
	Sbx__V1__ProcessStartRequest req;
	Sbx__V1__ProcessInputRequest bare = SBX__V1__PROCESS_INPUT_REQUEST__INIT;
	struct tproc *tp;
	int32_t sig = 0;

	(void) state;
	/* Started without stdin: input has nowhere to go. */
	req_init(&req, sb_a, argv, NULL);
	CHECK_OK(tproc_start(&tp, &req));
	CHECK_ERR(p_input_str(sb_a, ref_stream(tp->stream), "x"), SBX_ESTATE);
	check_msg("stdin");
	CHECK_ERR(p_close_stdin(sb_a, ref_stream(tp->stream)), SBX_ESTATE);
	/* Unknown processes, by every kind of reference. */
	CHECK_ERR(p_input_str(sb_a, ref_stream("no-such-stream"), "x"),
	          SBX_ENOTFOUND);
	check_msg("no such process");
	CHECK_ERR(p_input_str(sb_a, ref_pid(999999), "x"), SBX_ENOTFOUND);
	CHECK_ERR(p_input_str(sb_a, ref_tag("no-such-tag"), "x"),
	          SBX_ENOTFOUND);
	CHECK_ERR(p_input_str("aaaaaaaaaaaaaaaaaaaa", ref_stream(tp->stream),
	                      "x"),
	          SBX_ENOTFOUND);
	/* A process that lives in sb_a is unknown in sb_b. */
	CHECK_ERR(p_input_str(sb_b, ref_stream(tp->stream), "x"),
	          SBX_ENOTFOUND);
	/* No reference at all. */
	bare.sandbox_id = sb_a;
	CHECK_ERR(call_plain("ProcessInput", &bare.base), SBX_EINVAL);
	check_msg("process");
	/* The process itself was not disturbed by any of that. */
	CHECK_OK(p_signal(sb_a, ref_stream(tp->stream), SIGKILL));
	CHECK_OK(tproc_wait(tp, NULL, &sig));
	CHECK_INT(sig, SIGKILL);
	tproc_free(tp);
	check_healthy();
}

/* A process that never reads: input queues up to a cap, then is refused;
 * stdin closes once, and input after the close is refused. */
static void
test_stdin_limits(void **state)
{
	const char *const argv[] = {"sleep", "1000", NULL};
	Sbx__V1__ProcessStartRequest req;
	struct tproc *tp;
	size_t chunk = 256 * 1024, sent = 0;
	char *buf = calloc(1, chunk);
	sbx_err err = SBX_OK;
	int32_t sig = 0;

	(void) state;
	req_init(&req, sb_a, argv, NULL);
	req.stdin = true;
	CHECK_OK(tproc_start(&tp, &req));
	while (sent <= 8 * chunk &&
	       (err = p_input(sb_a, ref_stream(tp->stream), buf, chunk)) ==
	               SBX_OK) {
		sent += chunk;
	}
	CHECK_INT(err, SBX_ELIMIT);
	check_msg("stdin");
	/* A pipe's worth plus the 1 MiB queue: more than 1 MiB, not 2. */
	CHECK(sent >= 1024 * 1024);
	CHECK(sent < 2 * 1024 * 1024);
	CHECK_OK(p_close_stdin(sb_a, ref_stream(tp->stream)));
	CHECK_ERR(p_close_stdin(sb_a, ref_stream(tp->stream)), SBX_ESTATE);
	check_msg("closed");
	CHECK_ERR(p_input_str(sb_a, ref_stream(tp->stream), "x"), SBX_ESTATE);
	check_msg("closed");
	CHECK_OK(p_signal(sb_a, ref_stream(tp->stream), SIGKILL));
	CHECK_OK(tproc_wait(tp, NULL, &sig));
	CHECK_INT(sig, SIGKILL);
	tproc_free(tp);
	free(buf);
}

/* ---- 4. signals ---- */

static void
test_signal_term(void **state)
{
	const char *const argv[] = {"sleep", "1000", NULL};
	Sbx__V1__ProcessStartRequest req;
	struct tproc *tp;
	int32_t code = 0, sig = 0;

	(void) state;
	req_init(&req, sb_a, argv, NULL);
	CHECK_OK(tproc_start(&tp, &req));
	CHECK_OK(p_signal(sb_a, ref_stream(tp->stream), SIGTERM));
	CHECK_OK(tproc_wait(tp, &code, &sig));
	CHECK_INT(code, -1);
	CHECK_INT(sig, SIGTERM);
	CHECK_STR(tp->out.status, "signaled");
	/* It has ended: signalling it again is a state error. */
	CHECK_ERR(p_signal(sb_a, ref_stream(tp->stream), SIGTERM), SBX_ESTATE);
	check_msg("ended");
	tproc_free(tp);
}

/* A caught signal is not a death: the handler decides the exit code. */
static void
test_signal_caught(void **state)
{
	Sbx__V1__ProcessStartRequest req;
	struct tproc *tp;
	int32_t code = -1, sig = -1;

	(void) state;
	req_init(&req, sb_a, NULL,
	         "trap 'echo got-usr1; exit 7' USR1; echo ready; "
	         "while :; do sleep 0.05; done");
	CHECK_OK(tproc_start(&tp, &req));
	CHECK(tproc_wait_for(tp, OUT_STDOUT, "ready\n"));
	CHECK_OK(p_signal(sb_a, ref_stream(tp->stream), SIGUSR1));
	CHECK_OK(tproc_wait(tp, &code, &sig));
	CHECK_INT(code, 7);
	CHECK_INT(sig, 0);
	CHECK_STR(tp->out.buf[OUT_STDOUT], "ready\ngot-usr1\n");
	tproc_free(tp);
}

/* The args of every process in SB's jail, one per line. */
static char *
jail_ps(const char *sb)
{
	const char *const argv[] = {"ps", "-eo", "args=", NULL};

	return run_as(sb, NULL, NULL, argv, 0, NULL);
}

static void
test_signal_group_leaves_nothing(void **state)
{
	Sbx__V1__ProcessStartRequest req;
	Sbx__V1__ProcessListReply *rep;
	const Sbx__V1__ProcessInfo *pi;
	struct tproc *tp;
	long long until;
	char *ps;
	int32_t code = 0, sig = 0;
	bool gone = false;

	(void) state;
	req_init(&req, sb_a, NULL,
	         "sleep 4242 & sleep 4343 & (sleep 4444; true) & "
	         "echo started; wait");
	CHECK_OK(tproc_start(&tp, &req));
	CHECK(tproc_wait_for(tp, OUT_STDOUT, "started\n"));
	/* The children are there, so the check below can see them. */
	ps = jail_ps(sb_a);
	CHECK(strstr(ps, "sleep 4242") != NULL);
	CHECK(strstr(ps, "sleep 4343") != NULL);
	CHECK(strstr(ps, "sleep 4444") != NULL);
	free(ps);
	/* SIGKILL goes to the whole process group. */
	CHECK_OK(p_signal(sb_a, ref_stream(tp->stream), SIGKILL));
	CHECK_OK(tproc_wait(tp, &code, &sig));
	CHECK_INT(code, -1);
	CHECK_INT(sig, SIGKILL);
	until = sbx_test_mono_ms() + POLL_DEADLINE_MS;
	while (!gone && sbx_test_mono_ms() < until) {
		ps = jail_ps(sb_a);
		gone = strstr(ps, "4242") == NULL &&
		       strstr(ps, "4343") == NULL &&
		       strstr(ps, "4444") == NULL;
		if (!gone) {
			fprintf(stderr, "still there:\n%s", ps);
			usleep(50000); /* poll interval */
		}
		free(ps);
	}
	CHECK(gone);
	rep = p_list(sb_a);
	CHECK((pi = list_find(rep, tp->stream)) != NULL);
	CHECK(!pi->running);
	CHECK(pi->exit != NULL);
	CHECK_INT(pi->exit->signal, SIGKILL);
	CHECK_INT(pi->exit->exit_code, -1);
	CHECK_STR(pi->exit->status, "signaled");
	sbx__v1__process_list_reply__free_unpacked(rep, NULL);
	tproc_free(tp);
}

static void
test_signal_invalid(void **state)
{
	static const int32_t bad[] = {0, -1, -9, 65, 1000, 0x7fffffff};
	const char *const argv[] = {"sleep", "1000", NULL};
	Sbx__V1__ProcessStartRequest req;
	struct tproc *tp;
	int32_t sig = 0;

	(void) state;
	req_init(&req, sb_a, argv, NULL);
	CHECK_OK(tproc_start(&tp, &req));
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		CHECK_ERR(p_signal(sb_a, ref_stream(tp->stream), bad[i]),
		          SBX_EINVAL);
		check_msg("signal");
	}
	/* Still running after all that; the highest real-time signal is a
	 * Linux signal like any other, and its default action kills. */
	CHECK_OK(p_signal(sb_a, ref_stream(tp->stream), SIGRTMAX));
	CHECK_OK(tproc_wait(tp, NULL, &sig));
	CHECK_INT(sig, SIGRTMAX);
	tproc_free(tp);
	check_healthy();
}

/* ---- 5. pty ---- */

static Sbx__V1__PtySize
pty_size(uint32_t cols, uint32_t rows)
{
	Sbx__V1__PtySize s = SBX__V1__PTY_SIZE__INIT;

	s.cols = cols;
	s.rows = rows;
	return s;
}

static void
test_pty_size(void **state)
{
	const char *const argv[] = {"sh", "-c",
	                            "stty size; test -t 0 && test -t 1 && "
	                            "echo tty $TERM",
	                            NULL};
	Sbx__V1__ProcessStartRequest req;
	Sbx__V1__PtySize size = pty_size(100, 30);
	struct tproc *tp;

	(void) state;
	req_init(&req, sb_a, argv, NULL);
	req.pty = &size;
	tp = run_req(&req, 0, 0);
	/* The terminal turns "\n" into "\r\n"; everything is pty output. */
	CHECK_STR(tp->out.buf[OUT_PTY], "30 100\r\ntty xterm-256color\r\n");
	CHECK_INT(tp->out.len[OUT_STDOUT], 0);
	CHECK_INT(tp->out.len[OUT_STDERR], 0);
	CHECK(tp->info->pty);
	tproc_free(tp);
}

static void
test_pty_resize(void **state)
{
	const char *const argv[] = {"bash", "-c",
	                            "read -r line; echo \"got=$line\"; "
	                            "stty size",
	                            NULL};
	Sbx__V1__ProcessStartRequest req;
	Sbx__V1__PtySize size = pty_size(100, 30);
	struct tproc *tp;
	int32_t code = -1;

	(void) state;
	req_init(&req, sb_a, argv, NULL);
	req.pty = &size;
	CHECK_OK(tproc_start(&tp, &req));
	CHECK_OK(p_resize(sb_a, ref_stream(tp->stream), 120, 40));
	CHECK_ERR(p_resize(sb_a, ref_stream(tp->stream), 0, 40), SBX_EINVAL);
	CHECK_ERR(p_resize(sb_a, ref_stream(tp->stream), 120, 100000),
	          SBX_EINVAL);
	/* The terminal echoes the line, then the shell reads it. */
	CHECK_OK(p_input_str(sb_a, ref_stream(tp->stream), "go\n"));
	CHECK_OK(tproc_wait(tp, &code, NULL));
	CHECK_INT(code, 0);
	CHECK_STR(tp->out.buf[OUT_PTY], "go\r\ngot=go\r\n40 120\r\n");
	/* Ended: no more resizing. */
	CHECK_ERR(p_resize(sb_a, ref_stream(tp->stream), 80, 24), SBX_ESTATE);
	tproc_free(tp);
}

static void
test_pty_eof_and_bad_size(void **state)
{
	const char *const cat[] = {"cat", NULL};
	const char *const sleep[] = {"sleep", "1000", NULL};
	Sbx__V1__ProcessStartRequest req;
	Sbx__V1__PtySize size = pty_size(80, 24);
	struct tproc *tp;
	int32_t code = -1, sig = 0;

	(void) state;
	/* Closing stdin of a pty sends end-of-file through the terminal. */
	req_init(&req, sb_a, cat, NULL);
	req.pty = &size;
	CHECK_OK(tproc_start(&tp, &req));
	CHECK_OK(p_input_str(sb_a, ref_stream(tp->stream), "abc\n"));
	CHECK_OK(p_close_stdin(sb_a, ref_stream(tp->stream)));
	CHECK_OK(tproc_wait(tp, &code, NULL));
	CHECK_INT(code, 0);
	/* Once echoed by the terminal, once written by cat. */
	CHECK_STR(tp->out.buf[OUT_PTY], "abc\r\nabc\r\n");
	tproc_free(tp);
	/* Sizes out of range are refused at start. */
	size = pty_size(0, 24);
	CHECK_ERR(start_status(&req), SBX_EINVAL);
	check_msg("pty");
	size = pty_size(80, 5000);
	CHECK_ERR(start_status(&req), SBX_EINVAL);
	/* A process without a pty cannot be resized. */
	req_init(&req, sb_a, sleep, NULL);
	CHECK_OK(tproc_start(&tp, &req));
	CHECK_ERR(p_resize(sb_a, ref_stream(tp->stream), 100, 30), SBX_ESTATE);
	check_msg("pty");
	CHECK_OK(p_signal(sb_a, ref_stream(tp->stream), SIGKILL));
	CHECK_OK(tproc_wait(tp, NULL, &sig));
	CHECK_INT(sig, SIGKILL);
	tproc_free(tp);
}

/* ---- 6. env, users, cwd ---- */

static void
test_env_layers(void **state)
{
	const char *const argv[] = {
		"sh", "-c",
		"printf '%s|%s|%s|%s|%s|%s' \"$LANG\" \"$A\" \"$B\" \"$C\" "
		"\"$SHELL\" \"$SBX_SANDBOX_ID\"",
		NULL};
	Sbx__V1__CreateRequest cr = SBX__V1__CREATE_REQUEST__INIT;
	Sbx__V1__CreateRequest__EnvEntry ce[3], *cep[3];
	Sbx__V1__ProcessStartRequest__EnvEntry pe[2], *pep[2];
	Sbx__V1__ProcessStartRequest req;
	static const char *const ckv[3][2] = {
		{"LANG", "sbx-lang"}, {"A", "sa"}, {"B", "sb"}};
	static const char *const pkv[2][2] = {{"B", "pb"}, {"C", "pc"}};
	struct tproc *tp;
	char want[128], *sb;

	(void) state;
	for (int i = 0; i < 3; i++) {
		sbx__v1__create_request__env_entry__init(&ce[i]);
		ce[i].key = (char *) ckv[i][0];
		ce[i].value = (char *) ckv[i][1];
		cep[i] = &ce[i];
	}
	for (int i = 0; i < 2; i++) {
		sbx__v1__process_start_request__env_entry__init(&pe[i]);
		pe[i].key = (char *) pkv[i][0];
		pe[i].value = (char *) pkv[i][1];
		pep[i] = &pe[i];
	}
	cr.env = cep;
	cr.n_env = 3;
	CHECK((sb = sbxd_create(&fx, &cr)) != NULL);
	/* Base < sandbox < process. */
	req_init(&req, sb, argv, NULL);
	req.env = pep;
	req.n_env = 2;
	tp = run_req(&req, 0, 0);
	snprintf(want, sizeof(want), "sbx-lang|sa|pb|pc|/bin/bash|%s", sb);
	CHECK_STR(tp->out.buf[OUT_STDOUT], want);
	/* The listing shows only the env given at start. */
	CHECK_INT(tp->info->n_env, 2);
	tproc_free(tp);
	/* A process may override a base variable too. */
	pe[0].key = "SHELL";
	pe[0].value = "/bin/zsh";
	pe[1].key = "LANG";
	pe[1].value = "C";
	tp = run_req(&req, 0, 0);
	snprintf(want, sizeof(want), "C|sa|sb||/bin/zsh|%s", sb);
	CHECK_STR(tp->out.buf[OUT_STDOUT], want);
	tproc_free(tp);
	/* Another sandbox has none of it. */
	req.sandbox_id = sb_a;
	req.n_env = 0;
	tp = run_req(&req, 0, 0);
	snprintf(want, sizeof(want), "C.UTF-8||||/bin/bash|%s", sb_a);
	CHECK_STR(tp->out.buf[OUT_STDOUT], want);
	tproc_free(tp);
	/* A bad name is refused. */
	req.sandbox_id = sb;
	pe[0].key = "A=B";
	req.n_env = 1;
	CHECK_ERR(start_status(&req), SBX_EINVAL);
	check_msg("env");
	pe[0].key = "";
	CHECK_ERR(start_status(&req), SBX_EINVAL);
	free(sb);
}

static void
test_users(void **state)
{
	const char *const whoami[] = {
		"sh", "-c", "echo $HOME $USER $LOGNAME; id -u; id -g; pwd",
		NULL};
	const char *const write_root[] = {
		"sh", "-c", "echo secret > /root/f && cat /root/f", NULL};
	const char *const read_root[] = {"cat", "/root/f", NULL};
	const char *const ls_root[] = {"ls", "/root", NULL};
	Sbx__V1__ProcessStartRequest req;
	char *out, *err;

	(void) state;
	out = run_as(sb_a, NULL, NULL, whoami, 0, NULL);
	CHECK_STR(out, "/home/user user user\n1000\n1000\n/home/user\n");
	free(out);
	out = run_as(sb_a, "user", NULL, whoami, 0, NULL);
	CHECK_STR(out, "/home/user user user\n1000\n1000\n/home/user\n");
	free(out);
	out = run_as(sb_a, "root", NULL, whoami, 0, NULL);
	CHECK_STR(out, "/root root root\n0\n0\n/root\n");
	free(out);
	/* root writes /root; user can read neither the file nor the dir. */
	out = run_as(sb_a, "root", NULL, write_root, 0, NULL);
	CHECK_STR(out, "secret\n");
	free(out);
	out = run_as(sb_a, NULL, NULL, read_root, 1, &err);
	CHECK_STR(out, "");
	CHECK(strstr(err, "Permission denied") != NULL);
	free(out);
	free(err);
	out = run_as(sb_a, NULL, NULL, ls_root, 2, &err);
	CHECK(strstr(err, "Permission denied") != NULL);
	free(out);
	free(err);
	/* Unknown users are refused before anything runs. */
	req_init(&req, sb_a, whoami, NULL);
	req.user = "nobody";
	CHECK_ERR(start_status(&req), SBX_EINVAL);
	check_msg("unknown user");
	req.user = "0";
	CHECK_ERR(start_status(&req), SBX_EINVAL);
}

static void
test_cwd(void **state)
{
	const char *const mk[] = {"mkdir", "-p", "sub/dir", NULL};
	const char *const mk_root[] = {"mkdir", "-p", "rsub", NULL};
	const char *const pwd[] = {"pwd", NULL};
	Sbx__V1__ProcessStartRequest req;
	char *out;

	(void) state;
	free(run_as(sb_a, NULL, NULL, mk, 0, NULL));
	free(run_as(sb_a, "root", NULL, mk_root, 0, NULL));
	/* Relative to the user's home, "~" too; absolute as given. */
	out = run_as(sb_a, NULL, "sub/dir", pwd, 0, NULL);
	CHECK_STR(out, "/home/user/sub/dir\n");
	free(out);
	out = run_as(sb_a, NULL, "~/sub", pwd, 0, NULL);
	CHECK_STR(out, "/home/user/sub\n");
	free(out);
	out = run_as(sb_a, NULL, "/tmp", pwd, 0, NULL);
	CHECK_STR(out, "/tmp\n");
	free(out);
	out = run_as(sb_a, "root", "rsub", pwd, 0, NULL);
	CHECK_STR(out, "/root/rsub\n");
	free(out);
	/* A missing directory: NOT_FOUND, naming the failed step. */
	req_init(&req, sb_a, pwd, NULL);
	req.cwd = "no/such/dir";
	CHECK_ERR(start_status(&req), SBX_ENOTFOUND);
	check_msg("chdir");
	check_msg("/home/user/no/such/dir");
	/* user may not enter /root. */
	req.cwd = "/root";
	CHECK_ERR(start_status(&req), SBX_EPERM);
	check_msg("chdir");
	check_healthy();
}

/* ---- 7. listing, lookup, bad requests ---- */

static void
test_list_and_lookup(void **state)
{
	const char *const sleep[] = {"sleep", "1000", NULL};
	Sbx__V1__ProcessStartRequest__EnvEntry e =
	        SBX__V1__PROCESS_START_REQUEST__ENV_ENTRY__INIT;
	Sbx__V1__ProcessStartRequest__EnvEntry *ep = &e;
	Sbx__V1__ProcessStartRequest req;
	Sbx__V1__ProcessListReply *rep;
	const Sbx__V1__ProcessInfo *pi;
	struct tproc *a, *b;
	int32_t sig = 0;

	(void) state;
	req_init(&req, sb_b, sleep, NULL);
	req.tag = "lst-a";
	e.key = "X";
	e.value = "1";
	req.env = &ep;
	req.n_env = 1;
	CHECK_OK(tproc_start(&a, &req));
	req_init(&req, sb_b, NULL, "sleep 1001");
	req.tag = "lst-b";
	req.user = "root";
	req.cwd = "/tmp";
	CHECK_OK(tproc_start(&b, &req));

	rep = p_list(sb_b);
	CHECK((pi = list_find(rep, a->stream)) != NULL);
	CHECK(pi->running);
	CHECK(pi->exit == NULL);
	CHECK_INT(pi->pid, a->info->pid);
	CHECK_STR(pi->tag, "lst-a");
	CHECK_INT(pi->n_argv, 2);
	CHECK_STR(pi->argv[0], "sleep");
	CHECK_STR(pi->argv[1], "1000");
	CHECK_STR(pi->command, "");
	CHECK_STR(pi->user, "user");
	CHECK_STR(pi->cwd, "/home/user");
	CHECK(!pi->pty);
	CHECK_INT(pi->n_env, 1);
	CHECK_STR(pi->env[0]->key, "X");
	CHECK_STR(pi->env[0]->value, "1");
	CHECK((pi = list_find(rep, b->stream)) != NULL);
	CHECK(pi->running);
	CHECK_INT(pi->pid, b->info->pid);
	CHECK(pi->pid != a->info->pid);
	CHECK_STR(pi->tag, "lst-b");
	CHECK_STR(pi->command, "sleep 1001");
	CHECK_INT(pi->n_argv, 4);
	CHECK_STR(pi->argv[3], "sleep 1001");
	CHECK_STR(pi->user, "root");
	CHECK_STR(pi->cwd, "/tmp");
	/* sb_b's processes are not sb_a's. */
	sbx__v1__process_list_reply__free_unpacked(rep, NULL);
	rep = p_list(sb_a);
	CHECK(list_find(rep, a->stream) == NULL);
	sbx__v1__process_list_reply__free_unpacked(rep, NULL);

	/* Signals by tag and by pid reach the right process. */
	CHECK_OK(p_signal(sb_b, ref_tag("lst-a"), SIGTERM));
	CHECK_OK(tproc_wait(a, NULL, &sig));
	CHECK_INT(sig, SIGTERM);
	CHECK_ERR(sbx_stream_wait(b->s, 1, NULL, NULL), SBX_ETIMEDOUT);
	CHECK_OK(p_signal(sb_b, ref_pid(b->info->pid), SIGINT));
	CHECK_OK(tproc_wait(b, NULL, &sig));
	CHECK_INT(sig, SIGINT);

	rep = p_list(sb_b);
	CHECK((pi = list_find(rep, a->stream)) != NULL);
	CHECK(!pi->running);
	CHECK_INT(pi->exit->signal, SIGTERM);
	CHECK((pi = list_find(rep, b->stream)) != NULL);
	CHECK(!pi->running);
	CHECK_INT(pi->exit->signal, SIGINT);
	sbx__v1__process_list_reply__free_unpacked(rep, NULL);
	tproc_free(a);
	tproc_free(b);
}

static void
test_input_by_tag_and_pid(void **state)
{
	const char *const cat[] = {"cat", NULL};
	Sbx__V1__ProcessStartRequest req;
	struct tproc *tp;
	int32_t code = -1;

	(void) state;
	req_init(&req, sb_a, cat, NULL);
	req.stdin = true;
	req.tag = "cat-by-ref";
	CHECK_OK(tproc_start(&tp, &req));
	CHECK_OK(p_input_str(sb_a, ref_tag("cat-by-ref"), "by tag\n"));
	CHECK_OK(p_input_str(sb_a, ref_pid(tp->info->pid), "by pid\n"));
	CHECK_OK(p_input_str(sb_a, ref_stream(tp->stream), "by stream\n"));
	CHECK_OK(p_close_stdin(sb_a, ref_pid(tp->info->pid)));
	CHECK_OK(tproc_wait(tp, &code, NULL));
	CHECK_INT(code, 0);
	CHECK_STR(tp->out.buf[OUT_STDOUT], "by tag\nby pid\nby stream\n");
	tproc_free(tp);
}

static void
test_stream_ids(void **state)
{
	static const char *const bad[] = {
		"has space", "a/b", "../x", "tab\t", "caf\xc3\xa9", "a\nb",
		"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
	};
	const char *const sleep[] = {"sleep", "1000", NULL};
	const char *const echo[] = {"echo", "dup", NULL};
	Sbx__V1__ProcessStartRequest req;
	struct tproc *tp, *done;
	int32_t sig = 0;

	(void) state;
	/* A client-chosen id: 64 characters of [A-Za-z0-9._-] are fine. */
	req_init(&req, sb_a, sleep, NULL);
	req.stream = "dup-1.x_Y";
	CHECK_OK(tproc_start(&tp, &req));
	CHECK_STR(tp->info->stream, "dup-1.x_Y");
	CHECK_ERR(start_status(&req), SBX_EEXIST);
	check_msg("dup-1.x_Y");
	/* An ended process keeps its id while its output is kept. */
	req_init(&req, sb_a, echo, NULL);
	req.stream = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
	done = run_req(&req, 0, 0);
	CHECK_STR(done->out.buf[OUT_STDOUT], "dup\n");
	CHECK_ERR(start_status(&req), SBX_EEXIST);
	tproc_free(done);
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		req.stream = (char *) bad[i];
		CHECK_ERR(start_status(&req), SBX_EINVAL);
		check_msg("stream");
	}
	/* The same id in another sandbox is another stream. */
	req_init(&req, sb_b, echo, NULL);
	req.stream = "dup-1.x_Y";
	done = run_req(&req, 0, 0);
	CHECK_STR(done->out.buf[OUT_STDOUT], "dup\n");
	tproc_free(done);
	CHECK_OK(p_signal(sb_a, ref_stream(tp->stream), SIGKILL));
	CHECK_OK(tproc_wait(tp, NULL, &sig));
	CHECK_INT(sig, SIGKILL);
	CHECK_INT(tp->out.len[OUT_STDOUT], 0);
	tproc_free(tp);
	check_healthy();
}

static void
test_start_bad_requests(void **state)
{
	const char *const argv[] = {"echo", "x", NULL};
	const char *const empty0[] = {"", "x", NULL};
	const char *const missing[] = {"no-such-binary-42", NULL};
	const char *const missing_abs[] = {"/usr/bin/no-such-binary-43", NULL};
	const char *const not_exec[] = {"/etc/passwd", NULL};
	Sbx__V1__ProcessStartRequest req;
	char long_tag[200];

	(void) state;
	req_init(&req, sb_a, argv, "echo x");
	CHECK_ERR(start_status(&req), SBX_EINVAL);
	check_msg("either argv or command");
	req_init(&req, sb_a, NULL, NULL);
	CHECK_ERR(start_status(&req), SBX_EINVAL);
	check_msg("either argv or command");
	req_init(&req, sb_a, empty0, NULL);
	CHECK_ERR(start_status(&req), SBX_EINVAL);
	check_msg("argv[0]");
	req_init(&req, sb_a, missing, NULL);
	CHECK_ERR(start_status(&req), SBX_ENOTFOUND);
	check_msg("no-such-binary-42");
	req_init(&req, sb_a, missing_abs, NULL);
	CHECK_ERR(start_status(&req), SBX_ENOTFOUND);
	check_msg("/usr/bin/no-such-binary-43");
	req_init(&req, sb_a, not_exec, NULL);
	CHECK_ERR(start_status(&req), SBX_EPERM);
	check_msg("/etc/passwd");
	memset(long_tag, 't', sizeof(long_tag) - 1);
	long_tag[sizeof(long_tag) - 1] = '\0';
	req_init(&req, sb_a, argv, NULL);
	req.tag = long_tag;
	CHECK_ERR(start_status(&req), SBX_EINVAL);
	check_msg("tag");
	/* Sandboxes that do not exist or cannot be named. */
	req_init(&req, "aaaaaaaaaaaaaaaaaaaa", argv, NULL);
	CHECK_ERR(start_status(&req), SBX_ENOTFOUND);
	req_init(&req, "../../etc", argv, NULL);
	CHECK_ERR(start_status(&req), SBX_EINVAL);
	/* None of it left a process behind in the listing. */
	{
		Sbx__V1__ProcessListReply *rep = p_list(sb_a);

		for (size_t i = 0; i < rep->n_processes; i++) {
			CHECK(strcmp(rep->processes[i]->argv[0],
			             "no-such-binary-42") != 0);
		}
		sbx__v1__process_list_reply__free_unpacked(rep, NULL);
	}
	check_healthy();
}

/* ---- 8. EventsFetch ---- */

static Sbx__V1__EventsFetchReply *
fetch(const char *sb, const char *stream, uint64_t from, uint32_t max_bytes,
      sbx_err *err)
{
	Sbx__V1__EventsFetchRequest req = SBX__V1__EVENTS_FETCH_REQUEST__INIT;
	Sbx__V1__EventsFetchReply *rep = NULL;

	req.sandbox_id = (char *) sb;
	req.stream = (char *) stream;
	req.from_seq = from;
	req.max_bytes = max_bytes;
	*err = sbx_call(fx.c, "EventsFetch", &req.base,
	                (ProtobufCMessage **) &rep);
	return rep;
}

static void
test_events_fetch(void **state)
{
	Sbx__V1__ProcessStartRequest req;
	Sbx__V1__EventsFetchReply *rep;
	const Sbx__V1__Event *ev;
	struct tproc *tp;
	char out[64] = "", err_s[64] = "";
	uint64_t last, next = 1, n_pages = 0;
	sbx_err err;

	(void) state;
	req_init(&req, sb_a, NULL,
	         "printf one; sleep 0.05; printf two >&2; sleep 0.05; "
	         "printf three; exit 4");
	tp = run_req(&req, 4, 0);
	CHECK_STR(tp->out.buf[OUT_STDOUT], "onethree");
	CHECK_STR(tp->out.buf[OUT_STDERR], "two");

	/* Everything from seq 1, in order, the exit last. */
	CHECK((rep = fetch(sb_a, tp->stream, 1, 0, &err)) != NULL);
	CHECK_OK(err);
	CHECK(rep->n_events >= 4);
	CHECK(rep->ended);
	for (size_t i = 0; i < rep->n_events; i++) {
		ev = rep->events[i];
		CHECK_INT(ev->seq, i + 1);
		CHECK_STR(ev->stream, tp->stream);
		CHECK_STR(ev->sandbox_id, sb_a);
		CHECK(ev->time_ms > 0);
		if (ev->body_case == SBX__V1__EVENT__BODY_STDOUT) {
			strncat(out, (const char *) ev->stdout.data,
			        ev->stdout.len);
		} else if (ev->body_case == SBX__V1__EVENT__BODY_STDERR) {
			strncat(err_s, (const char *) ev->stderr.data,
			        ev->stderr.len);
		} else {
			CHECK_INT(ev->body_case, SBX__V1__EVENT__BODY_EXIT);
			CHECK_INT(i, rep->n_events - 1);
		}
	}
	CHECK_STR(out, "onethree");
	CHECK_STR(err_s, "two");
	ev = rep->events[rep->n_events - 1];
	CHECK_INT(ev->body_case, SBX__V1__EVENT__BODY_EXIT);
	CHECK_INT(ev->exit->exit_code, 4);
	CHECK_INT(ev->exit->signal, 0);
	CHECK_STR(ev->exit->status, "exited");
	last = ev->seq;
	CHECK_INT(rep->next_seq, last + 1);
	sbx__v1__events_fetch_reply__free_unpacked(rep, NULL);

	/* From the end: nothing more, still ended. From seq 0: as from 1. */
	CHECK((rep = fetch(sb_a, tp->stream, last + 1, 0, &err)) != NULL);
	CHECK_INT(rep->n_events, 0);
	CHECK(rep->ended);
	CHECK_INT(rep->next_seq, last + 1);
	sbx__v1__events_fetch_reply__free_unpacked(rep, NULL);
	CHECK((rep = fetch(sb_a, tp->stream, 0, 0, &err)) != NULL);
	CHECK_INT(rep->n_events, last);
	sbx__v1__events_fetch_reply__free_unpacked(rep, NULL);

	/* A tiny max_bytes pages through them, at least one per call. */
	while (next <= last && n_pages < 100) {
		CHECK((rep = fetch(sb_a, tp->stream, next, 1, &err)) != NULL);
		CHECK_INT(rep->n_events, 1);
		CHECK_INT(rep->events[0]->seq, next);
		next++;
		n_pages++;
		sbx__v1__events_fetch_reply__free_unpacked(rep, NULL);
	}
	CHECK_INT(n_pages, last);

	/* Unknown streams and sandboxes. */
	CHECK(fetch(sb_a, "no-such-stream", 1, 0, &err) == NULL);
	CHECK_INT(err, SBX_ENOTFOUND);
	check_msg("no-such-stream");
	CHECK(fetch(sb_b, tp->stream, 1, 0, &err) == NULL);
	CHECK_INT(err, SBX_ENOTFOUND);
	CHECK(fetch("aaaaaaaaaaaaaaaaaaaa", tp->stream, 1, 0, &err) == NULL);
	CHECK_INT(err, SBX_ENOTFOUND);
	tproc_free(tp);
}

/* A running process's backlog: ended stays false until its exit. */
static void
test_events_fetch_running(void **state)
{
	Sbx__V1__ProcessStartRequest req;
	Sbx__V1__EventsFetchReply *rep;
	struct tproc *tp;
	sbx_err err;
	int32_t code = -1;

	(void) state;
	req_init(&req, sb_a, NULL, "echo first; read -r x; echo \"$x\"");
	req.stdin = true;
	CHECK_OK(tproc_start(&tp, &req));
	CHECK(tproc_wait_for(tp, OUT_STDOUT, "first\n"));
	CHECK((rep = fetch(sb_a, tp->stream, 1, 0, &err)) != NULL);
	CHECK_INT(rep->n_events, 1);
	CHECK_INT(rep->events[0]->body_case, SBX__V1__EVENT__BODY_STDOUT);
	CHECK_INT(rep->events[0]->stdout.len, 6);
	CHECK(memcmp(rep->events[0]->stdout.data, "first\n", 6) == 0);
	CHECK(!rep->ended);
	CHECK_INT(rep->next_seq, 2);
	sbx__v1__events_fetch_reply__free_unpacked(rep, NULL);
	CHECK_OK(p_input_str(sb_a, ref_stream(tp->stream), "second\n"));
	CHECK_OK(tproc_wait(tp, &code, NULL));
	CHECK_INT(code, 0);
	CHECK_STR(tp->out.buf[OUT_STDOUT], "first\nsecond\n");
	CHECK((rep = fetch(sb_a, tp->stream, 2, 0, &err)) != NULL);
	CHECK_INT(rep->n_events, 2);
	CHECK(rep->ended);
	sbx__v1__events_fetch_reply__free_unpacked(rep, NULL);
	tproc_free(tp);
}

/* ---- streams opened before their process ---- */

/* sbx_stream_open is meant to come first; a client may take its time to
 * start the process. The pause stands for that slow client: it is the
 * thing under test, not a wait for a condition. It is longer than the
 * longest sleep of libsbx's I/O thread (1 s), so the not yet existing
 * stream is polled at least once before the process starts. */
static void
test_stream_opened_early(void **state)
{
	const char *const argv[] = {"echo", "late start", NULL};
	struct sbx_stream_cbs cbs = {0};
	Sbx__V1__ProcessStartRequest req;
	struct tproc *tp = tproc_new();
	int32_t code = -1;

	(void) state;
	cbs.arg = &tp->out;
	cbs.on_data = output_on_data;
	cbs.on_exit = output_on_exit;
	sbx_stream_id(tp->stream);
	CHECK_OK(sbx_stream_open(fx.c, sb_a, tp->stream, &cbs, &tp->s));
	usleep(1500 * 1000);
	req_init(&req, sb_a, argv, NULL);
	req.stream = tp->stream;
	CHECK_OK(start_status(&req));
	CHECK_OK(tproc_wait(tp, &code, NULL));
	CHECK_INT(code, 0);
	CHECK_STR(tp->out.buf[OUT_STDOUT], "late start\n");
	tproc_free(tp);
}

/* A stream whose sandbox dies before its process starts ends with
 * NOT_FOUND instead of waiting for ever. */
static void
test_stream_sandbox_gone(void **state)
{
	Sbx__V1__KillRequest kr = SBX__V1__KILL_REQUEST__INIT;
	struct sbx_stream_cbs cbs = {0};
	struct tproc *tp = tproc_new();
	char *sb = sbxd_create(&fx, NULL);

	(void) state;
	CHECK(sb != NULL);
	sbx_stream_id(tp->stream);
	CHECK_OK(sbx_stream_open(fx.c, sb, tp->stream, &cbs, &tp->s));
	kr.id = sb;
	CHECK_OK(call_plain("Kill", &kr.base));
	CHECK_ERR(sbx_stream_wait(tp->s, 10000, NULL, NULL), SBX_ENOTFOUND);
	tproc_free(tp);
	free(sb);
}

/* Killing a sandbox ends its running processes with a last exit event. */
static void
test_sandbox_kill_ends_processes(void **state)
{
	const char *const argv[] = {"sh", "-c", "echo up; exec sleep 1000",
	                            NULL};
	Sbx__V1__KillRequest kr = SBX__V1__KILL_REQUEST__INIT;
	Sbx__V1__ProcessStartRequest req;
	struct tproc *tp;
	char *sb = sbxd_create(&fx, NULL);
	int32_t code = 0, sig = 0;

	(void) state;
	CHECK(sb != NULL);
	req_init(&req, sb, argv, NULL);
	CHECK_OK(tproc_start(&tp, &req));
	CHECK(tproc_wait_for(tp, OUT_STDOUT, "up\n"));
	kr.id = sb;
	CHECK_OK(call_plain("Kill", &kr.base));
	CHECK_OK(tproc_wait(tp, &code, &sig));
	CHECK_INT(code, -1);
	CHECK_INT(sig, SIGKILL);
	CHECK_STR(tp->out.status, "sandbox ended");
	CHECK_STR(tp->out.buf[OUT_STDOUT], "up\n");
	tproc_free(tp);
	free(sb);
	check_healthy();
}

/* ---- 9. many processes at once ---- */

#define CONC_THREADS 4
#define CONC_PER_THREAD 13

struct conc_thread {
	int id;
	int n_ok;
	char error[512];
};

/* What process I of thread T prints: its name, then T*100+I numbers. */
static void
conc_expect(int t, int i, char *out, size_t cap)
{
	size_t off = (size_t) snprintf(out, cap, "p%d-%d\n", t, i);

	for (int k = 1; k <= t * 100 + i; k++) {
		off += (size_t) snprintf(out + off, cap - off, "%d\n", k);
	}
}

static void *
conc_main(void *arg)
{
	struct conc_thread *ct = arg;
	struct tproc *tp[CONC_PER_THREAD];
	Sbx__V1__ProcessStartRequest req;
	char name[32], count[16], code_s[16], want[8192], want_err[32];
	const char *argv[] = {"sh", "-c",
	                      "echo $0; seq 1 $1; echo e$0 >&2; exit $2",
	                      name, count, code_s, NULL};
	int started = 0;

	/* Start all, alternating sandboxes, then collect all: they run at
	 * the same time. Errors are recorded, not asserted: cmocka's checks
	 * belong to the main thread. */
	for (int i = 0; i < CONC_PER_THREAD; i++, started++) {
		snprintf(name, sizeof(name), "p%d-%d", ct->id, i);
		snprintf(count, sizeof(count), "%d", ct->id * 100 + i);
		snprintf(code_s, sizeof(code_s), "%d", i % 5);
		req_init(&req, (ct->id + i) % 2 == 0 ? sb_a : sb_b, argv, NULL);
		if (tproc_start(&tp[i], &req) != SBX_OK) {
			snprintf(ct->error, sizeof(ct->error), "start %s: %s",
			         name, sbx_last_error());
			break;
		}
	}
	for (int i = 0; i < started; i++) {
		int32_t code = -1, sig = -1;
		sbx_err err = tproc_wait(tp[i], &code, &sig);

		conc_expect(ct->id, i, want, sizeof(want));
		snprintf(want_err, sizeof(want_err), "ep%d-%d\n", ct->id, i);
		if (err != SBX_OK || code != i % 5 || sig != 0 ||
		    strcmp(tp[i]->out.buf[OUT_STDOUT], want) != 0 ||
		    strcmp(tp[i]->out.buf[OUT_STDERR], want_err) != 0) {
			snprintf(ct->error, sizeof(ct->error),
			         "p%d-%d: %s (%s) code %d sig %d stdout %zu "
			         "bytes stderr \"%.20s\"",
			         ct->id, i, sbx_strerror(err),
			         err != SBX_OK ? sbx_last_error() : "", code, sig,
			         tp[i]->out.len[OUT_STDOUT],
			         tp[i]->out.buf[OUT_STDERR]);
		} else {
			ct->n_ok++;
		}
		tproc_free(tp[i]);
	}
	return NULL;
}

static void
test_many_concurrent(void **state)
{
	struct conc_thread ct[CONC_THREADS];
	pthread_t th[CONC_THREADS];

	(void) state;
	for (int t = 0; t < CONC_THREADS; t++) {
		memset(&ct[t], 0, sizeof(ct[t]));
		ct[t].id = t;
		CHECK_INT(pthread_create(&th[t], NULL, conc_main, &ct[t]), 0);
	}
	for (int t = 0; t < CONC_THREADS; t++) {
		pthread_join(th[t], NULL);
	}
	for (int t = 0; t < CONC_THREADS; t++) {
		if (ct[t].error[0] != '\0') {
			fail_msg("thread %d: %s", t, ct[t].error);
		}
		CHECK_INT(ct[t].n_ok, CONC_PER_THREAD);
	}
	check_healthy();
}

#define T(f) cmocka_unit_test_teardown(f, test_cleanup)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_exec_argv_and_command),
		T(test_exit_codes),
		T(test_killed_by_signal),
		T(test_output_20000_lines),
		T(test_output_mixed_streams),
		T(test_output_binary),
		T(test_stdin_cat),
		T(test_stdin_errors),
		T(test_stdin_limits),
		T(test_signal_term),
		T(test_signal_caught),
		T(test_signal_group_leaves_nothing),
		T(test_signal_invalid),
		T(test_pty_size),
		T(test_pty_resize),
		T(test_pty_eof_and_bad_size),
		T(test_env_layers),
		T(test_users),
		T(test_cwd),
		T(test_list_and_lookup),
		T(test_input_by_tag_and_pid),
		T(test_stream_ids),
		T(test_start_bad_requests),
		T(test_events_fetch),
		T(test_events_fetch_running),
		T(test_stream_opened_early),
		T(test_stream_sandbox_gone),
		T(test_sandbox_kill_ends_processes),
		T(test_many_concurrent),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
