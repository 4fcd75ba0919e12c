/*
 * Peers that hang up in the middle of the SP handshake must not take sbxd's
 * listeners down (NNG 1.5.2 stops accepting after one, nng#1518; sbxd's
 * listener watchdog restores them). Hostile local clients send three bytes
 * of a handshake and close, many times, on the rpc and the events socket;
 * calls and streams work again within a bounded time and nothing is lost.
 * The watchdog gives a listener three failed probes of 3 s before it
 * restarts it (so a loaded host is not mistaken for a dead listener): the
 * bound here is generous for a loaded CI host.
 */
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "sbx_test.h"
#include "sbxd_fixture.h"

static struct sbxd_fixture fx;

/* NNG leaks on the failure path this test provokes (see nng-1518.supp):
 * suppressed for this test binary, and for its daemon through the
 * environment it inherits. Other tests keep the full leak check. */
const char *__lsan_default_suppressions(void);

const char *
__lsan_default_suppressions(void)
{
	return "leak:libnng.so\n";
}

static int
setup(void **state)
{
	const char *old = getenv("LSAN_OPTIONS");
	char opts[1024];
	int rc;

	(void) state;
	snprintf(opts, sizeof(opts), "%s%ssuppressions=%s",
	         old != NULL ? old : "", old != NULL ? ":" : "",
	         SBX_NNG_SUPPRESSIONS);
	setenv("LSAN_OPTIONS", opts, 1);
	rc = sbxd_start(&fx, "hangup", NULL);
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

/* N connections to the ipc socket of URL that each send 3 of the 8 bytes
 * of an SP header and close. */
static void
hang_up_mid_handshake(const char *url, int n)
{
	struct sockaddr_un sa;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", url + 6);
	for (int i = 0; i < n; i++) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

		CHECK(fd >= 0);
		if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0 &&
		    write(fd, "\0SP", 3) != 3) {
			/* A refused write is as good as a hang-up. */
		}
		close(fd);
	}
}

/* Poll (bounded) until a fresh client gets Health from sbxd. */
static bool
health_within(long long ms)
{
	Sbx__V1__HealthRequest req = SBX__V1__HEALTH_REQUEST__INIT;
	struct sbx_client_opts o = {0};
	long long until = sbx_test_mono_ms() + ms;
	ProtobufCMessage *rep;
	sbx_client *c;
	bool ok = false;

	o.url = fx.rpc_url;
	o.events_url = fx.events_url;
	o.timeout_ms = 1000;
	while (!ok && sbx_test_mono_ms() < until) {
		if (sbx_client_open(&c, &o) != SBX_OK) {
			usleep(50000);
			continue;
		}
		if (sbx_call(c, "Health", &req.base, &rep) == SBX_OK) {
			protobuf_c_message_free_unpacked(rep, NULL);
			ok = true;
		}
		sbx_client_close(c);
	}
	return ok;
}

static void
test_rpc_listener_recovers(void **state)
{
	char *id = sbxd_create(&fx, NULL), *out = NULL;
	int code = -1;

	(void) state;
	CHECK(id != NULL);
	hang_up_mid_handshake(fx.rpc_url, 200);
	CHECK(health_within(45000));
	/* The sandbox made before is still there and runs work. */
	sbx_client_close(fx.c);
	fx.c = NULL;
	{
		struct sbx_client_opts o = {0};

		o.url = fx.rpc_url;
		o.events_url = fx.events_url;
		CHECK_OK(sbx_client_open(&fx.c, &o));
	}
	CHECK_OK(sbxd_run(&fx, id, NULL, "echo still", &out, NULL, &code));
	CHECK_STR(out, "still\n");
	CHECK_INT(code, 0);
	free(out);
	free(id);
}

/* Run "echo events" with a fresh client; true if all its events came on
 * the event socket (none had to be fetched). */
static bool
events_delivered_live(const char *id)
{
	Sbx__V1__ProcessStartRequest req = SBX__V1__PROCESS_START_REQUEST__INIT;
	struct sbx_client_opts o = {0};
	struct sbx_stream_cbs cbs = {0};
	ProtobufCMessage *rep;
	char stream[24];
	sbx_client *c;
	sbx_stream *s;
	int32_t code = -1;
	bool live = false;

	o.url = fx.rpc_url;
	o.events_url = fx.events_url;
	if (sbx_client_open(&c, &o) != SBX_OK) {
		return false;
	}
	sbx_stream_id(stream);
	if (sbx_stream_open(c, id, stream, &cbs, &s) == SBX_OK) {
		req.sandbox_id = (char *) id;
		req.stream = stream;
		req.command = "echo events";
		if (sbx_call(c, "ProcessStart", &req.base, &rep) == SBX_OK) {
			protobuf_c_message_free_unpacked(rep, NULL);
			live = sbx_stream_wait(s, 10000, &code, NULL) == SBX_OK &&
			       code == 0 && sbx_stream_fetched(s) == 0;
		}
		sbx_stream_close(s);
	}
	sbx_client_close(c);
	return live;
}

static void
test_events_listener_recovers(void **state)
{
	char *id = sbxd_create(&fx, NULL);
	long long until = sbx_test_mono_ms() + 45000;
	bool ok = false;

	(void) state;
	CHECK(id != NULL);
	CHECK(events_delivered_live(id));
	hang_up_mid_handshake(fx.events_url, 200);
	/* Output keeps arriving on the event socket itself, not only by the
	 * fetches that would repair a dead one. */
	while (!ok && sbx_test_mono_ms() < until) {
		ok = events_delivered_live(id);
	}
	CHECK(ok);
	free(id);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rpc_listener_recovers),
		cmocka_unit_test(test_events_listener_recovers),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
