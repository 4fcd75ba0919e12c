/*
 * rpc_bench: sbxd's call rate against a raw NNG echo floor, and the latency
 * of create (no kernel) and of `true` run to its exit.
 *
 *   rpc_bench [--seconds S] [--creates N] [--runs N]
 *   rpc_bench --only raw|health|get --threads N [--seconds S]   (profiling)
 *
 * sbxd is reached at $SBX_URL / $SBX_EVENTS_URL (defaults: /run/sbx). The
 * floor is an NNG REP server with 64 contexts in a child process (as sbxd is
 * a process of its own), echoing each request on an ipc socket, driven
 * exactly like sbxd: one REQ socket, one context per client thread, a
 * Health-sized request. One key=value line per figure.
 */
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>

#include "sbx.h"

#define ECHO_CONTEXTS 64

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* ---- the raw floor: an echo server ---- */

struct echo_ctx {
	nng_ctx ctx;
	nng_aio *aio;
	int sending;
};

static void
echo_cb(void *arg)
{
	struct echo_ctx *e = arg;

	if (nng_aio_result(e->aio) != 0) {
		if (e->sending) {
			nng_msg_free(nng_aio_get_msg(e->aio));
		}
		if (nng_aio_result(e->aio) == NNG_ECLOSED) {
			return;
		}
		e->sending = 0;
		nng_ctx_recv(e->ctx, e->aio);
		return;
	}
	if (e->sending) {
		e->sending = 0;
		nng_ctx_recv(e->ctx, e->aio);
	} else {
		e->sending = 1;
		nng_ctx_send(e->ctx, e->aio);
	}
}

static int
echo_start(nng_socket *s, struct echo_ctx *ctxs, const char *url)
{
	if (nng_rep0_open(s) != 0 || nng_listen(*s, url, NULL, 0) != 0) {
		return -1;
	}
	for (int i = 0; i < ECHO_CONTEXTS; i++) {
		if (nng_aio_alloc(&ctxs[i].aio, echo_cb, &ctxs[i]) != 0 ||
		    nng_ctx_open(&ctxs[i].ctx, *s) != 0) {
			return -1;
		}
		nng_ctx_recv(ctxs[i].ctx, ctxs[i].aio);
	}
	return 0;
}

/* ---- load generators ---- */

struct load {
	const char *kind; /* "raw", "health", "get" */
	nng_socket raw;
	sbx_client *c;
	const char *sandbox;
	double until;
	atomic_long calls;
	atomic_long errors;
};

static void *
raw_worker(void *arg)
{
	struct load *l = arg;
	uint8_t payload[32];
	nng_aio *aio;
	nng_ctx ctx;
	nng_msg *m;
	long n = 0, errs = 0;

	memset(payload, 0x5a, sizeof(payload));
	if (nng_ctx_open(&ctx, l->raw) != 0 ||
	    nng_aio_alloc(&aio, NULL, NULL) != 0) {
		atomic_fetch_add(&l->errors, 1);
		return NULL;
	}
	while (now_s() < l->until) {
		if (nng_msg_alloc(&m, 0) != 0 ||
		    nng_msg_append(m, payload, sizeof(payload)) != 0) {
			errs++;
			continue;
		}
		nng_aio_set_msg(aio, m);
		nng_ctx_send(ctx, aio);
		nng_aio_wait(aio);
		if (nng_aio_result(aio) != 0) {
			nng_msg_free(m);
			errs++;
			continue;
		}
		nng_ctx_recv(ctx, aio);
		nng_aio_wait(aio);
		if (nng_aio_result(aio) != 0) {
			errs++;
			continue;
		}
		nng_msg_free(nng_aio_get_msg(aio));
		n++;
	}
	nng_aio_free(aio);
	nng_ctx_close(ctx);
	atomic_fetch_add(&l->calls, n);
	atomic_fetch_add(&l->errors, errs);
	return NULL;
}

static void *
sbx_worker(void *arg)
{
	struct load *l = arg;
	Sbx__V1__HealthRequest hr = SBX__V1__HEALTH_REQUEST__INIT;
	Sbx__V1__GetRequest gr = SBX__V1__GET_REQUEST__INIT;
	bool health = strcmp(l->kind, "health") == 0;
	ProtobufCMessage *rep;
	long n = 0, errs = 0;

	gr.id = (char *) l->sandbox;
	while (now_s() < l->until) {
		if (sbx_call(l->c, health ? "Health" : "Get",
		             health ? &hr.base : &gr.base, &rep) != SBX_OK) {
			errs++;
			continue;
		}
		protobuf_c_message_free_unpacked(rep, NULL);
		n++;
	}
	atomic_fetch_add(&l->calls, n);
	atomic_fetch_add(&l->errors, errs);
	return NULL;
}

/* Calls per second of KIND with N threads for SECONDS. */
static double
rate(struct load *l, int n, double seconds)
{
	pthread_t t[64];
	double start;

	atomic_store(&l->calls, 0);
	atomic_store(&l->errors, 0);
	start = now_s();
	l->until = start + seconds;
	for (int i = 0; i < n; i++) {
		pthread_create(&t[i], NULL,
		               strcmp(l->kind, "raw") == 0 ? raw_worker
		                                           : sbx_worker,
		               l);
	}
	for (int i = 0; i < n; i++) {
		pthread_join(t[i], NULL);
	}
	if (atomic_load(&l->errors) != 0) {
		fprintf(stderr, "%s: %ld errors\n", l->kind,
		        atomic_load(&l->errors));
	}
	return (double) atomic_load(&l->calls) / (now_s() - start);
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *) a, y = *(const double *) b;

	return x < y ? -1 : x > y;
}

static void
report_latency(const char *name, double *v, int n)
{
	qsort(v, (size_t) n, sizeof(*v), cmp_double);
	printf("%s_p50_ms=%.3f\n", name, v[n / 2] * 1000);
	printf("%s_p99_ms=%.3f\n", name, v[(n * 99) / 100] * 1000);
	printf("%s_max_ms=%.3f\n", name, v[n - 1] * 1000);
}

static char *
create(sbx_client *c, double *secs)
{
	Sbx__V1__CreateRequest req = SBX__V1__CREATE_REQUEST__INIT;
	Sbx__V1__SandboxInfo *info;
	double t0 = now_s();
	char *id;

	if (sbx_call(c, "Create", &req.base, (ProtobufCMessage **) &info) !=
	    SBX_OK) {
		fprintf(stderr, "create: %s\n", sbx_last_error());
		exit(1);
	}
	*secs = now_s() - t0;
	id = strdup(info->id);
	sbx__v1__sandbox_info__free_unpacked(info, NULL);
	return id;
}

static void
kill_sb(sbx_client *c, const char *id)
{
	Sbx__V1__KillRequest req = SBX__V1__KILL_REQUEST__INIT;
	ProtobufCMessage *rep;

	req.id = (char *) id;
	if (sbx_call(c, "Kill", &req.base, &rep) == SBX_OK) {
		protobuf_c_message_free_unpacked(rep, NULL);
	}
}

int
main(int argc, char **argv)
{
	static struct echo_ctx echo[ECHO_CONTEXTS];
	double seconds = 3, *lat;
	int creates = 50, runs = 200, only_threads = 1;
	const char *only = NULL;
	char dir[] = "/tmp/sbx-bench-XXXXXX", url[128];
	struct load l = {0};
	nng_socket echo_sock;
	pid_t echo_pid;
	char *id;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--seconds") == 0) {
			seconds = atof(argv[i + 1]);
		} else if (strcmp(argv[i], "--creates") == 0) {
			creates = atoi(argv[i + 1]);
		} else if (strcmp(argv[i], "--runs") == 0) {
			runs = atoi(argv[i + 1]);
		} else if (strcmp(argv[i], "--only") == 0) {
			only = argv[i + 1];
		} else if (strcmp(argv[i], "--threads") == 0) {
			only_threads = atoi(argv[i + 1]);
		}
	}
	if (mkdtemp(dir) == NULL) {
		return 1;
	}
	snprintf(url, sizeof(url), "ipc://%s/echo", dir);
	/* NNG may not be used across fork: the echo server is forked before
	 * this process touches NNG at all. */
	if ((echo_pid = fork()) == 0) {
		if (echo_start(&echo_sock, echo, url) != 0) {
			_exit(1);
		}
		pause();
		_exit(0);
	}
	if (sbx_client_open(&l.c, NULL) != SBX_OK) {
		fprintf(stderr, "sbxd: %s\n", sbx_last_error());
		kill(echo_pid, SIGTERM);
		return 1;
	}
	if (nng_req0_open(&l.raw) != 0 ||
	    nng_socket_set_ms(l.raw, NNG_OPT_RECONNMINT, 5) != 0) {
		fprintf(stderr, "req socket failed\n");
		return 1;
	}
	/* The child binds asynchronously: retry the dial until it listens. */
	for (int i = 0; nng_dial(l.raw, url, NULL, 0) != 0; i++) {
		if (i == 400) {
			fprintf(stderr, "echo server did not start\n");
			return 1;
		}
		usleep(5000);
	}
	double skip;
	id = create(l.c, &skip);
	l.sandbox = id;
	if (only != NULL) {
		l.kind = only;
		printf("%s_c%d_calls_per_s=%.0f\n", only, only_threads,
		       rate(&l, only_threads, seconds));
		kill_sb(l.c, id);
		free(id);
		nng_close(l.raw);
		kill(echo_pid, SIGTERM);
		waitpid(echo_pid, NULL, 0);
		sbx_client_close(l.c);
		return 0;
	}
	for (int threads = 1; threads <= 8; threads *= 8) {
		double raw, health, get;

		l.kind = "raw";
		raw = rate(&l, threads, seconds);
		l.kind = "health";
		health = rate(&l, threads, seconds);
		l.kind = "get";
		get = rate(&l, threads, seconds);
		printf("raw_echo_c%d_calls_per_s=%.0f\n", threads, raw);
		printf("health_c%d_calls_per_s=%.0f\n", threads, health);
		printf("get_c%d_calls_per_s=%.0f\n", threads, get);
		printf("health_c%d_vs_raw=%.2f\n", threads, health / raw);
		printf("get_c%d_vs_raw=%.2f\n", threads, get / raw);
	}

	lat = calloc((size_t) (creates > runs ? creates : runs), sizeof(*lat));
	for (int i = 0; i < creates; i++) {
		char *sb = create(l.c, &lat[i]);

		kill_sb(l.c, sb);
		free(sb);
	}
	report_latency("create", lat, creates);

	for (int i = 0; i < runs; i++) {
		Sbx__V1__ProcessStartRequest req =
		        SBX__V1__PROCESS_START_REQUEST__INIT;
		char *args[] = {"/bin/true", NULL};
		int32_t code = -1;
		double t0 = now_s();

		req.sandbox_id = id;
		req.argv = args;
		req.n_argv = 1;
		if (sbx_process_run(l.c, &req, NULL, 30000, NULL, &code,
		                    NULL) != SBX_OK ||
		    code != 0) {
			fprintf(stderr, "run: %s\n", sbx_last_error());
			return 1;
		}
		lat[i] = now_s() - t0;
	}
	report_latency("true_run", lat, runs);

	kill_sb(l.c, id);
	free(id);
	free(lat);
	nng_close(l.raw);
	kill(echo_pid, SIGTERM);
	waitpid(echo_pid, NULL, 0);
	sbx_client_close(l.c);
	return 0;
}
