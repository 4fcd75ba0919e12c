/*
 * Bad input, listeners and auth: whatever reaches sbxd's sockets gets a
 * clear status and message (or, past twice the size cap, a dropped
 * connection), and nothing is lost: after every case the daemon still
 * answers Health and a sandbox made before it still runs commands.
 *
 * Part one talks to a fixture daemon (--max_message_bytes=65536) through a
 * raw NNG REQ socket, so it can send any bytes at all, and through libsbx.
 * Part two starts its own daemons with tcp:// and tls+tcp:// listeners, a
 * token file and openssl-made certificates, and checks which clients get
 * in, and that bad listener settings stop sbxd at start with exit code 2.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "sbx_test.h"
#include "sbxd_fixture.h"
#include "wire.h"

#define MAX_MSG 65536

static struct sbxd_fixture fx;
static char *sb; /* a sandbox that must survive every case */

/* ---- part one: the fixture daemon ---- */

static int
setup(void **state)
{
	static const char *const extra[] = {"--max_message_bytes=65536",
	                                    NULL};
	int rc = sbxd_start(&fx, "badin", extra);

	(void) state;
	if (rc == SBX_TEST_SKIP) {
		exit(SBX_TEST_SKIP);
	}
	if (rc == 0 && (sb = sbxd_create(&fx, NULL)) == NULL) {
		rc = -1;
	}
	return rc;
}

static int
teardown(void **state)
{
	(void) state;
	free(sb);
	sb = NULL;
	return sbxd_stop(&fx, false);
}

/* The daemon answers Health and the old sandbox still runs a command. */
static void
check_alive(void)
{
	Sbx__V1__HealthRequest hr = SBX__V1__HEALTH_REQUEST__INIT;
	Sbx__V1__HealthReply *h = NULL;
	char *out = NULL, *err = NULL;
	int code = -1;

	CHECK_OK(sbx_call(fx.c, "Health", &hr.base,
	                  (ProtobufCMessage **) &h));
	CHECK(h->sandboxes_running >= 1);
	sbx__v1__health_reply__free_unpacked(h, NULL);
	CHECK_OK(sbxd_run(&fx, sb, NULL, "echo alive; echo e >&2", &out, &err,
	                  &code));
	CHECK_STR(out, "alive\n");
	CHECK_STR(err, "e\n");
	CHECK_INT(code, 0);
	free(out);
	free(err);
}

/* A raw REQ socket on URL: no libsbx between the test and the bytes. */
static nng_socket
raw_open(const char *url)
{
	nng_socket s;

	CHECK_INT(nng_req0_open(&s), 0);
	/* One send per request: a resend would hide a dropped call. */
	CHECK_INT(nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME,
	                            NNG_DURATION_INFINITE),
	          0);
	CHECK_INT(nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 10000), 0);
	CHECK_INT(nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, 10000), 0);
	CHECK_INT(nng_dial(s, url, NULL, 0), 0);
	return s;
}

/* Send LEN bytes at P as one message and decode the Result. */
static Sbx__V1__Result *
raw_exchange(nng_socket s, const void *p, size_t len)
{
	Sbx__V1__Result *r = NULL;
	nng_msg *m;

	CHECK_INT(nng_msg_alloc(&m, len), 0);
	if (len > 0) {
		memcpy(nng_msg_body(m), p, len);
	}
	CHECK_INT(nng_sendmsg(s, m, 0), 0);
	CHECK_INT(nng_recvmsg(s, &m, 0), 0);
	CHECK_OK(sbx_wire_result_decode(nng_msg_body(m), nng_msg_len(m), &r));
	nng_msg_free(m);
	return r;
}

/* Pack a Call envelope with any version and payload (heap; caller frees). */
static uint8_t *
pack_call(size_t *len, uint32_t version, const char *method, uint64_t id,
          uint32_t timeout_ms, const uint8_t *payload, size_t plen)
{
	Sbx__V1__Call c = SBX__V1__CALL__INIT;
	uint8_t *buf;

	c.version = version;
	c.method = (char *) method;
	c.id = id;
	c.timeout_ms = timeout_ms;
	c.payload.data = (uint8_t *) payload;
	c.payload.len = plen;
	*len = sbx__v1__call__get_packed_size(&c);
	CHECK((buf = malloc(*len + 1)) != NULL);
	CHECK_INT(sbx__v1__call__pack(&c, buf), *len);
	return buf;
}

/* A raw exchange of a Call; checks the Result's id and status and returns
 * it for the message checks. */
static Sbx__V1__Result *
raw_call(uint32_t version, const char *method, uint64_t id,
         const uint8_t *payload, size_t plen, Sbx__V1__Status want)
{
	size_t len;
	uint8_t *buf = pack_call(&len, version, method, id, 0, payload, plen);
	nng_socket s = raw_open(fx.rpc_url);
	Sbx__V1__Result *r = raw_exchange(s, buf, len);

	nng_close(s);
	free(buf);
	CHECK_INT(r->status, want);
	CHECK_INT(r->id, id);
	if (want != SBX__V1__STATUS__OK) {
		CHECK(r->message != NULL && r->message[0] != '\0');
		CHECK_INT(r->payload.len, 0);
	}
	return r;
}

static void
test_garbage(void **state)
{
	/* An invalid wire type, an overlong varint tag, a length running
	 * past the end, and plain text that is not protobuf. */
	static const uint8_t bad1[] = {0x0f, 0x01};
	static const uint8_t bad2[] = {0xff, 0xff, 0xff, 0xff, 0xff,
	                               0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
	static const uint8_t bad3[] = {0x12, 0x7f, 'H', 'e', 'a'};
	static const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	const struct {
		const void *p;
		size_t len;
	} cases[] = {
		{bad1, sizeof(bad1)},
		{bad2, sizeof(bad2)},
		{bad3, sizeof(bad3)},
		{http, sizeof(http) - 1},
	};
	nng_socket s = raw_open(fx.rpc_url);

	(void) state;
	/* One connection for all: a bad message must not cost the
	 * connection either. */
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		Sbx__V1__Result *r = raw_exchange(s, cases[i].p, cases[i].len);

		CHECK_INT(r->status, SBX__V1__STATUS__INVALID_ARGUMENT);
		CHECK_STR(r->message, "malformed Call envelope");
		CHECK_INT(r->id, 0);
		CHECK_INT(r->payload.len, 0);
		sbx__v1__result__free_unpacked(r, NULL);
	}
	nng_close(s);
	check_alive();
}

static void
test_empty_message(void **state)
{
	nng_socket s = raw_open(fx.rpc_url);
	Sbx__V1__Result *r = raw_exchange(s, NULL, 0);

	(void) state;
	/* Zero bytes are a valid, all-default Call: version 0. */
	CHECK_INT(r->status, SBX__V1__STATUS__INVALID_ARGUMENT);
	CHECK(strstr(r->message, "version") != NULL);
	sbx__v1__result__free_unpacked(r, NULL);
	nng_close(s);
	check_alive();
}

static void
test_wire_version(void **state)
{
	static const uint32_t versions[] = {0, 2, 0xffffffffu};
	Sbx__V1__Result *r;

	(void) state;
	for (size_t i = 0; i < 3; i++) {
		r = raw_call(versions[i], "Health", 1000 + i, NULL, 0,
		             SBX__V1__STATUS__INVALID_ARGUMENT);
		CHECK(strstr(r->message, "version") != NULL);
		CHECK(strstr(r->message, "1") != NULL);
		sbx__v1__result__free_unpacked(r, NULL);
	}
	/* Version 1 is the one it speaks. */
	r = raw_call(1, "Health", 1010, NULL, 0, SBX__V1__STATUS__OK);
	sbx__v1__result__free_unpacked(r, NULL);
	check_alive();
}

static void
test_unknown_method(void **state)
{
	char longname[200];
	Sbx__V1__Result *r;

	(void) state;
	r = raw_call(1, "NoSuchMethod", 0x123456789abcull, NULL, 0,
	             SBX__V1__STATUS__UNIMPLEMENTED);
	CHECK(strstr(r->message, "NoSuchMethod") != NULL);
	sbx__v1__result__free_unpacked(r, NULL);
	/* Method names are case-sensitive, like gRPC's. */
	r = raw_call(1, "health", 7, NULL, 0, SBX__V1__STATUS__UNIMPLEMENTED);
	CHECK(strstr(r->message, "'health'") != NULL);
	sbx__v1__result__free_unpacked(r, NULL);
	/* An empty or oversized name is malformed, not unknown. */
	r = raw_call(1, "", 8, NULL, 0, SBX__V1__STATUS__INVALID_ARGUMENT);
	CHECK(strstr(r->message, "method") != NULL);
	sbx__v1__result__free_unpacked(r, NULL);
	memset(longname, 'A', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	r = raw_call(1, longname, 9, NULL, 0,
	             SBX__V1__STATUS__INVALID_ARGUMENT);
	CHECK(strstr(r->message, "method") != NULL);
	sbx__v1__result__free_unpacked(r, NULL);
	/* libsbx refuses an unknown name before sending anything. */
	{
		Sbx__V1__HealthRequest hr = SBX__V1__HEALTH_REQUEST__INIT;
		Sbx__V1__GetRequest gr = SBX__V1__GET_REQUEST__INIT;
		ProtobufCMessage *rep = NULL;

		CHECK_ERR(sbx_call(fx.c, "NoSuchMethod", &hr.base, &rep),
		          SBX_EINVAL);
		CHECK(strstr(sbx_last_error(), "NoSuchMethod") != NULL);
		/* And a request of the wrong type for the method. */
		CHECK_ERR(sbx_call(fx.c, "Get", &hr.base, &rep), SBX_EINVAL);
		CHECK(strstr(sbx_last_error(), "GetRequest") != NULL);
		CHECK_ERR(sbx_call(fx.c, "Health", NULL, &rep), SBX_EINVAL);
		(void) gr;
		CHECK(rep == NULL);
	}
	check_alive();
}

static void
test_oversized_token(void **state)
{
	struct sbx_client_opts o = {0};
	char tok[600];
	sbx_client *c;

	(void) state;
	/* The envelope caps the token at 512 bytes, on every listener; the
	 * refusal reaches libsbx as itself (not as a reply to another call). */
	memset(tok, 'x', sizeof(tok) - 1);
	tok[sizeof(tok) - 1] = '\0';
	o.url = fx.rpc_url;
	o.events_url = fx.events_url;
	o.token = tok;
	CHECK_OK(sbx_client_open(&c, &o));
	{
		Sbx__V1__HealthRequest hr = SBX__V1__HEALTH_REQUEST__INIT;
		ProtobufCMessage *rep = NULL;

		CHECK_ERR(sbx_call(c, "Health", &hr.base, &rep), SBX_EINVAL);
		CHECK_STR(sbx_last_error(), "oversized token");
	}
	sbx_client_close(c);
	check_alive();
}

static void
test_bad_payload(void **state)
{
	Sbx__V1__PtySize pty = SBX__V1__PTY_SIZE__INIT;
	Sbx__V1__GetRequest get = SBX__V1__GET_REQUEST__INIT;
	Sbx__V1__SandboxInfo *info;
	/* GetRequest.id (field 1) is a string; these are not. */
	static const uint8_t truncated[] = {0x0a, 0x50, 'a', 'b'};
	static const uint8_t badtag[] = {0x0a, 0x02, 'a', 'b', 0x07};
	uint8_t ptybuf[32], getbuf[64];
	Sbx__V1__Result *r;
	size_t n;

	(void) state;
	/* A PtySize where a GetRequest belongs: field 1 is a varint. */
	pty.cols = 80;
	pty.rows = 24;
	n = sbx__v1__pty_size__pack(&pty, ptybuf);
	r = raw_call(1, "Get", 21, ptybuf, n,
	             SBX__V1__STATUS__INVALID_ARGUMENT);
	CHECK_STR(r->message, "malformed GetRequest payload");
	sbx__v1__result__free_unpacked(r, NULL);
	r = raw_call(1, "Get", 22, truncated, sizeof(truncated),
	             SBX__V1__STATUS__INVALID_ARGUMENT);
	CHECK_STR(r->message, "malformed GetRequest payload");
	sbx__v1__result__free_unpacked(r, NULL);
	r = raw_call(1, "ProcessStart", 23, badtag, sizeof(badtag),
	             SBX__V1__STATUS__INVALID_ARGUMENT);
	CHECK_STR(r->message, "malformed ProcessStartRequest payload");
	sbx__v1__result__free_unpacked(r, NULL);
	/* The same bytes done right reach the handler: the payload, not the
	 * method, was at fault above. */
	get.id = sb;
	n = sbx__v1__get_request__pack(&get, getbuf);
	r = raw_call(1, "Get", 24, getbuf, n, SBX__V1__STATUS__OK);
	CHECK_OK(sbx_wire_unpack(&sbx__v1__sandbox_info__descriptor,
	                         r->payload.data, r->payload.len,
	                         (ProtobufCMessage **) &info));
	CHECK_STR(info->id, sb);
	sbx__v1__sandbox_info__free_unpacked(info, NULL);
	sbx__v1__result__free_unpacked(r, NULL);
	/* A well-formed payload with a bad value is the handler's to
	 * refuse, with the same status. */
	get.id = "../../etc/passwd";
	n = sbx__v1__get_request__pack(&get, getbuf);
	r = raw_call(1, "Get", 25, getbuf, n,
	             SBX__V1__STATUS__INVALID_ARGUMENT);
	sbx__v1__result__free_unpacked(r, NULL);
	check_alive();
}

/* A FileWrite of DATA_LEN bytes to the fixture's sandbox. */
static void
file_write_req(Sbx__V1__FileWriteRequest *req, uint8_t *data, size_t len)
{
	sbx__v1__file_write_request__init(req);
	req->sandbox_id = sb;
	req->path = "/home/user/big";
	req->truncate = true;
	req->data.data = data;
	req->data.len = len;
}

static void
test_over_cap(void **state)
{
	Sbx__V1__FileWriteRequest req;
	Sbx__V1__Result *r;
	ProtobufCMessage *rep = NULL;
	size_t plen, len;
	uint8_t *data = calloc(1, 100000), *payload, *buf;
	char want[128];
	void *back = NULL;
	size_t back_len = 0;

	(void) state;
	CHECK(data != NULL);
	file_write_req(&req, data, 100000);
	plen = sbx__v1__file_write_request__get_packed_size(&req);
	CHECK((payload = malloc(plen)) != NULL);
	sbx__v1__file_write_request__pack(&req, payload);
	buf = pack_call(&len, 1, "FileWrite", 31, 0, payload, plen);
	CHECK(len > MAX_MSG && len < 2 * MAX_MSG);
	{
		nng_socket s = raw_open(fx.rpc_url);

		r = raw_exchange(s, buf, len);
		nng_close(s);
	}
	CHECK_INT(r->status, SBX__V1__STATUS__RESOURCE_EXHAUSTED);
	snprintf(want, sizeof(want),
	         "message of %zu bytes exceeds the cap of %d", len, MAX_MSG);
	CHECK_STR(r->message, want);
	/* The id is still read from the refused message. */
	CHECK_INT(r->id, 31);
	sbx__v1__result__free_unpacked(r, NULL);
	/* libsbx reports the same status and reason. */
	CHECK_ERR(sbx_call(fx.c, "FileWrite", &req.base, &rep),
	          SBX_ELIMIT);
	CHECK(strstr(sbx_last_error(), "exceeds the cap of 65536") != NULL);
	CHECK(rep == NULL);
	/* Nothing was written: the file does not exist. */
	CHECK_ERR(sbx_file_read(fx.c, sb, "/home/user/big", NULL, &back,
	                        &back_len, 1 << 20),
	          SBX_ENOTFOUND);
	/* Just under the cap passes. */
	file_write_req(&req, data, 60000);
	CHECK_OK(sbx_call(fx.c, "FileWrite", &req.base, &rep));
	protobuf_c_message_free_unpacked(rep, NULL);
	CHECK_OK(sbx_file_read(fx.c, sb, "/home/user/big", NULL, &back,
	                       &back_len, 1 << 20));
	CHECK_INT(back_len, 60000);
	CHECK(memcmp(back, data, 60000) == 0);
	free(back);
	free(buf);
	free(payload);
	free(data);
	check_alive();
}

static int drops, adds;

static void
count_pipe(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	(void) p;
	(void) arg;
	__atomic_add_fetch(ev == NNG_PIPE_EV_ADD_POST ? &adds : &drops, 1,
	                   __ATOMIC_SEQ_CST);
}

/* Wait up to 10 s for *COUNTER to reach N. */
static bool
wait_count(int *counter, int n)
{
	long long until = sbx_test_mono_ms() + 10000;

	while (__atomic_load_n(counter, __ATOMIC_SEQ_CST) < n &&
	       sbx_test_mono_ms() < until) {
		usleep(10000);
	}
	return __atomic_load_n(counter, __ATOMIC_SEQ_CST) >= n;
}

static void
test_far_over_cap(void **state)
{
	Sbx__V1__HealthRequest hr = SBX__V1__HEALTH_REQUEST__INIT;
	Sbx__V1__FileWriteRequest req;
	struct sbx_client_opts o = {0};
	ProtobufCMessage *rep = NULL;
	size_t plen, len;
	uint8_t *data = calloc(1, 3 * MAX_MSG), *payload, *buf;
	sbx_client *c2;
	nng_socket s;
	nng_msg *m;
	sbx_err err;

	(void) state;
	CHECK(data != NULL);
	file_write_req(&req, data, 3 * MAX_MSG);
	plen = sbx__v1__file_write_request__get_packed_size(&req);
	CHECK((payload = malloc(plen)) != NULL);
	sbx__v1__file_write_request__pack(&req, payload);
	buf = pack_call(&len, 1, "FileWrite", 41, 0, payload, plen);
	CHECK(len > 2 * MAX_MSG);
	/* Raw: sbxd's transport drops the connection without reading the
	 * body; we see the pipe go away, and no reply. */
	s = raw_open(fx.rpc_url);
	__atomic_store_n(&drops, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&adds, 0, __ATOMIC_SEQ_CST);
	CHECK_INT(nng_pipe_notify(s, NNG_PIPE_EV_REM_POST, count_pipe, NULL),
	          0);
	CHECK_INT(nng_pipe_notify(s, NNG_PIPE_EV_ADD_POST, count_pipe, NULL),
	          0);
	CHECK_INT(nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 1000), 0);
	CHECK_INT(nng_msg_alloc(&m, len), 0);
	memcpy(nng_msg_body(m), buf, len);
	CHECK_INT(nng_sendmsg(s, m, 0), 0);
	CHECK(wait_count(&drops, 1));
	CHECK(nng_recvmsg(s, &m, 0) != 0);
	/* The dialer reconnects at once. Close only once that connection
	 * is up: a peer leaving in the middle of the SP handshake is
	 * it_09_hangup's case (an NNG 1.5 bug sbxd works around), not
	 * this one. */
	CHECK(wait_count(&adds, 1));
	nng_close(s);
	/* libsbx: the call fails (connection reset or timeout) instead of
	 * hanging, and the client stays usable. */
	o.url = fx.rpc_url;
	o.events_url = fx.events_url;
	CHECK_OK(sbx_client_open(&c2, &o));
	err = sbx_call_timeout(c2, "FileWrite", &req.base, &rep, 5000);
	CHECK(err == SBX_EUNAVAIL || err == SBX_ETIMEDOUT);
	CHECK(rep == NULL);
	CHECK_OK(sbx_call(c2, "Health", &hr.base, &rep));
	protobuf_c_message_free_unpacked(rep, NULL);
	sbx_client_close(c2);
	/* The next client is served. */
	CHECK_OK(sbx_client_open(&c2, &o));
	CHECK_OK(sbx_call(c2, "Health", &hr.base, &rep));
	protobuf_c_message_free_unpacked(rep, NULL);
	sbx_client_close(c2);
	free(buf);
	free(payload);
	free(data);
	check_alive();
}

#define N_CONCURRENT 64

static void
test_deadline(void **state)
{
	Sbx__V1__HealthRequest hr = SBX__V1__HEALTH_REQUEST__INIT;
	nng_socket s = raw_open(fx.rpc_url);
	nng_ctx ctx[N_CONCURRENT];
	nng_aio *aio[N_CONCURRENT];
	ProtobufCMessage *rep;
	int ok = 0, late = 0;
	sbx_err err;

	(void) state;
	/* Many calls at once, each with a 1 ms deadline: each is answered,
	 * either in time or with DEADLINE_EXCEEDED, with its own id. */
	for (int i = 0; i < N_CONCURRENT; i++) {
		size_t len;
		uint8_t *buf = pack_call(&len, 1, i % 2 ? "Health" : "List",
		                         500 + (uint64_t) i, 1, NULL, 0);
		nng_msg *m;

		CHECK_INT(nng_ctx_open(&ctx[i], s), 0);
		CHECK_INT(nng_aio_alloc(&aio[i], NULL, NULL), 0);
		nng_aio_set_timeout(aio[i], 10000);
		CHECK_INT(nng_msg_alloc(&m, len), 0);
		memcpy(nng_msg_body(m), buf, len);
		free(buf);
		nng_aio_set_msg(aio[i], m);
		nng_ctx_send(ctx[i], aio[i]);
	}
	for (int i = 0; i < N_CONCURRENT; i++) {
		nng_aio_wait(aio[i]);
		CHECK_INT(nng_aio_result(aio[i]), 0);
		nng_ctx_recv(ctx[i], aio[i]);
	}
	for (int i = 0; i < N_CONCURRENT; i++) {
		Sbx__V1__Result *r = NULL;
		nng_msg *m;

		nng_aio_wait(aio[i]);
		CHECK_INT(nng_aio_result(aio[i]), 0);
		m = nng_aio_get_msg(aio[i]);
		CHECK_OK(sbx_wire_result_decode(nng_msg_body(m),
		                                nng_msg_len(m), &r));
		nng_msg_free(m);
		CHECK_INT(r->id, 500 + (uint64_t) i);
		if (r->status == SBX__V1__STATUS__OK) {
			ok++;
		} else {
			CHECK_INT(r->status,
			          SBX__V1__STATUS__DEADLINE_EXCEEDED);
			CHECK(strstr(r->message, "deadline") != NULL);
			late++;
		}
		sbx__v1__result__free_unpacked(r, NULL);
		nng_ctx_close(ctx[i]);
		nng_aio_free(aio[i]);
	}
	nng_close(s);
	CHECK_INT(ok + late, N_CONCURRENT);
	fprintf(stderr, "1 ms deadlines: %d in time, %d too late\n", ok, late);
	/* libsbx with a 1 ms timeout: in time or DEADLINE_EXCEEDED; a late
	 * reply must never be taken for a later call's. */
	for (int i = 0; i < 20; i++) {
		Sbx__V1__GetRequest gr = SBX__V1__GET_REQUEST__INIT;
		Sbx__V1__SandboxInfo *info = NULL;

		err = sbx_call_timeout(fx.c, "Health", &hr.base, &rep, 1);
		CHECK(err == SBX_OK || err == SBX_ETIMEDOUT);
		if (err == SBX_OK) {
			CHECK(rep->descriptor ==
			      &sbx__v1__health_reply__descriptor);
			protobuf_c_message_free_unpacked(rep, NULL);
		}
		gr.id = sb;
		CHECK_OK(sbx_call(fx.c, "Get", &gr.base,
		                  (ProtobufCMessage **) &info));
		CHECK_STR(info->id, sb);
		sbx__v1__sandbox_info__free_unpacked(info, NULL);
	}
	check_alive();
}

struct stub_result {
	int calls;
	bool got;
	uint32_t running;
	char version[64];
	char id[64];
};

static void
on_health(const Sbx__V1__HealthReply *msg, void *data)
{
	struct stub_result *res = data;

	res->calls++;
	if (msg != NULL) {
		res->got = true;
		res->running = msg->sandboxes_running;
		snprintf(res->version, sizeof(res->version), "%s",
		         msg->version);
	}
}

static void
on_info(const Sbx__V1__SandboxInfo *msg, void *data)
{
	struct stub_result *res = data;

	res->calls++;
	if (msg != NULL) {
		res->got = true;
		snprintf(res->id, sizeof(res->id), "%s", msg->id);
	}
}

static void
test_generated_stubs(void **state)
{
	Sbx__V1__HealthRequest hr = SBX__V1__HEALTH_REQUEST__INIT;
	Sbx__V1__GetRequest gr = SBX__V1__GET_REQUEST__INIT;
	ProtobufCService *svc = sbx_client_service(fx.c);
	struct stub_result res = {0};

	(void) state;
	CHECK(svc != NULL);
	CHECK(svc->descriptor == &sbx__v1__sandboxes__descriptor);
	sbx__v1__sandboxes__health(svc, &hr, on_health, &res);
	CHECK_INT(res.calls, 1);
	CHECK(res.got);
	CHECK(res.running >= 1);
	CHECK(res.version[0] != '\0');
	memset(&res, 0, sizeof(res));
	gr.id = sb;
	sbx__v1__sandboxes__get(svc, &gr, on_info, &res);
	CHECK_INT(res.calls, 1);
	CHECK(res.got);
	CHECK_STR(res.id, sb);
	/* A failing call runs the closure once, with NULL, and says why. */
	memset(&res, 0, sizeof(res));
	gr.id = "aaaaaaaaaaaaaaaaaaaa";
	sbx__v1__sandboxes__get(svc, &gr, on_info, &res);
	CHECK_INT(res.calls, 1);
	CHECK(!res.got);
	CHECK(strstr(sbx_last_error(), "no sandbox") != NULL);
	check_alive();
}

/* ---- part two: listeners, tokens and TLS on daemons of our own ---- */

/* A daemon of this test: its own dirs, uid range and arguments. */
struct daemon {
	char *dir;
	char ipc[600];
	char events[600];
	char log[600];
	pid_t pid;
};

static struct daemon auth_d;
static char *auth_dir; /* token, certificates */
static char token[33];
static int tcp_port, tls_port, tls_events_port;
static bool have_tls;

/* Outside every fixture's range (1000000 + 64 * (pid % 40000)). */
static unsigned
own_uid_base(void)
{
	return 3700000u + (unsigned) (getpid() % 1000) * 64u;
}

/* Run sbxd with ARGS; with WAIT, return its exit status (killing it after
 * 20 s), else its pid. stdout and stderr go to LOG. */
static int
sbxd_exec(const char *const *args, const char *log, bool wait)
{
	const char *argv[40];
	char uidbase[64];
	long long until = sbx_test_mono_ms() + 20000;
	size_t n = 0;
	int status = 0, fd;
	pid_t pid;

	snprintf(uidbase, sizeof(uidbase), "--uid_base=%u", own_uid_base());
	argv[n++] = SBX_SBXD_PATH;
	argv[n++] = "--init_path=" SBX_INIT_PATH;
	argv[n++] = uidbase;
	argv[n++] = "--uid_slots=16";
	argv[n++] = "--log_level=info";
	for (size_t i = 0; args[i] != NULL && n < 39; i++) {
		argv[n++] = args[i];
	}
	argv[n] = NULL;
	if ((pid = fork()) == 0) {
		fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0) {
			_exit(126);
		}
		execv(argv[0], (char **) argv);
		_exit(127);
	}
	CHECK(pid > 0);
	if (!wait) {
		return pid;
	}
	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (sbx_test_mono_ms() > until) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			fail_msg("sbxd did not exit");
		}
		usleep(5000);
	}
	return status;
}

/* Start sbxd with bad settings ARGS; it must exit 2 saying WHY. */
static void
expect_start_failure(const char *const *args, const char *why)
{
	char log[700], *text;
	int status;

	snprintf(log, sizeof(log), "%s/fail.log", auth_dir);
	status = sbxd_exec(args, log, true);
	text = sbx_test_read_file(log, NULL);
	CHECK(text != NULL);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 2 ||
	    strstr(text, why) == NULL) {
		fail_msg("sbxd: status %d, output \"%s\", want exit 2 and "
		         "\"%s\"",
		         status, text, why);
	}
	free(text);
}

static int
run_cmd(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
run_cmd(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A CA, a server certificate for sbx.test signed by it, a client
 * certificate signed by it, and a second, unrelated CA. */
static bool
make_certs(const char *d)
{
	static const char *const ec =
	        "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";

	if (run_cmd("openssl version >/dev/null 2>&1") != 0) {
		fprintf(stderr, "skip TLS cases: no openssl\n");
		return false;
	}
	if (run_cmd("cd %s && printf 'subjectAltName=DNS:sbx.test\\n' >srv.ext "
	            "&& openssl req -x509 %s -keyout ca.key -out ca.pem "
	            "-days 2 -subj /CN=sbx-test-ca 2>/dev/null "
	            "&& openssl req -x509 %s -keyout ca2.key -out ca2.pem "
	            "-days 2 -subj /CN=sbx-test-ca 2>/dev/null "
	            "&& openssl req %s -keyout srv.key -out srv.csr "
	            "-subj /CN=sbx.test 2>/dev/null "
	            "&& openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key "
	            "-CAcreateserial -out srv.pem -days 2 -extfile srv.ext "
	            "2>/dev/null "
	            "&& openssl req %s -keyout cli.key -out cli.csr "
	            "-subj /CN=sbx-client 2>/dev/null "
	            "&& openssl x509 -req -in cli.csr -CA ca.pem -CAkey ca.key "
	            "-CAcreateserial -out cli.pem -days 2 2>/dev/null "
	            "&& chmod 600 srv.key cli.key",
	            d, ec, ec, ec, ec) != 0) {
		fprintf(stderr, "skip TLS cases: openssl failed\n");
		return false;
	}
	return true;
}

static void
write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	CHECK(fd >= 0);
	CHECK_INT(write(fd, text, strlen(text)), (ssize_t) strlen(text));
	CHECK_INT(fchmod(fd, mode), 0);
	close(fd);
}

static sbx_err
client_open(sbx_client **c, const char *url, const char *tok,
            const char *ca, const char *server_name)
{
	struct sbx_client_opts o = {0};

	o.url = url;
	o.events_url = auth_d.events;
	o.token = tok;
	o.tls_ca_file = ca;
	o.tls_server_name = server_name;
	o.timeout_ms = 5000;
	return sbx_client_open(c, &o);
}

static sbx_err
health(sbx_client *c)
{
	Sbx__V1__HealthRequest hr = SBX__V1__HEALTH_REQUEST__INIT;
	ProtobufCMessage *rep = NULL;
	sbx_err err = sbx_call(c, "Health", &hr.base, &rep);

	if (err == SBX_OK) {
		protobuf_c_message_free_unpacked(rep, NULL);
	}
	return err;
}

static void
auth_alive(void)
{
	sbx_client *c;

	CHECK_OK(client_open(&c, auth_d.ipc, NULL, NULL, NULL));
	CHECK_OK(health(c));
	sbx_client_close(c);
}

static int
auth_setup(void **state)
{
	char path[700], a_token[1024], a_cert[1024], a_key[1024], a_ca[1024];
	char a_listen[2000], a_events[1024], a_state[1024], a_run[1024];
	const char *args[16];
	sbx_client *c = NULL;
	long long until;
	size_t n = 0;
	int fd;
	unsigned char raw[16];

	(void) state;
	if (geteuid() != 0 || access("/usr/bin/bwrap", X_OK) != 0) {
		exit(SBX_TEST_SKIP);
	}
	auth_dir = sbx_test_scratch("badin-auth");
	chmod(auth_dir, 0711);
	/* A 32-character token from the kernel's random source. */
	fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, raw, sizeof(raw)) != (ssize_t) sizeof(raw)) {
		return -1;
	}
	close(fd);
	for (size_t i = 0; i < sizeof(raw); i++) {
		snprintf(token + 2 * i, 3, "%02x", raw[i]);
	}
	snprintf(path, sizeof(path), "%s/token", auth_dir);
	write_file(path, token, 0600);
	have_tls = make_certs(auth_dir);
	tcp_port = sbx_test_free_port();
	tls_port = sbx_test_free_port();
	auth_d.dir = auth_dir;
	snprintf(auth_d.ipc, sizeof(auth_d.ipc), "ipc://%s/rpc", auth_dir);
	snprintf(auth_d.events, sizeof(auth_d.events), "ipc://%s/events",
	         auth_dir);
	snprintf(auth_d.log, sizeof(auth_d.log), "%s/sbxd.log", auth_dir);
	snprintf(a_state, sizeof(a_state), "--state_dir=%s/state", auth_dir);
	snprintf(a_run, sizeof(a_run), "--run_dir=%s/run", auth_dir);
	tls_events_port = sbx_test_free_port();
	if (have_tls) {
		snprintf(a_events, sizeof(a_events),
		         "--events=%s,tls+tcp://127.0.0.1:%d", auth_d.events,
		         tls_events_port);
	} else {
		snprintf(a_events, sizeof(a_events), "--events=%s",
		         auth_d.events);
	}
	snprintf(a_token, sizeof(a_token), "--token_file=%s", path);
	if (have_tls) {
		snprintf(a_listen, sizeof(a_listen),
		         "--listen=%s,tcp://127.0.0.1:%d,"
		         "tls+tcp://127.0.0.1:%d",
		         auth_d.ipc, tcp_port, tls_port);
	} else {
		snprintf(a_listen, sizeof(a_listen),
		         "--listen=%s,tcp://127.0.0.1:%d", auth_d.ipc,
		         tcp_port);
	}
	snprintf(a_cert, sizeof(a_cert), "--tls_cert_file=%s/srv.pem",
	         auth_dir);
	snprintf(a_key, sizeof(a_key), "--tls_key_file=%s/srv.key", auth_dir);
	snprintf(a_ca, sizeof(a_ca), "--tls_ca_file=%s/ca.pem", auth_dir);
	args[n++] = a_state;
	args[n++] = a_run;
	args[n++] = a_listen;
	args[n++] = a_events;
	args[n++] = a_token;
	if (have_tls) {
		args[n++] = a_cert;
		args[n++] = a_key;
		args[n++] = a_ca;
	}
	args[n] = NULL;
	auth_d.pid = sbxd_exec(args, auth_d.log, false);
	/* Wait for Health on ipc, bounded; give up if sbxd exited. */
	until = sbx_test_mono_ms() + 20000;
	while (sbx_test_mono_ms() < until) {
		int status;

		if (waitpid(auth_d.pid, &status, WNOHANG) == auth_d.pid) {
			auth_d.pid = 0;
			break;
		}
		if (client_open(&c, auth_d.ipc, NULL, NULL, NULL) == SBX_OK) {
			if (health(c) == SBX_OK) {
				sbx_client_close(c);
				return 0;
			}
			sbx_client_close(c);
		}
		usleep(10000);
	}
	{
		char *log = sbx_test_read_file(auth_d.log, NULL);

		fprintf(stderr, "auth sbxd did not start:\n%s\n",
		        log != NULL ? log : "(no log)");
		free(log);
	}
	return -1;
}

/* Kill the auth daemon's sandboxes through the API (cgroups and files go
 * too), then, as a safety net, every process left in its uid range. */
static void
auth_kill_sandboxes(void)
{
	Sbx__V1__ListRequest req = SBX__V1__LIST_REQUEST__INIT;
	Sbx__V1__KillRequest kr = SBX__V1__KILL_REQUEST__INIT;
	Sbx__V1__ListReply *rep;
	ProtobufCMessage *kill_rep;
	sbx_client *c;

	if (client_open(&c, auth_d.ipc, NULL, NULL, NULL) != SBX_OK) {
		return;
	}
	if (sbx_call(c, "List", &req.base, (ProtobufCMessage **) &rep) ==
	    SBX_OK) {
		for (size_t i = 0; i < rep->n_sandboxes; i++) {
			kr.id = rep->sandboxes[i]->id;
			if (sbx_call(c, "Kill", &kr.base, &kill_rep) ==
			    SBX_OK) {
				protobuf_c_message_free_unpacked(kill_rep,
				                                 NULL);
			}
		}
		sbx__v1__list_reply__free_unpacked(rep, NULL);
	}
	sbx_client_close(c);
}

static int
auth_teardown(void **state)
{
	long long until = sbx_test_mono_ms() + 30000;
	int status = 0, rc;

	(void) state;
	if (auth_d.pid <= 0) {
		return -1;
	}
	auth_kill_sandboxes();
	kill(auth_d.pid, SIGTERM);
	while (waitpid(auth_d.pid, &status, WNOHANG) == 0) {
		if (sbx_test_mono_ms() > until) {
			kill(auth_d.pid, SIGKILL);
			waitpid(auth_d.pid, &status, 0);
			break;
		}
		usleep(5000);
	}
	rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	sbxd_kill_uids(own_uid_base(), own_uid_base() + 32);
	if (rc != 0) {
		char *log = sbx_test_read_file(auth_d.log, NULL);

		fprintf(stderr, "auth sbxd exit %d:\n%s\n", rc,
		        log != NULL ? log : "(no log)");
		free(log);
		free(auth_dir);
	} else {
		sbx_test_scratch_free(auth_dir);
	}
	auth_dir = NULL;
	return rc;
}

static void
test_tcp_token(void **state)
{
	Sbx__V1__ListRequest lr = SBX__V1__LIST_REQUEST__INIT;
	ProtobufCMessage *rep = NULL;
	char url[64], wrong[40];
	sbx_client *c;
	Sbx__V1__Result *r;
	nng_socket s;
	size_t len;
	uint8_t *buf;

	(void) state;
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", tcp_port);
	/* No token: every call, even Health, is refused. */
	CHECK_OK(client_open(&c, url, "", NULL, NULL));
	CHECK_ERR(health(c), SBX_EAUTH);
	CHECK(strstr(sbx_last_error(), "token") != NULL);
	CHECK_ERR(sbx_call(c, "List", &lr.base, &rep), SBX_EAUTH);
	sbx_client_close(c);
	/* A wrong token of the same length, and a prefix of the right one. */
	snprintf(wrong, sizeof(wrong), "%s", token);
	wrong[0] = wrong[0] == 'a' ? 'b' : 'a';
	CHECK_OK(client_open(&c, url, wrong, NULL, NULL));
	CHECK_ERR(health(c), SBX_EAUTH);
	sbx_client_close(c);
	wrong[0] = token[0];
	wrong[31] = '\0';
	CHECK_OK(client_open(&c, url, wrong, NULL, NULL));
	CHECK_ERR(health(c), SBX_EAUTH);
	sbx_client_close(c);
	/* The raw view: UNAUTHENTICATED echoes the id, names no secret. */
	buf = pack_call(&len, 1, "Health", 77, 0, NULL, 0);
	s = raw_open(url);
	r = raw_exchange(s, buf, len);
	CHECK_INT(r->status, SBX__V1__STATUS__UNAUTHENTICATED);
	CHECK_INT(r->id, 77);
	CHECK(strstr(r->message, token) == NULL);
	sbx__v1__result__free_unpacked(r, NULL);
	nng_close(s);
	free(buf);
	/* The right token. */
	CHECK_OK(client_open(&c, url, token, NULL, NULL));
	CHECK_OK(health(c));
	CHECK_OK(sbx_call(c, "List", &lr.base, &rep));
	protobuf_c_message_free_unpacked(rep, NULL);
	sbx_client_close(c);
	/* ipc needs none (its socket file is root's, mode 0600). */
	auth_alive();
}

static void
test_start_refusals(void **state)
{
	char a_listen[1024], a_state[1024], a_run[1024], a_tok[1024], a_ev[1024];
	char path[700], a_cert[1024], a_key[1024];
	int port = sbx_test_free_port();

	(void) state;
	snprintf(a_state, sizeof(a_state), "--state_dir=%s/state2", auth_dir);
	snprintf(a_run, sizeof(a_run), "--run_dir=%s/run2", auth_dir);
	snprintf(a_listen, sizeof(a_listen),
	         "--listen=ipc://%s/rpc2,tcp://127.0.0.1:%d", auth_dir, port);
	snprintf(a_ev, sizeof(a_ev), "--events=ipc://%s/events2", auth_dir);
	/* tcp without a token. */
	{
		const char *args[] = {a_state, a_run, a_listen, a_ev, NULL};

		expect_start_failure(args, "needs token_file");
	}
	/* A token file others may read. */
	snprintf(path, sizeof(path), "%s/token-open", auth_dir);
	write_file(path, token, 0644);
	snprintf(a_tok, sizeof(a_tok), "--token_file=%s", path);
	{
		const char *args[] = {a_state, a_run, a_listen, a_ev, a_tok,
		                      NULL};

		expect_start_failure(args, "readable by others");
	}
	/* Group-readable is no better. */
	CHECK_INT(chmod(path, 0640), 0);
	{
		const char *args[] = {a_state, a_run, a_listen, a_ev, a_tok,
		                      NULL};

		expect_start_failure(args, "readable by others");
	}
	/* A token too short to be a secret, and a missing file. */
	snprintf(path, sizeof(path), "%s/token-short", auth_dir);
	write_file(path, "short\n", 0600);
	snprintf(a_tok, sizeof(a_tok), "--token_file=%s", path);
	{
		const char *args[] = {a_state, a_run, a_listen, a_ev, a_tok,
		                      NULL};

		expect_start_failure(args, "16..512 characters");
	}
	snprintf(a_tok, sizeof(a_tok), "--token_file=%s/no-such-token",
	         auth_dir);
	{
		const char *args[] = {a_state, a_run, a_listen, a_ev, a_tok,
		                      NULL};

		expect_start_failure(args, "No such file");
	}
	/* Events on plain tcp, even with a token: events carry sandbox
	 * output and have no per-message auth. */
	snprintf(a_tok, sizeof(a_tok), "--token_file=%s/token", auth_dir);
	snprintf(a_ev, sizeof(a_ev),
	         "--events=ipc://%s/events2,tcp://127.0.0.1:%d", auth_dir,
	         sbx_test_free_port());
	{
		const char *args[] = {a_state, a_run, a_listen, a_ev, a_tok,
		                      NULL};

		expect_start_failure(args, "only ipc:// or tls+tcp://");
	}
	/* Events on tls+tcp without a CA to check subscribers with. */
	snprintf(a_ev, sizeof(a_ev),
	         "--events=ipc://%s/events2,tls+tcp://127.0.0.1:%d", auth_dir,
	         sbx_test_free_port());
	snprintf(a_cert, sizeof(a_cert), "--tls_cert_file=%s/srv.pem",
	         auth_dir);
	snprintf(a_key, sizeof(a_key), "--tls_key_file=%s/srv.key", auth_dir);
	{
		const char *args[] = {a_state, a_run, a_listen, a_ev, a_tok,
		                      a_cert,  a_key, NULL};

		expect_start_failure(args, "needs tls_ca_file");
	}
	/* tls+tcp without a certificate: found when the listener opens,
	 * after the config checks, so sbxd has started its modules and must
	 * wind them down cleanly (exit 1, no sanitizer report). */
	snprintf(a_ev, sizeof(a_ev), "--events=ipc://%s/events2", auth_dir);
	snprintf(a_listen, sizeof(a_listen),
	         "--listen=ipc://%s/rpc2,tls+tcp://127.0.0.1:%d", auth_dir,
	         port);
	{
		const char *args[] = {a_state, a_run, a_listen, a_ev, a_tok,
		                      NULL};
		char log[700], *text;
		int status;

		snprintf(log, sizeof(log), "%s/fail.log", auth_dir);
		status = sbxd_exec(args, log, true);
		text = sbx_test_read_file(log, NULL);
		CHECK(text != NULL);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 1 ||
		    strstr(text, "needs tls_cert_file") == NULL ||
		    strstr(text, "Sanitizer") != NULL) {
			fail_msg("sbxd: status %d, output \"%s\"", status,
			         text);
		}
		free(text);
	}
	/* None of this disturbed the running daemon. */
	auth_alive();
}

static void
test_tls(void **state)
{
	char url[64], ca[700], ca2[700];
	sbx_client *c;
	sbx_err err;

	(void) state;
	if (!have_tls) {
		fprintf(stderr, "skip: TLS cases need openssl\n");
		return;
	}
	snprintf(url, sizeof(url), "tls+tcp://127.0.0.1:%d", tls_port);
	snprintf(ca, sizeof(ca), "%s/ca.pem", auth_dir);
	snprintf(ca2, sizeof(ca2), "%s/ca2.pem", auth_dir);
	/* The right CA and name, with the token. */
	CHECK_OK(client_open(&c, url, token, ca, "sbx.test"));
	CHECK_OK(health(c));
	sbx_client_close(c);
	/* TLS is no substitute for the token. */
	CHECK_OK(client_open(&c, url, "", ca, "sbx.test"));
	CHECK_ERR(health(c), SBX_EAUTH);
	sbx_client_close(c);
	/* No CA, another CA, or a name the certificate does not carry: the
	 * handshake fails, so the connect (or the call) does. */
	{
		const char *cas[] = {NULL, ca2, ca};
		const char *names[] = {"sbx.test", "sbx.test", "other.test"};

		for (int i = 0; i < 3; i++) {
			err = client_open(&c, url, token, cas[i], names[i]);
			if (err == SBX_OK) {
				err = health(c);
				sbx_client_close(c);
			}
			if (err != SBX_EUNAVAIL && err != SBX_ETIMEDOUT) {
				fail_msg("case %d: got %s (%s), want "
				         "UNAVAILABLE", i, sbx_strerror(err),
				         sbx_last_error());
			}
		}
	}
	/* Plain tcp to the TLS port gets nowhere either. */
	{
		char plain[64];

		snprintf(plain, sizeof(plain), "tcp://127.0.0.1:%d", tls_port);
		err = client_open(&c, plain, token, NULL, NULL);
		if (err == SBX_OK) {
			err = health(c);
			sbx_client_close(c);
		}
		CHECK(err == SBX_EUNAVAIL || err == SBX_ETIMEDOUT);
	}
	/* And the daemon still serves TLS clients and ipc. */
	CHECK_OK(client_open(&c, url, token, ca, "sbx.test"));
	CHECK_OK(health(c));
	sbx_client_close(c);
	auth_alive();
}

struct collect {
	char out[256];
	char err[256];
};

static void
collect_data(void *arg, Sbx__V1__Event__BodyCase kind, const uint8_t *data,
             size_t len)
{
	struct collect *col = arg;
	char *buf = kind == SBX__V1__EVENT__BODY_STDERR ? col->err : col->out;
	size_t have = strlen(buf);

	if (have + len < sizeof(col->out)) {
		memcpy(buf + have, data, len);
		buf[have + len] = '\0';
	}
}

static void
test_tls_events(void **state)
{
	Sbx__V1__ProcessStartRequest req = SBX__V1__PROCESS_START_REQUEST__INIT;
	Sbx__V1__CreateRequest cr = SBX__V1__CREATE_REQUEST__INIT;
	Sbx__V1__KillRequest kr = SBX__V1__KILL_REQUEST__INIT;
	Sbx__V1__SandboxInfo *info;
	struct collect col = {{0}, {0}};
	struct sbx_stream_cbs cbs = {.arg = &col, .on_data = collect_data};
	struct sbx_client_opts o = {0};
	char url[64], evurl[64], ca[700], cert[700], key[700], *id;
	ProtobufCMessage *rep;
	int32_t code = -1, sig = -1;
	sbx_client *c, *nocert;

	(void) state;
	if (!have_tls) {
		fprintf(stderr, "skip: TLS cases need openssl\n");
		return;
	}
	snprintf(url, sizeof(url), "tls+tcp://127.0.0.1:%d", tls_port);
	snprintf(evurl, sizeof(evurl), "tls+tcp://127.0.0.1:%d",
	         tls_events_port);
	snprintf(ca, sizeof(ca), "%s/ca.pem", auth_dir);
	snprintf(cert, sizeof(cert), "%s/cli.pem", auth_dir);
	snprintf(key, sizeof(key), "%s/cli.key", auth_dir);
	o.url = url;
	o.events_url = evurl;
	o.token = token;
	o.tls_ca_file = ca;
	o.tls_server_name = "sbx.test";
	o.tls_cert_file = cert;
	o.tls_key_file = key;
	o.timeout_ms = 60000;
	/* Everything over TLS: calls with the token, events with a client
	 * certificate the daemon's CA signed. */
	CHECK_OK(sbx_client_open(&c, &o));
	CHECK_OK(sbx_call(c, "Create", &cr.base, (ProtobufCMessage **) &info));
	id = strdup(info->id);
	sbx__v1__sandbox_info__free_unpacked(info, NULL);
	req.sandbox_id = id;
	req.command = "echo over-tls; echo err >&2; exit 3";
	CHECK_OK(sbx_process_run(c, &req, &cbs, 60000, NULL, &code, &sig));
	CHECK_STR(col.out, "over-tls\n");
	CHECK_STR(col.err, "err\n");
	CHECK_INT(code, 3);
	CHECK_INT(sig, 0);
	/* Without a client certificate the event socket stays shut, and
	 * the process is never started blind. */
	o.tls_cert_file = NULL;
	o.tls_key_file = NULL;
	CHECK_OK(sbx_client_open(&nocert, &o));
	CHECK_OK(health(nocert));
	req.command = "echo should-not-run > /home/user/ran";
	CHECK_ERR(sbx_process_run(nocert, &req, &cbs, 10000, NULL, &code,
	                          &sig),
	          SBX_EUNAVAIL);
	CHECK(strstr(sbx_last_error(), "events") != NULL);
	sbx_client_close(nocert);
	{
		void *data = NULL;
		size_t len = 0;

		CHECK_ERR(sbx_file_read(c, id, "/home/user/ran", NULL, &data,
		                        &len, 1024),
		          SBX_ENOTFOUND);
	}
	kr.id = id;
	CHECK_OK(sbx_call(c, "Kill", &kr.base, &rep));
	protobuf_c_message_free_unpacked(rep, NULL);
	sbx_client_close(c);
	free(id);
	auth_alive();
}

int
main(void)
{
	const struct CMUnitTest input[] = {
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_empty_message),
		cmocka_unit_test(test_wire_version),
		cmocka_unit_test(test_unknown_method),
		cmocka_unit_test(test_oversized_token),
		cmocka_unit_test(test_bad_payload),
		cmocka_unit_test(test_over_cap),
		cmocka_unit_test(test_far_over_cap),
		cmocka_unit_test(test_deadline),
		cmocka_unit_test(test_generated_stubs),
	};
	const struct CMUnitTest auth[] = {
		cmocka_unit_test(test_tcp_token),
		cmocka_unit_test(test_start_refusals),
		cmocka_unit_test(test_tls),
		cmocka_unit_test(test_tls_events),
	};
	int failed = cmocka_run_group_tests_name("bad_input", input, setup,
	                                         teardown);

	return failed + cmocka_run_group_tests_name("listeners", auth,
	                                            auth_setup,
	                                            auth_teardown);
}
