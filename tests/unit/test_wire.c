/*
 * wire.c: envelopes, payload placement, event topics, id rules.
 */
#include <errno.h>

#include "sbx_test.h"
#include "wire.h"

static void
test_call_round_trip(void **state)
{
	Sbx__V1__GetRequest req = SBX__V1__GET_REQUEST__INIT;
	struct sbx_wire_buf b;
	Sbx__V1__Call *call = NULL;
	ProtobufCMessage *m = NULL;
	const char *why = NULL;

	(void) state;
	req.id = "abc123";
	sbx_wire_buf_init(&b);
	sbx_wire_call_encode(&b.base, "Get", 42, 1500, "tok", &req.base);
	CHECK(!b.failed);
	CHECK_INT(b.len, sbx_wire_call_size("Get", 42, 1500, "tok", &req.base));
	CHECK_OK(sbx_wire_call_decode(b.data, b.len, &call, &why));
	CHECK_STR(call->method, "Get");
	CHECK_INT(call->id, 42);
	CHECK_INT(call->timeout_ms, 1500);
	CHECK_STR(call->token, "tok");
	CHECK_OK(sbx_wire_unpack(&sbx__v1__get_request__descriptor,
	                         call->payload.data, call->payload.len, &m));
	CHECK_STR(((Sbx__V1__GetRequest *) m)->id, "abc123");
	protobuf_c_message_free_unpacked(m, NULL);
	sbx__v1__call__free_unpacked(call, NULL);
	sbx_wire_buf_fini(&b);
}

static void
test_call_rejects_bad_envelopes(void **state)
{
	static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
	Sbx__V1__Call c = SBX__V1__CALL__INIT;
	struct sbx_wire_buf b;
	Sbx__V1__Call *call = NULL;
	const char *why = NULL;
	char longname[100];

	(void) state;
	CHECK_ERR(sbx_wire_call_decode(garbage, sizeof(garbage), &call, &why),
	          SBX_EINVAL);
	CHECK(why != NULL);

	/* Version 0 (field absent) is refused with a reason. */
	c.method = "Get";
	sbx_wire_buf_init(&b);
	sbx__v1__call__pack_to_buffer(&c, &b.base);
	why = NULL;
	CHECK_ERR(sbx_wire_call_decode(b.data, b.len, &call, &why), SBX_EINVAL);
	CHECK(strstr(why, "version") != NULL);
	sbx_wire_buf_fini(&b);

	/* Oversized method name. */
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	sbx_wire_buf_init(&b);
	sbx_wire_call_encode(&b.base, longname, 1, 0, NULL, NULL);
	CHECK_ERR(sbx_wire_call_decode(b.data, b.len, &call, &why), SBX_EINVAL);
	sbx_wire_buf_fini(&b);

	/* A truncated envelope. */
	sbx_wire_buf_init(&b);
	sbx_wire_call_encode(&b.base, "Get", 1, 0, NULL, NULL);
	CHECK_ERR(sbx_wire_call_decode(b.data, b.len - 1, &call, &why),
	          SBX_EINVAL);
	sbx_wire_buf_fini(&b);
}

static void
test_result_round_trip(void **state)
{
	Sbx__V1__HealthReply rep = SBX__V1__HEALTH_REPLY__INIT;
	Sbx__V1__HealthReply *got;
	struct sbx_wire_buf b;
	Sbx__V1__Result *r = NULL;

	(void) state;
	rep.version = "9.9";
	rep.sandboxes_running = 7;
	sbx_wire_buf_init(&b);
	sbx_wire_result_encode(&b.base, 9, SBX_OK, NULL, &rep.base);
	CHECK_OK(sbx_wire_result_decode(b.data, b.len, &r));
	CHECK_INT(r->id, 9);
	CHECK_INT(r->status, SBX_OK);
	got = sbx__v1__health_reply__unpack(NULL, r->payload.len,
	                                    r->payload.data);
	CHECK(got != NULL);
	CHECK_STR(got->version, "9.9");
	CHECK_INT(got->sandboxes_running, 7);
	sbx__v1__health_reply__free_unpacked(got, NULL);
	sbx__v1__result__free_unpacked(r, NULL);
	sbx_wire_buf_fini(&b);

	/* Errors carry the message and drop any payload. */
	sbx_wire_buf_init(&b);
	sbx_wire_result_encode(&b.base, 10, SBX_ENOTFOUND, "no sandbox x",
	                       &rep.base);
	CHECK_OK(sbx_wire_result_decode(b.data, b.len, &r));
	CHECK_INT(r->status, SBX_ENOTFOUND);
	CHECK_STR(r->message, "no sandbox x");
	CHECK_INT(r->payload.len, 0);
	sbx__v1__result__free_unpacked(r, NULL);
	sbx_wire_buf_fini(&b);
}

static void
test_event_topics(void **state)
{
	Sbx__V1__Event ev = SBX__V1__EVENT__INIT;
	Sbx__V1__Event *got = NULL;
	struct sbx_wire_buf b;
	char topic[160];

	(void) state;
	ev.sandbox_id = "4f1c";
	ev.stream = "p-1";
	ev.seq = 3;
	ev.body_case = SBX__V1__EVENT__BODY_STDOUT;
	ev.stdout.data = (uint8_t *) "hi\n";
	ev.stdout.len = 3;
	sbx_wire_buf_init(&b);
	sbx_wire_event_encode(&b.base, &ev);
	CHECK(memcmp(b.data, "4f1c p-1\n", 9) == 0);
	CHECK_OK(sbx_wire_event_decode(b.data, b.len, &got));
	CHECK_INT(got->seq, 3);
	CHECK_INT(got->stdout.len, 3);
	sbx__v1__event__free_unpacked(got, NULL);

	/* A topic that does not match the body is refused. */
	b.data[0] = '5';
	CHECK_ERR(sbx_wire_event_decode(b.data, b.len, &got), SBX_EINVAL);
	sbx_wire_buf_fini(&b);

	CHECK_INT(sbx_wire_topic(topic, sizeof(topic), "4f1c", NULL), 5);
	CHECK_STR(topic, "4f1c ");
	CHECK_INT(sbx_wire_topic(topic, sizeof(topic), "4f1c", "a/b"), 0);
	CHECK_INT(sbx_wire_topic(topic, 4, "4f1c", "x"), 0);
}

static void
test_id_rules(void **state)
{
	(void) state;
	CHECK(sbx_wire_id_valid("0a1b2c"));
	CHECK(!sbx_wire_id_valid(""));
	CHECK(!sbx_wire_id_valid("ABC"));
	CHECK(!sbx_wire_id_valid("a b"));
	CHECK(!sbx_wire_id_valid("../x"));
	CHECK(sbx_wire_stream_valid("Exec.1_x-2"));
	CHECK(!sbx_wire_stream_valid("a\nb"));
	CHECK(!sbx_wire_stream_valid(
	        "0123456789012345678901234567890123456789012345678901234567890"
	        "12345"));
}

static void
test_errno_map(void **state)
{
	(void) state;
	CHECK_INT(sbx_err_from_errno(ENOENT), SBX_ENOTFOUND);
	CHECK_INT(sbx_err_from_errno(EEXIST), SBX_EEXIST);
	CHECK_INT(sbx_err_from_errno(EROFS), SBX_EPERM);
	CHECK_INT(sbx_err_from_errno(ENOSPC), SBX_ELIMIT);
	CHECK_INT(sbx_err_from_errno(ENOTEMPTY), SBX_ESTATE);
	CHECK_STR(sbx_strerror(SBX_EAUTH), "UNAUTHENTICATED");
	CHECK_STR(sbx_strerror((sbx_err) 99), "UNKNOWN_STATUS");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_call_round_trip),
		cmocka_unit_test(test_call_rejects_bad_envelopes),
		cmocka_unit_test(test_result_round_trip),
		cmocka_unit_test(test_event_topics),
		cmocka_unit_test(test_id_rules),
		cmocka_unit_test(test_errno_map),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
