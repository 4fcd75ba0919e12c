/*
 * Pure pieces of sbxd: config parsing, the hash map, event backlogs, and
 * parsing bwrap's info.
 */
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "events.h"
#include "hmap.h"
#include "jail.h"
#include "sbx_test.h"

static void
test_config(void **state)
{
	struct config cfg;
	char why[256], *dir, path[600];
	FILE *f;

	(void) state;
	CHECK_OK(config_defaults(&cfg));
	CHECK_STR(cfg.listen, "ipc:///run/sbx/rpc");
	CHECK_INT(cfg.default_timeout_s, 300);
	CHECK(!cfg.network_allow);
	CHECK_ERR(config_set(&cfg, "nope", "1", why, sizeof(why)), SBX_EINVAL);
	CHECK(strstr(why, "nope") != NULL);
	CHECK_ERR(config_set(&cfg, "max_sandboxes", "0", why, sizeof(why)),
	          SBX_EINVAL);
	CHECK_ERR(config_set(&cfg, "max_sandboxes", "12x", why, sizeof(why)),
	          SBX_EINVAL);
	CHECK_ERR(config_set(&cfg, "network", "maybe", why, sizeof(why)),
	          SBX_EINVAL);
	CHECK_OK(config_set(&cfg, "network", "allow", why, sizeof(why)));
	CHECK(cfg.network_allow);

	dir = sbx_test_scratch("config");
	snprintf(path, sizeof(path), "%s/sbxd.conf", dir);
	f = fopen(path, "w");
	fprintf(f, "# comment\n\nmax_sandboxes = 7\n  log_level=debug  \n");
	fclose(f);
	CHECK_OK(config_load_file(&cfg, path, why, sizeof(why)));
	CHECK_INT(cfg.max_sandboxes, 7);
	CHECK_INT(cfg.log_level, 4);
	f = fopen(path, "w");
	fprintf(f, "max_sandboxes 7\n");
	fclose(f);
	CHECK_ERR(config_load_file(&cfg, path, why, sizeof(why)), SBX_EINVAL);
	CHECK(strstr(why, ":1:") != NULL);

	/* A non-ipc rpc listener without a token is refused. */
	CHECK_OK(config_set(&cfg, "listen", "tcp://127.0.0.1:1", why,
	                    sizeof(why)));
	CHECK_ERR(config_finish(&cfg, why, sizeof(why)), SBX_EINVAL);
	CHECK(strstr(why, "token") != NULL);
	config_fini(&cfg);

	/* Plain tcp events are refused: events have no per-message auth. */
	CHECK_OK(config_defaults(&cfg));
	CHECK_OK(config_set(&cfg, "events", "tcp://127.0.0.1:1", why,
	                    sizeof(why)));
	CHECK_ERR(config_finish(&cfg, why, sizeof(why)), SBX_EINVAL);
	config_fini(&cfg);

	/* A token file readable by others is refused. */
	CHECK_OK(config_defaults(&cfg));
	snprintf(path, sizeof(path), "%s/token", dir);
	f = fopen(path, "w");
	fprintf(f, "0123456789abcdef0123\n");
	fclose(f);
	chmod(path, 0644);
	CHECK_OK(config_set(&cfg, "token_file", path, why, sizeof(why)));
	CHECK_ERR(config_finish(&cfg, why, sizeof(why)), SBX_EPERM);
	chmod(path, 0600);
	config_fini(&cfg);
	CHECK_OK(config_defaults(&cfg));
	CHECK_OK(config_set(&cfg, "token_file", path, why, sizeof(why)));
	CHECK_OK(config_set(&cfg, "listen", "ipc:///x,tcp://127.0.0.1:5", why,
	                    sizeof(why)));
	CHECK_OK(config_finish(&cfg, why, sizeof(why)));
	CHECK_STR(cfg.token, "0123456789abcdef0123");
	CHECK_STR(cfg.rpc_urls[1], "tcp://127.0.0.1:5");
	CHECK(cfg.rpc_urls[2] == NULL);
	config_fini(&cfg);
	sbx_test_scratch_free(dir);
}

static void
test_hmap(void **state)
{
	static char keys[2000][16];
	struct hmap h;
	size_t pos = 0, n = 0;
	void *v;

	(void) state;
	hmap_init(&h);
	for (int i = 0; i < 2000; i++) {
		snprintf(keys[i], sizeof(keys[i]), "k%d", i);
		CHECK_OK(hmap_put(&h, keys[i], keys[i]));
	}
	CHECK_ERR(hmap_put(&h, "k7", keys[7]), SBX_EEXIST);
	for (int i = 0; i < 2000; i += 2) {
		CHECK(hmap_del(&h, keys[i]) == keys[i]);
	}
	CHECK(hmap_get(&h, "k4") == NULL);
	CHECK(hmap_get(&h, "k5") == keys[5]);
	while (hmap_next(&h, &pos, &v)) {
		n++;
	}
	CHECK_INT(n, 1000);
	CHECK_INT(h.n, 1000);
	/* Reinsert into tombstones. */
	for (int i = 0; i < 2000; i += 2) {
		CHECK_OK(hmap_put(&h, keys[i], keys[i]));
	}
	CHECK_INT(h.n, 2000);
	hmap_fini(&h);
}

static void
append_text(struct backlog *b, uint64_t seq, const char *text)
{
	Sbx__V1__Event ev = SBX__V1__EVENT__INIT;

	ev.stream = "s";
	ev.seq = seq;
	ev.body_case = SBX__V1__EVENT__BODY_STDOUT;
	ev.stdout.data = (uint8_t *) text;
	ev.stdout.len = strlen(text);
	backlog_append(b, &ev);
}

static void
test_backlog(void **state)
{
	Sbx__V1__ProcessExit exit = SBX__V1__PROCESS_EXIT__INIT;
	Sbx__V1__Event ev = SBX__V1__EVENT__INIT;
	Sbx__V1__EventsFetchReply rep;
	struct backlog b;
	char why[256];

	(void) state;
	backlog_init(&b, 10);
	append_text(&b, 1, "aaaa");
	append_text(&b, 2, "bbbb");
	append_text(&b, 2, "dupe"); /* a replayed duplicate is ignored */
	CHECK_INT(b.next_seq, 3);
	CHECK_OK(backlog_fetch(&b, "sb", "s", 1, 100, &rep, why, sizeof(why)));
	CHECK_INT(rep.n_events, 2);
	CHECK(memcmp(rep.events[1]->stdout.data, "bbbb", 4) == 0);
	backlog_fetch_fini(&rep);
	append_text(&b, 3, "cccc"); /* over 10 bytes: seq 1 is dropped */
	CHECK_INT(backlog_first_seq(&b), 2);
	CHECK_ERR(backlog_fetch(&b, "sb", "s", 1, 100, &rep, why, sizeof(why)),
	          SBX_EDATALOSS);
	CHECK(strstr(why, "events 1..1") != NULL);
	/* max_bytes limits a page but never to zero events. */
	CHECK_OK(backlog_fetch(&b, "sb", "s", 2, 1, &rep, why, sizeof(why)));
	CHECK_INT(rep.n_events, 1);
	CHECK_INT(rep.next_seq, 4);
	CHECK(!rep.ended);
	backlog_fetch_fini(&rep);
	/* A seq jump (lost upstream) empties what came before the hole. */
	append_text(&b, 9, "zz");
	CHECK_INT(backlog_first_seq(&b), 9);
	CHECK_ERR(backlog_fetch(&b, "sb", "s", 4, 100, &rep, why, sizeof(why)),
	          SBX_EDATALOSS);
	exit.exit_code = 3;
	exit.status = "exited";
	ev.stream = "s";
	ev.seq = 10;
	ev.body_case = SBX__V1__EVENT__BODY_EXIT;
	ev.exit = &exit;
	CHECK(backlog_append(&b, &ev));
	CHECK(b.ended);
	CHECK_OK(backlog_fetch(&b, "sb", "s", 10, 100, &rep, why, sizeof(why)));
	CHECK_INT(rep.n_events, 1);
	CHECK_INT(rep.events[0]->exit->exit_code, 3);
	CHECK(rep.ended);
	backlog_fetch_fini(&rep);
	/* Nothing after the end. */
	append_text(&b, 11, "late");
	CHECK_INT(b.next_seq, 11);
	backlog_fini(&b);
}

static void
test_jail_info(void **state)
{
	static const char info[] = "{\n    \"child-pid\": 4242,\n"
	                           "    \"cgroup-namespace\": 4026532\n}\n";
	uint64_t start = 0;
	pid_t pid = 0;

	(void) state;
	CHECK_OK(jail_info_pid(info, sizeof(info) - 1, &pid));
	CHECK_INT(pid, 4242);
	CHECK_ERR(jail_info_pid("{}", 2, &pid), SBX_EINVAL);
	CHECK_ERR(jail_info_pid("\"child-pid\": x", 14, &pid), SBX_EINVAL);
	CHECK_ERR(jail_info_pid("\"child-pid\": 99999999999", 24, &pid),
	          SBX_EINVAL);
	/* Truncated JSON is no pid. */
	CHECK_ERR(jail_info_pid(info, 14, &pid), SBX_EINVAL);
	CHECK_OK(jail_start_time(getpid(), &start));
	CHECK(start > 0);
	CHECK_ERR(jail_start_time(0x3ffffff0, &start), SBX_ENOTFOUND);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_hmap),
		cmocka_unit_test(test_backlog),
		cmocka_unit_test(test_jail_info),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
