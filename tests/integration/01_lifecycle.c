/*
 * Lifecycle: create, get, list with filters and paging, set_timeout,
 * expiry, kill, the audit log, and every way a create or lookup can be
 * wrong.
 */
#include <dirent.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sbx_test.h"
#include "sbxd_fixture.h"

static struct sbxd_fixture fx;

static int
setup(void **state)
{
	static const char *const extra[] = {"--max_sandboxes=12", NULL};
	int rc = sbxd_start(&fx, "lifecycle", extra);

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

static long long
now_ms(void)
{
	return (long long) time(NULL) * 1000;
}

static void
test_create_get(void **state)
{
	Sbx__V1__SandboxInfo *info;
	sbx_err err;
	char *id = sbxd_create(&fx, NULL), *out = NULL;
	int code = -1;

	(void) state;
	CHECK(id != NULL);
	CHECK_INT(strlen(id), 20);
	info = sbxd_get(&fx, id, &err);
	CHECK_OK(err);
	CHECK_STR(info->id, id);
	CHECK_INT(info->state, SBX__V1__SANDBOX_STATE__STATE_RUNNING);
	CHECK_STR(info->template_, "base");
	CHECK(info->deadline_ms > now_ms() + 290000);
	CHECK(info->deadline_ms < now_ms() + 310000);
	CHECK_INT(info->limits->memory_bytes, 1024ull << 20);
	CHECK_INT(info->network, SBX__V1__NETWORK_POLICY__NETWORK_DENY);
	sbx__v1__sandbox_info__free_unpacked(info, NULL);
	/* It is a real jail: uid 1000 inside, its own pid 1. */
	CHECK_OK(sbxd_run(&fx, id, NULL, "id -u; echo $$; hostname", &out,
	                  NULL, &code));
	CHECK_INT(code, 0);
	CHECK(strncmp(out, "1000\n", 5) == 0);
	CHECK(strstr(out, "\nsbx\n") != NULL);
	free(out);
	CHECK_OK(sbxd_kill(&fx, id));
	free(id);
}

static void
test_kill_and_cleanup(void **state)
{
	char path[700];
	Sbx__V1__SandboxInfo *info;
	struct stat st;
	sbx_err err;
	char *id = sbxd_create(&fx, NULL);
	long long until;

	(void) state;
	CHECK(id != NULL);
	snprintf(path, sizeof(path), "%s/sandboxes/%s/home", fx.state_dir, id);
	CHECK_INT(stat(path, &st), 0);
	CHECK_OK(sbxd_kill(&fx, id));
	info = sbxd_get(&fx, id, &err);
	CHECK(info == NULL);
	CHECK_INT(err, SBX_ENOTFOUND);
	CHECK(strstr(sbx_last_error(), "killed") != NULL);
	CHECK_ERR(sbxd_kill(&fx, id), SBX_ENOTFOUND);
	/* Its files go, on the cleaner thread, shortly after. */
	snprintf(path, sizeof(path), "%s/sandboxes/%s", fx.state_dir, id);
	until = now_ms() + 10000;
	while (stat(path, &st) == 0 && now_ms() < until) {
		usleep(20000);
	}
	CHECK(stat(path, &st) != 0);
	free(id);
}

static void
test_unknown_and_invalid(void **state)
{
	sbx_err err;

	(void) state;
	CHECK(sbxd_get(&fx, "aaaaaaaaaaaaaaaaaaaa", &err) == NULL);
	CHECK_INT(err, SBX_ENOTFOUND);
	CHECK(strstr(sbx_last_error(), "no sandbox") != NULL);
	CHECK(sbxd_get(&fx, "../../etc", &err) == NULL);
	CHECK_INT(err, SBX_EINVAL);
	CHECK(sbxd_get(&fx, "", &err) == NULL);
	CHECK_INT(err, SBX_EINVAL);
	CHECK_ERR(sbxd_kill(&fx, "zzzzzzzzzzzzzzzzzzzz"), SBX_ENOTFOUND);
}

static sbx_err
create_err(Sbx__V1__CreateRequest *req)
{
	ProtobufCMessage *rep;
	sbx_err err = sbx_call(fx.c, "Create", &req->base, &rep);

	if (err == SBX_OK) {
		protobuf_c_message_free_unpacked(rep, NULL);
	}
	return err;
}

static void
test_create_bad_input(void **state)
{
	Sbx__V1__CreateRequest req = SBX__V1__CREATE_REQUEST__INIT;
	Sbx__V1__Limits lim = SBX__V1__LIMITS__INIT;
	Sbx__V1__CreateRequest__EnvEntry e = SBX__V1__CREATE_REQUEST__ENV_ENTRY__INIT;
	Sbx__V1__CreateRequest__EnvEntry *ep = &e;

	(void) state;
	req.timeout_s = 10 * 86400;
	CHECK_ERR(create_err(&req), SBX_EINVAL);
	CHECK(strstr(sbx_last_error(), "timeout_s") != NULL);
	req.timeout_s = 0;
	req.limits = &lim;
	lim.memory_bytes = 1 << 20;
	CHECK_ERR(create_err(&req), SBX_EINVAL);
	CHECK(strstr(sbx_last_error(), "memory") != NULL);
	lim.memory_bytes = 0;
	lim.pids = 1;
	CHECK_ERR(create_err(&req), SBX_EINVAL);
	req.limits = NULL;
	e.key = "BAD-KEY";
	e.value = "v";
	req.env = &ep;
	req.n_env = 1;
	CHECK_ERR(create_err(&req), SBX_EINVAL);
	CHECK(strstr(sbx_last_error(), "env") != NULL);
	req.n_env = 0;
	req.network = (Sbx__V1__NetworkPolicy) 9;
	CHECK_ERR(create_err(&req), SBX_EINVAL);
	req.network = SBX__V1__NETWORK_POLICY__NETWORK_DEFAULT;
	req.template_ = "../evil";
	CHECK_ERR(create_err(&req), SBX_EINVAL);
}

/* Create a sandbox labelled group=GROUP, n=I. */
static char *
create_labelled(const char *group, int i)
{
	Sbx__V1__CreateRequest req = SBX__V1__CREATE_REQUEST__INIT;
	Sbx__V1__CreateRequest__LabelsEntry l[2], *lp[2];
	Sbx__V1__CreateRequest__MetadataEntry m, *mp = &m;
	char n[16];

	snprintf(n, sizeof(n), "%d", i);
	for (int k = 0; k < 2; k++) {
		sbx__v1__create_request__labels_entry__init(&l[k]);
		lp[k] = &l[k];
	}
	l[0].key = "group";
	l[0].value = (char *) group;
	l[1].key = "n";
	l[1].value = n;
	sbx__v1__create_request__metadata_entry__init(&m);
	m.key = "parity";
	m.value = i % 2 == 0 ? "even" : "odd";
	req.labels = lp;
	req.n_labels = 2;
	req.metadata = &mp;
	req.n_metadata = 1;
	return sbxd_create(&fx, &req);
}

static Sbx__V1__ListReply *
list(const char *group, const char *parity, uint32_t page, const char *token)
{
	Sbx__V1__ListRequest req = SBX__V1__LIST_REQUEST__INIT;
	Sbx__V1__ListRequest__LabelsEntry l = SBX__V1__LIST_REQUEST__LABELS_ENTRY__INIT;
	Sbx__V1__ListRequest__MetadataEntry m = SBX__V1__LIST_REQUEST__METADATA_ENTRY__INIT;
	Sbx__V1__ListRequest__LabelsEntry *lp = &l;
	Sbx__V1__ListRequest__MetadataEntry *mp = &m;
	Sbx__V1__ListReply *rep = NULL;

	l.key = "group";
	l.value = (char *) group;
	req.labels = &lp;
	req.n_labels = 1;
	if (parity != NULL) {
		m.key = "parity";
		m.value = (char *) parity;
		req.metadata = &mp;
		req.n_metadata = 1;
	}
	req.page_size = page;
	req.page_token = (char *) (token != NULL ? token : "");
	CHECK_OK(sbx_call(fx.c, "List", &req.base,
	                  (ProtobufCMessage **) &rep));
	return rep;
}

static void
test_list_filters_paging(void **state)
{
	char *ids[5], *token = NULL, seen[5] = {0};
	Sbx__V1__ListReply *rep;
	int pages = 0, total = 0;

	(void) state;
	for (int i = 0; i < 5; i++) {
		CHECK((ids[i] = create_labelled("paging", i)) != NULL);
	}
	rep = list("paging", "odd", 0, NULL);
	CHECK_INT(rep->n_sandboxes, 2);
	CHECK_STR(rep->next_page_token, "");
	sbx__v1__list_reply__free_unpacked(rep, NULL);
	rep = list("nobody-has-this", NULL, 0, NULL);
	CHECK_INT(rep->n_sandboxes, 0);
	sbx__v1__list_reply__free_unpacked(rep, NULL);
	do {
		rep = list("paging", NULL, 2, token);
		free(token);
		token = NULL;
		pages++;
		CHECK(rep->n_sandboxes <= 2);
		for (size_t k = 0; k < rep->n_sandboxes; k++) {
			for (int i = 0; i < 5; i++) {
				if (strcmp(rep->sandboxes[k]->id, ids[i]) == 0) {
					CHECK(!seen[i]);
					seen[i] = 1;
					total++;
				}
			}
		}
		if (rep->next_page_token[0] != '\0') {
			token = strdup(rep->next_page_token);
		}
		sbx__v1__list_reply__free_unpacked(rep, NULL);
	} while (token != NULL && pages < 10);
	CHECK_INT(pages, 3);
	CHECK_INT(total, 5);
	for (int i = 0; i < 5; i++) {
		CHECK_OK(sbxd_kill(&fx, ids[i]));
		free(ids[i]);
	}
	/* Killed sandboxes leave the default (live) listing. */
	rep = list("paging", NULL, 0, NULL);
	CHECK_INT(rep->n_sandboxes, 0);
	sbx__v1__list_reply__free_unpacked(rep, NULL);
}

static void
test_bad_page_token(void **state)
{
	Sbx__V1__ListRequest req = SBX__V1__LIST_REQUEST__INIT;
	ProtobufCMessage *rep;

	(void) state;
	req.page_token = "garbage";
	CHECK_ERR(sbx_call(fx.c, "List", &req.base, &rep), SBX_EINVAL);
}

static void
test_set_timeout_and_expiry(void **state)
{
	Sbx__V1__CreateRequest req = SBX__V1__CREATE_REQUEST__INIT;
	Sbx__V1__SetTimeoutRequest st = SBX__V1__SET_TIMEOUT_REQUEST__INIT;
	Sbx__V1__SandboxInfo *info;
	char *id;
	sbx_err err;
	long long until;

	(void) state;
	req.timeout_s = 600;
	CHECK((id = sbxd_create(&fx, &req)) != NULL);
	st.id = id;
	st.timeout_s = 0;
	CHECK_ERR(sbx_call(fx.c, "SetTimeout", &st.base,
	                   (ProtobufCMessage **) &info),
	          SBX_EINVAL);
	st.timeout_s = 1;
	CHECK_OK(sbx_call(fx.c, "SetTimeout", &st.base,
	                  (ProtobufCMessage **) &info));
	CHECK(info->deadline_ms <= now_ms() + 2000);
	sbx__v1__sandbox_info__free_unpacked(info, NULL);
	/* It expires by itself: poll for the end, bounded. */
	until = now_ms() + 15000;
	while ((info = sbxd_get(&fx, id, &err)) != NULL && now_ms() < until) {
		sbx__v1__sandbox_info__free_unpacked(info, NULL);
		usleep(50000);
	}
	CHECK(info == NULL);
	CHECK_INT(err, SBX_ENOTFOUND);
	CHECK(strstr(sbx_last_error(), "expired") != NULL);
	free(id);
}

static void
test_sandbox_limit(void **state)
{
	Sbx__V1__HealthRequest hr = SBX__V1__HEALTH_REQUEST__INIT;
	Sbx__V1__HealthReply *h;
	Sbx__V1__CreateRequest req = SBX__V1__CREATE_REQUEST__INIT;
	char *ids[16];
	int n = 0;
	sbx_err err = SBX_OK;

	(void) state;
	while (n < 16 && (err = create_err(&req)) == SBX_OK) {
		n++;
	}
	CHECK_INT(err, SBX_ELIMIT);
	CHECK(strstr(sbx_last_error(), "limit") != NULL);
	CHECK_OK(sbx_call(fx.c, "Health", &hr.base,
	                  (ProtobufCMessage **) &h));
	CHECK_INT(h->sandboxes_running, 12);
	CHECK_INT(h->sandboxes_max, 12);
	sbx__v1__health_reply__free_unpacked(h, NULL);
	(void) ids;
	/* The fixture's stop kills them all. Kill them now so later tests
	 * in this file have room. */
	{
		Sbx__V1__ListRequest lr = SBX__V1__LIST_REQUEST__INIT;
		Sbx__V1__ListReply *rep;

		lr.page_size = 100;
		CHECK_OK(sbx_call(fx.c, "List", &lr.base,
		                  (ProtobufCMessage **) &rep));
		for (size_t i = 0; i < rep->n_sandboxes; i++) {
			CHECK_OK(sbxd_kill(&fx, rep->sandboxes[i]->id));
		}
		sbx__v1__list_reply__free_unpacked(rep, NULL);
	}
}

static void
test_audit_log(void **state)
{
	char path[700];
	sqlite3 *db;
	sqlite3_stmt *st;
	int creates = -1, kills = -1;
	char *id = sbxd_create(&fx, NULL);

	(void) state;
	CHECK(id != NULL);
	CHECK_OK(sbxd_kill(&fx, id));
	snprintf(path, sizeof(path), "%s/state.db", fx.state_dir);
	CHECK_INT(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL),
	          SQLITE_OK);
	CHECK_INT(sqlite3_prepare_v2(db,
	                             "SELECT "
	                             "(SELECT count(*) FROM audit WHERE "
	                             "method='Create' AND sandbox_id=?1),"
	                             "(SELECT count(*) FROM audit WHERE "
	                             "method='Kill' AND sandbox_id=?1)",
	                             -1, &st, NULL),
	          SQLITE_OK);
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	CHECK_INT(sqlite3_step(st), SQLITE_ROW);
	creates = sqlite3_column_int(st, 0);
	kills = sqlite3_column_int(st, 1);
	sqlite3_finalize(st);
	sqlite3_close(db);
	if (creates != 1 || kills != 1) {
		char cmd[900];

		snprintf(cmd, sizeof(cmd), "sqlite3 -readonly %s 'select * from "
		         "audit' >&2", path);
		if (system(cmd) != 0) {
			fprintf(stderr, "(no sqlite3 tool)\n");
		}
		fprintf(stderr, "id=%s creates=%d kills=%d\n", id, creates,
		        kills);
	}
	CHECK_INT(creates, 1);
	CHECK_INT(kills, 1);
	free(id);
}

/* A jail that fails to come up leaves no sandbox behind (fail closed):
 * bwrap replaced by a program that exits at once. */
static void
test_failed_jail_leaves_nothing(void **state)
{
	static const char *const extra[] = {"--bwrap_path=/bin/false", NULL};
	static Sbx__V1__SandboxState all[] = {
		SBX__V1__SANDBOX_STATE__STATE_STARTING,
		SBX__V1__SANDBOX_STATE__STATE_RUNNING,
		SBX__V1__SANDBOX_STATE__STATE_KILLING,
		SBX__V1__SANDBOX_STATE__STATE_DEAD,
	};
	Sbx__V1__CreateRequest req = SBX__V1__CREATE_REQUEST__INIT;
	Sbx__V1__ListRequest lr = SBX__V1__LIST_REQUEST__INIT;
	Sbx__V1__ListReply *rep;
	struct sbxd_fixture f;
	ProtobufCMessage *info;
	char path[700], *dir;
	struct stat st;
	int n = 0;

	(void) state;
	CHECK_INT(sbxd_start(&f, "failjail", extra), 0);
	CHECK_ERR(sbx_call(f.c, "Create", &req.base, &info), SBX_EINTERNAL);
	CHECK(strstr(sbx_last_error(), "jail") != NULL);
	/* Not listed in any state, and no directory of it is left. */
	lr.states = all;
	lr.n_states = 4;
	CHECK_OK(sbx_call(f.c, "List", &lr.base, (ProtobufCMessage **) &rep));
	CHECK_INT(rep->n_sandboxes, 0);
	sbx__v1__list_reply__free_unpacked(rep, NULL);
	snprintf(path, sizeof(path), "%s/sandboxes", f.state_dir);
	dir = path;
	{
		long long until = sbx_test_mono_ms() + 10000;
		DIR *d;
		struct dirent *e;

		do {
			n = 0;
			if ((d = opendir(dir)) != NULL) {
				while ((e = readdir(d)) != NULL) {
					n += e->d_name[0] != '.';
				}
				closedir(d);
			}
		} while (n > 0 && sbx_test_mono_ms() < until &&
		         usleep(20000) == 0);
	}
	if (n != 0) {
		char cmd[800];

		snprintf(cmd, sizeof(cmd), "ls -laR %s >&2", dir);
		if (system(cmd) != 0) {
			/* Only a diagnostic. */
		}
		sbxd_dump_log(&f);
	}
	CHECK_INT(n, 0);
	CHECK_INT(stat(dir, &st), 0);
	/* Its uid slot is free again: the slot count allows many failures. */
	for (int i = 0; i < 40; i++) {
		CHECK_ERR(sbx_call(f.c, "Create", &req.base, &info),
		          SBX_EINTERNAL);
	}
	CHECK(strstr(sbx_last_error(), "uid") == NULL);
	CHECK_INT(sbxd_stop(&f, false), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_get),
		cmocka_unit_test(test_kill_and_cleanup),
		cmocka_unit_test(test_unknown_and_invalid),
		cmocka_unit_test(test_create_bad_input),
		cmocka_unit_test(test_list_filters_paging),
		cmocka_unit_test(test_bad_page_token),
		cmocka_unit_test(test_set_timeout_and_expiry),
		cmocka_unit_test(test_sandbox_limit),
		cmocka_unit_test(test_audit_log),
		cmocka_unit_test(test_failed_jail_leaves_nothing),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
