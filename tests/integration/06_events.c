/*
 * Events: a subscriber that falls behind (NNG PUB drops for it) still gets
 * every byte, repaired from sbxd's backlog; one that falls behind further
 * than the backlog holds gets a clear DATA_LOSS, never silently less.
 */
#include <time.h>
#include <unistd.h>

#include "sbx_test.h"
#include "sbxd_fixture.h"

/* Each test runs its own daemon (settings differ); the teardown stops it
 * even when a check failed half-way, so no daemon outlives its test. */
static struct sbxd_fixture f6;
static bool f6_up;

static int
fixture_start(const char *name, const char *const *extra)
{
	int rc = sbxd_start(&f6, name, extra);

	f6_up = rc == 0;
	return rc;
}

static int
fixture_stop(void)
{
	if (!f6_up) {
		return 0;
	}
	f6_up = false;
	return sbxd_stop(&f6, false);
}

static int
teardown(void **state)
{
	(void) state;
	return fixture_stop();
}

struct slow {
	sbx_client *c;         /* for polling the process from the callback */
	const char *sandbox;
	const char *stream;
	bool waited;
	uint8_t *buf;
	size_t len;
	size_t cap;
	bool bad_order;
};

/* True once the process behind S has ended (from sbxd's view). */
static bool
process_ended(struct slow *s)
{
	Sbx__V1__ProcessListRequest req = SBX__V1__PROCESS_LIST_REQUEST__INIT;
	Sbx__V1__ProcessListReply *rep;
	bool ended = false;

	req.sandbox_id = (char *) s->sandbox;
	if (sbx_call(s->c, "ProcessList", &req.base,
	             (ProtobufCMessage **) &rep) != SBX_OK) {
		return false;
	}
	for (size_t i = 0; i < rep->n_processes; i++) {
		if (strcmp(rep->processes[i]->stream, s->stream) == 0) {
			ended = !rep->processes[i]->running;
		}
	}
	sbx__v1__process_list_reply__free_unpacked(rep, NULL);
	return ended;
}

/*
 * The first callback blocks the I/O thread until the process has written
 * all its output: with a tiny event queue, nearly every event published
 * meanwhile is dropped for this subscriber.
 */
static void
slow_data(void *arg, Sbx__V1__Event__BodyCase kind, const uint8_t *data,
          size_t len)
{
	struct slow *s = arg;
	long long until = sbx_test_mono_ms() + 30000;

	(void) kind;
	if (!s->waited) {
		s->waited = true;
		while (!process_ended(s) && sbx_test_mono_ms() < until) {
			usleep(10000);
		}
	}
	if (s->len + len > s->cap) {
		s->cap = (s->len + len) * 2;
		s->buf = realloc(s->buf, s->cap);
	}
	memcpy(s->buf + s->len, data, len);
	s->len += len;
}

/* Output of the producer: LINES lines "line %06d\n" of 12 bytes. */
static bool
lines_exact(const struct slow *s, int lines)
{
	char want[16];

	if (s->len != (size_t) lines * 12) {
		return false;
	}
	for (int i = 0; i < lines; i++) {
		snprintf(want, sizeof(want), "line %06d\n", i);
		if (memcmp(s->buf + (size_t) i * 12, want, 12) != 0) {
			return false;
		}
	}
	return true;
}

/* Run the producer of LINES lines, consumed by a slow client. */
static sbx_err
run_slow(struct sbxd_fixture *f, const char *sandbox, int lines,
         struct slow *s, uint64_t *fetched)
{
	Sbx__V1__ProcessStartRequest req = SBX__V1__PROCESS_START_REQUEST__INIT;
	struct sbx_client_opts o = {0};
	struct sbx_stream_cbs cbs = {.arg = s, .on_data = slow_data};
	char cmd[256], stream[24];
	ProtobufCMessage *rep;
	sbx_client *c;
	sbx_stream *st;
	sbx_err err;

	o.url = f->rpc_url;
	o.events_url = f->events_url;
	o.event_queue = 2; /* tiny: the subscriber must fall behind */
	CHECK_OK(sbx_client_open(&c, &o));
	sbx_stream_id(stream);
	s->c = f->c;
	s->sandbox = sandbox;
	s->stream = stream;
	/* printf flushes per line: many small events. */
	snprintf(cmd, sizeof(cmd),
	         "i=0; while [ $i -lt %d ]; do printf 'line %%06d\\n' $i; "
	         "i=$((i+1)); done",
	         lines);
	CHECK_OK(sbx_stream_open(c, sandbox, stream, &cbs, &st));
	req.sandbox_id = (char *) sandbox;
	req.stream = stream;
	req.command = cmd;
	CHECK_OK(sbx_call(f->c, "ProcessStart", &req.base, &rep));
	protobuf_c_message_free_unpacked(rep, NULL);
	err = sbx_stream_wait(st, 120000, NULL, NULL);
	*fetched = sbx_stream_fetched(st);
	sbx_stream_close(st);
	sbx_client_close(c);
	return err;
}

static void
test_slow_subscriber_repaired(void **state)
{
	static const char *const extra[] = {"--event_backlog_bytes=4194304",
	                                    NULL};
	struct slow s = {0};
	uint64_t fetched = 0;
	char *id;
	int rc = fixture_start("events", extra);

	(void) state;
	if (rc == SBX_TEST_SKIP) {
		skip();
	}
	CHECK_INT(rc, 0);
	CHECK((id = sbxd_create(&f6, NULL)) != NULL);
	/* 20000 lines, 240 KB: well inside the 4 MiB backlog. */
	CHECK_OK(run_slow(&f6, id, 20000, &s, &fetched));
	CHECK(lines_exact(&s, 20000));
	/* Proof that events were dropped and repaired, not just received. */
	print_message("events repaired from the backlog: %llu\n",
	              (unsigned long long) fetched);
	CHECK(fetched > 0);
	free(s.buf);
	free(id);
	CHECK_INT(fixture_stop(), 0);
}

static void
test_overrun_is_data_loss(void **state)
{
	static const char *const extra[] = {"--event_backlog_bytes=16384",
	                                    NULL};
	struct slow s = {0};
	uint64_t fetched = 0;
	char *id;
	sbx_err err;
	int rc = fixture_start("overrun", extra);

	(void) state;
	if (rc == SBX_TEST_SKIP) {
		skip();
	}
	CHECK_INT(rc, 0);
	CHECK((id = sbxd_create(&f6, NULL)) != NULL);
	/* 240 KB against a 16 KiB backlog while the client is stalled. */
	err = run_slow(&f6, id, 20000, &s, &fetched);
	CHECK_INT(err, SBX_EDATALOSS);
	CHECK(strstr(sbx_last_error(), "dropped") != NULL);
	CHECK(s.len < 20000 * 12);
	free(s.buf);
	free(id);
	CHECK_INT(fixture_stop(), 0);
}

static void
test_fetch_pages(void **state)
{
	Sbx__V1__EventsFetchRequest req = SBX__V1__EVENTS_FETCH_REQUEST__INIT;
	Sbx__V1__EventsFetchReply *rep;
	char *id, *out = NULL;
	uint64_t next = 1;
	size_t total = 0;
	int code = -1, pages = 0, rc = fixture_start("fetch", NULL);
	Sbx__V1__ProcessStartRequest ps = SBX__V1__PROCESS_START_REQUEST__INIT;
	ProtobufCMessage *psr;
	long long until;
	bool ended = false;

	(void) state;
	(void) out;
	(void) code;
	if (rc == SBX_TEST_SKIP) {
		skip();
	}
	CHECK_INT(rc, 0);
	CHECK((id = sbxd_create(&f6, NULL)) != NULL);
	ps.sandbox_id = id;
	ps.stream = "pages";
	ps.command = "for i in 1 2 3 4 5 6 7 8; do head -c 3000 /dev/zero; "
	             "sleep 0.05; done";
	CHECK_OK(sbx_call(f6.c, "ProcessStart", &ps.base, &psr));
	protobuf_c_message_free_unpacked(psr, NULL);
	req.sandbox_id = id;
	req.stream = "pages";
	req.max_bytes = 4000;
	until = sbx_test_mono_ms() + 30000;
	while (!ended && sbx_test_mono_ms() < until) {
		req.from_seq = next;
		CHECK_OK(sbx_call(f6.c, "EventsFetch", &req.base,
		                  (ProtobufCMessage **) &rep));
		for (size_t i = 0; i < rep->n_events; i++) {
			CHECK_INT(rep->events[i]->seq, next);
			next++;
			if (rep->events[i]->body_case ==
			    SBX__V1__EVENT__BODY_STDOUT) {
				total += rep->events[i]->stdout.len;
			}
			ended = rep->events[i]->body_case ==
			        SBX__V1__EVENT__BODY_EXIT;
		}
		CHECK_INT(rep->next_seq >= next, 1);
		pages++;
		sbx__v1__events_fetch_reply__free_unpacked(rep, NULL);
		if (!ended) {
			usleep(20000);
		}
	}
	CHECK(ended);
	CHECK_INT(total, 24000);
	CHECK(pages > 1);
	/* Past the end: empty and ended. */
	req.from_seq = next;
	CHECK_OK(sbx_call(f6.c, "EventsFetch", &req.base,
	                  (ProtobufCMessage **) &rep));
	CHECK_INT(rep->n_events, 0);
	CHECK(rep->ended);
	sbx__v1__events_fetch_reply__free_unpacked(rep, NULL);
	req.stream = "nope";
	CHECK_ERR(sbx_call(f6.c, "EventsFetch", &req.base,
	                   (ProtobufCMessage **) &rep),
	          SBX_ENOTFOUND);
	free(id);
	CHECK_INT(fixture_stop(), 0);
}

struct count {
	uint64_t bytes;
	bool bad;
	unsigned calls;
};

/* A slow reader: every 16th chunk it sleeps, and it checks every byte. */
static void
count_data(void *arg, Sbx__V1__Event__BodyCase kind, const uint8_t *data,
           size_t len)
{
	struct count *c = arg;

	(void) kind;
	for (size_t i = 0; i < len; i++) {
		c->bad |= data[i] != 'x';
	}
	c->bytes += len;
	if (++c->calls % 16 == 0) {
		usleep(2000);
	}
}

static void
test_held_follower_loses_nothing(void **state)
{
	static const char *const extra[] = {"--event_backlog_bytes=16384",
	                                    NULL};
	Sbx__V1__ProcessStartRequest req = SBX__V1__PROCESS_START_REQUEST__INIT;
	struct sbx_client_opts o = {0};
	struct count cnt = {0};
	struct sbx_stream_cbs cbs = {.arg = &cnt, .on_data = count_data};
	int32_t code = -1;
	sbx_client *c;
	char *id;
	int rc = fixture_start("held", extra);

	(void) state;
	if (rc == SBX_TEST_SKIP) {
		skip();
	}
	CHECK_INT(rc, 0);
	CHECK((id = sbxd_create(&f6, NULL)) != NULL);
	/* The same tiny backlog and a 2-message event queue as the overrun
	 * case, 20 MB of output and a slow reader: held, nothing is lost. */
	o.url = f6.rpc_url;
	o.events_url = f6.events_url;
	o.event_queue = 2;
	CHECK_OK(sbx_client_open(&c, &o));
	req.sandbox_id = id;
	req.command = "head -c 20000000 /dev/zero | tr '\\0' x";
	CHECK_OK(sbx_process_run(c, &req, &cbs, 300000, NULL, &code, NULL));
	CHECK_INT(code, 0);
	CHECK_INT(cnt.bytes, 20000000);
	CHECK(!cnt.bad);
	sbx_client_close(c);
	free(id);
	CHECK_INT(fixture_stop(), 0);
}

static bool
still_running(struct sbxd_fixture *f, const char *id, const char *stream)
{
	Sbx__V1__ProcessListRequest req = SBX__V1__PROCESS_LIST_REQUEST__INIT;
	Sbx__V1__ProcessListReply *rep;
	bool running = false;

	req.sandbox_id = (char *) id;
	CHECK_OK(sbx_call(f->c, "ProcessList", &req.base,
	                  (ProtobufCMessage **) &rep));
	for (size_t i = 0; i < rep->n_processes; i++) {
		if (strcmp(rep->processes[i]->stream, stream) == 0) {
			running = rep->processes[i]->running;
		}
	}
	sbx__v1__process_list_reply__free_unpacked(rep, NULL);
	return running;
}

static void
hold(struct sbxd_fixture *f, const char *id, const char *stream,
     const char *holder, uint32_t ttl_ms, sbx_err want)
{
	Sbx__V1__StreamHoldRequest req = SBX__V1__STREAM_HOLD_REQUEST__INIT;
	ProtobufCMessage *rep;
	sbx_err err;

	req.sandbox_id = (char *) id;
	req.stream = (char *) stream;
	req.holder = (char *) holder;
	req.ttl_ms = ttl_ms;
	err = sbx_call(f->c, "StreamHold", &req.base, &rep);
	CHECK_INT(err, want);
	if (err == SBX_OK) {
		protobuf_c_message_free_unpacked(rep, NULL);
	}
}

/* Wait (bounded) for the process of STREAM to end. */
static bool
ends_within(struct sbxd_fixture *f, const char *id, const char *stream,
            long long ms)
{
	long long until = sbx_test_mono_ms() + ms;

	while (still_running(f, id, stream)) {
		if (sbx_test_mono_ms() > until) {
			return false;
		}
		usleep(20000);
	}
	return true;
}

static void
test_hold_blocks_release_and_lapse(void **state)
{
	Sbx__V1__ProcessStartRequest req = SBX__V1__PROCESS_START_REQUEST__INIT;
	ProtobufCMessage *rep;
	char *id;
	int rc = fixture_start("hold", NULL);

	(void) state;
	if (rc == SBX_TEST_SKIP) {
		skip();
	}
	CHECK_INT(rc, 0);
	CHECK((id = sbxd_create(&f6, NULL)) != NULL);
	/* Held by a follower that reads nothing: 8 MB of output cannot pass
	 * sbx-init's 1 MiB window, so the process stays blocked. */
	req.sandbox_id = id;
	req.stream = "held";
	req.hold = "nobody-reads";
	req.command = "head -c 8000000 /dev/zero";
	CHECK_OK(sbx_call(f6.c, "ProcessStart", &req.base, &rep));
	protobuf_c_message_free_unpacked(rep, NULL);
	usleep(1000000);
	CHECK(still_running(&f6, id, "held"));
	/* Released, it runs to its end. */
	hold(&f6, id, "held", "nobody-reads", 0, SBX_OK);
	CHECK(ends_within(&f6, id, "held", 20000));

	/* A hold that is not refreshed lapses by itself. */
	req.stream = "lapse";
	req.hold = "gone";
	CHECK_OK(sbx_call(f6.c, "ProcessStart", &req.base, &rep));
	protobuf_c_message_free_unpacked(rep, NULL);
	hold(&f6, id, "lapse", "gone", 300, SBX_OK);
	CHECK(ends_within(&f6, id, "lapse", 20000));

	/* Bad holds. */
	hold(&f6, id, "lapse", "bad holder!", 100, SBX_EINVAL);
	hold(&f6, id, "lapse", "ok", 600001, SBX_EINVAL);
	hold(&f6, id, "nope", "ok", 100, SBX_ENOTFOUND);
	free(id);
	CHECK_INT(fixture_stop(), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_slow_subscriber_repaired, teardown),
		cmocka_unit_test_teardown(test_overrun_is_data_loss, teardown),
		cmocka_unit_test_teardown(test_fetch_pages, teardown),
		cmocka_unit_test_teardown(test_held_follower_loses_nothing, teardown),
		cmocka_unit_test_teardown(test_hold_blocks_release_and_lapse, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
