/*
 * registry.c: round trips of every field, errors, durability across close
 * and crash, audit, purge, file modes and hostile files, insert latency.
 */
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "registry.h"
#include "sbx_test.h"

struct fx {
	char *dir;
	char path[PATH_MAX];
	struct registry *r;
};

static int
fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char why[256] = "";

	assert_non_null(f);
	f->dir = sbx_test_scratch("registry");
	snprintf(f->path, sizeof(f->path), "%s/state.db", f->dir);
	CHECK_OK(registry_open(&f->r, f->path, why, sizeof(why)));
	*state = f;
	return 0;
}

static int
fx_teardown(void **state)
{
	struct fx *f = *state;

	registry_close(f->r);
	sbx_test_scratch_free(f->dir);
	free(f);
	return 0;
}

static struct reg_kv labels[] = {{"app", "web"}, {"team", "ml"}};
static struct reg_kv metadata[] = {{"owner", "agent-7"}};
static struct reg_kv env[] = {{"API_KEY", "s3cret"}, {"EMPTY", ""},
                              {"LANG", "C.UTF-8"}};

/* A sandbox with every field set; uint64 values lie above INT64_MAX. */
static struct reg_sandbox
sample(const char *id, int64_t created_ms)
{
	struct reg_sandbox s = {
		.id = (char *) id,
		.state = 2,
		.template_name = "python-3.11",
		.created_ms = created_ms,
		.deadline_ms = created_ms + 300000,
		.uid_slot = UINT32_MAX,
		.init_pid = INT32_MAX,
		.init_start = UINT64_MAX,
		.memory_bytes = (UINT64_C(1) << 63) + 12345,
		.cpu_millis = 1500,
		.pids = 64,
		.network = 1,
		.labels = labels,
		.n_labels = 2,
		.metadata = metadata,
		.n_metadata = 1,
		.env = env,
		.n_env = 3,
	};
	return s;
}

/* What the load callbacks saw: ids in order, and a deep copy check. */
struct seen {
	int n;
	char ids[8][16];
	int stop_after; /* return SBX_EABORTED after this many; 0 never */
	struct registry *r;
	bool mutate;
	const struct reg_sandbox *want;
};

static void
check_kvs(const struct reg_kv *got, size_t n_got, const struct reg_kv *want,
          size_t n_want)
{
	CHECK_INT(n_got, n_want);
	for (size_t i = 0; i < n_want; i++) {
		CHECK_STR(got[i].key, want[i].key);
		CHECK_STR(got[i].value, want[i].value);
	}
}

static void
check_opt_str(const char *got, const char *want)
{
	if (want == NULL) {
		CHECK(got == NULL);
	} else {
		CHECK(got != NULL);
		CHECK_STR(got, want);
	}
}

static void
check_sandbox(const struct reg_sandbox *got, const struct reg_sandbox *want)
{
	CHECK_STR(got->id, want->id);
	CHECK_INT(got->state, want->state);
	check_opt_str(got->template_name, want->template_name);
	CHECK(got->created_ms == want->created_ms);
	CHECK(got->deadline_ms == want->deadline_ms);
	CHECK(got->ended_ms == want->ended_ms);
	check_opt_str(got->end_reason, want->end_reason);
	CHECK(got->uid_slot == want->uid_slot);
	CHECK(got->init_pid == want->init_pid);
	CHECK(got->init_start == want->init_start);
	CHECK(got->memory_bytes == want->memory_bytes);
	CHECK(got->cpu_millis == want->cpu_millis);
	CHECK(got->pids == want->pids);
	CHECK_INT(got->network, want->network);
	/* Pairs come back sorted by key within each kind. */
	check_kvs(got->labels, got->n_labels, want->labels, want->n_labels);
	check_kvs(got->metadata, got->n_metadata, want->metadata,
	          want->n_metadata);
	check_kvs(got->env, got->n_env, want->env, want->n_env);
}

static sbx_err
on_row(const struct reg_sandbox *s, void *arg)
{
	struct seen *seen = arg;

	if (seen->want != NULL) {
		check_sandbox(s, seen->want);
	}
	if (seen->n < 8) {
		snprintf(seen->ids[seen->n], sizeof(seen->ids[0]), "%s", s->id);
	}
	seen->n++;
	if (seen->mutate) {
		/* sbxd's start-up marks sandboxes whose init died, and may
		 * drop or add rows while it walks. */
		CHECK_OK(registry_set_state(seen->r, s->id, 4, "lost", 99));
		CHECK_OK(registry_audit(seen->r, 1, "Recover", s->id, SBX_OK,
		                        NULL));
		if (strcmp(s->id, "d") == 0) {
			CHECK_OK(registry_delete(seen->r, s->id));
		}
		if (strcmp(s->id, "a") == 0) {
			struct reg_sandbox e = sample("e", 1000);

			CHECK_OK(registry_insert(seen->r, &e));
		}
		CHECK_ERR(registry_load(seen->r, on_row, seen), SBX_ESTATE);
	}
	if (seen->stop_after != 0 && seen->n >= seen->stop_after) {
		return SBX_EABORTED;
	}
	return SBX_OK;
}

static int
load_count(struct registry *r)
{
	struct seen seen = {0};

	CHECK_OK(registry_load(r, on_row, &seen));
	return seen.n;
}

/* One integer from PATH through a connection of the test's own. */
static int64_t
raw_int(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t v = -1;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL),
	                 SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW) {
		v = (int64_t) sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static void
raw_exec(const char *path, const char *sql)
{
	sqlite3 *db = NULL;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static void
test_round_trip(void **state)
{
	struct fx *f = *state;
	struct reg_sandbox s = sample("a1", INT64_C(1700000000000));
	struct seen seen = {.want = &s};

	CHECK_OK(registry_insert(f->r, &s));
	CHECK_OK(registry_load(f->r, on_row, &seen));
	CHECK_INT(seen.n, 1);

	/* NULL strings and no pairs at all survive too. */
	s = sample("b2", 5);
	s.template_name = NULL;
	s.n_labels = s.n_metadata = s.n_env = 0;
	CHECK_OK(registry_delete(f->r, "a1"));
	CHECK_OK(registry_insert(f->r, &s));
	CHECK_OK(registry_set_state(f->r, "b2", 3, "killed", 77));
	s.state = 3;
	s.end_reason = "killed";
	s.ended_ms = 77;
	seen.n = 0;
	CHECK_OK(registry_load(f->r, on_row, &seen));
	CHECK_INT(seen.n, 1);
}

static sbx_err
check_null_template(const struct reg_sandbox *s, void *arg)
{
	(void) arg;
	CHECK(s->template_name == NULL);
	return SBX_OK;
}

static void
test_duplicates(void **state)
{
	struct fx *f = *state;
	struct reg_sandbox s = sample("dup", 1);
	struct reg_kv twice[] = {{"k", "1"}, {"k", "2"}};

	CHECK_OK(registry_insert(f->r, &s));
	CHECK_ERR(registry_insert(f->r, &s), SBX_EEXIST);
	CHECK_INT(raw_int(f->path, "SELECT count(*) FROM kv"), 6);

	/* A key given twice rolls the whole insert back. */
	s = sample("twice", 2);
	s.labels = twice;
	s.template_name = NULL;
	CHECK_ERR(registry_insert(f->r, &s), SBX_EINVAL);
	CHECK_INT(load_count(f->r), 1);
	CHECK_INT(raw_int(f->path, "SELECT count(*) FROM kv"), 6);

	/* The connection is usable after the rollback. */
	s.n_labels = 1;
	CHECK_OK(registry_insert(f->r, &s));
	CHECK_INT(load_count(f->r), 2);
	CHECK_OK(registry_delete(f->r, "dup"));
	CHECK_OK(registry_load(f->r, check_null_template, NULL));
}

static void
test_updates(void **state)
{
	struct fx *f = *state;
	struct reg_sandbox s = sample("u", 10);
	struct seen seen = {.want = &s};

	CHECK_OK(registry_insert(f->r, &s));
	CHECK_OK(registry_set_state(f->r, "u", 5, "timeout", 1234));
	CHECK_OK(registry_set_deadline(f->r, "u", INT64_MAX));
	CHECK_OK(registry_set_init(f->r, "u", 4242,
	                           (UINT64_C(1) << 63) | 7));
	s.state = 5;
	s.end_reason = "timeout";
	s.ended_ms = 1234;
	s.deadline_ms = INT64_MAX;
	s.init_pid = 4242;
	s.init_start = (UINT64_C(1) << 63) | 7;
	CHECK_OK(registry_load(f->r, on_row, &seen));
	CHECK_INT(seen.n, 1);
}

static void
test_update_unknown(void **state)
{
	struct fx *f = *state;
	struct reg_sandbox s = sample("u", 10);

	CHECK_OK(registry_insert(f->r, &s));
	CHECK_ERR(registry_set_state(f->r, "nope", 1, NULL, 0), SBX_ENOTFOUND);
	CHECK_ERR(registry_set_deadline(f->r, "nope", 1), SBX_ENOTFOUND);
	CHECK_ERR(registry_set_init(f->r, "nope", 1, 1), SBX_ENOTFOUND);
}

static void
test_load_order_and_stop(void **state)
{
	struct fx *f = *state;
	static const char *const ids[] = {"c", "a", "b", "d"};
	static const int64_t created[] = {30, 10, 20, 10};
	struct seen seen = {0};
	struct reg_sandbox s;

	for (int i = 0; i < 4; i++) {
		s = sample(ids[i], created[i]);
		CHECK_OK(registry_insert(f->r, &s));
	}
	CHECK_OK(registry_load(f->r, on_row, &seen));
	CHECK_INT(seen.n, 4);
	CHECK_STR(seen.ids[0], "a"); /* ties on created_ms go by id */
	CHECK_STR(seen.ids[1], "d");
	CHECK_STR(seen.ids[2], "b");
	CHECK_STR(seen.ids[3], "c");

	memset(&seen, 0, sizeof(seen));
	seen.stop_after = 2;
	CHECK_ERR(registry_load(f->r, on_row, &seen), SBX_EABORTED);
	CHECK_INT(seen.n, 2);

	/* The callback may write: rows it updates do not come back, and a
	 * nested load is refused. Whether the walk sees the row inserted
	 * midway is up to SQLite (isolation.html), so allow both. */
	memset(&seen, 0, sizeof(seen));
	seen.r = f->r;
	seen.mutate = true;
	CHECK_OK(registry_load(f->r, on_row, &seen));
	CHECK(seen.n == 4 || seen.n == 5);
	CHECK_INT(load_count(f->r), 4);
	CHECK_INT(raw_int(f->path, "SELECT count(*) FROM sandboxes WHERE id "
	                           "IN ('a', 'b', 'c') AND state = 4"),
	          3);
}

static void
test_reopen(void **state)
{
	struct fx *f = *state;
	struct reg_sandbox s = sample("keep", 1);
	struct seen seen = {.want = &s};
	char why[256];

	CHECK_OK(registry_insert(f->r, &s));
	registry_close(f->r);
	f->r = NULL;
	CHECK_OK(registry_open(&f->r, f->path, why, sizeof(why)));
	CHECK_OK(registry_load(f->r, on_row, &seen));
	CHECK_INT(seen.n, 1);
}

static int
file_mode(const char *path, const char *suffix)
{
	char p[PATH_MAX + 16];
	struct stat st;

	snprintf(p, sizeof(p), "%s%s", path, suffix);
	return stat(p, &st) == 0 ? (int) (st.st_mode & 07777) : -1;
}

static int64_t
file_size(const char *path, const char *suffix)
{
	char p[PATH_MAX + 16];
	struct stat st;

	snprintf(p, sizeof(p), "%s%s", path, suffix);
	return stat(p, &st) == 0 ? (int64_t) st.st_size : -1;
}

static void
test_crash_keeps_commits(void **state)
{
	struct fx *f = *state;
	struct reg_sandbox s = sample("crash", 1);
	struct seen seen = {.want = &s};
	char why[256];
	int status;
	pid_t pid;

	registry_close(f->r);
	f->r = NULL;
	if ((pid = fork()) == 0) {
		struct registry *r;

		/* No registry_close: the commit lives only in the WAL. */
		if (registry_open(&r, f->path, why, sizeof(why)) != SBX_OK ||
		    registry_insert(r, &s) != SBX_OK) {
			_exit(1);
		}
		_exit(0);
	}
	CHECK(pid > 0);
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK(file_size(f->path, "-wal") > 0);

	CHECK_OK(registry_open(&f->r, f->path, why, sizeof(why)));
	CHECK_OK(registry_load(f->r, on_row, &seen));
	CHECK_INT(seen.n, 1);
}

static void
test_audit(void **state)
{
	struct fx *f = *state;
	int64_t n = -1;

	CHECK_OK(registry_audit(f->r, 100, "Create", "a", SBX_OK, "tmpl=py"));
	CHECK_OK(registry_audit(f->r, 101, "Create", NULL, SBX_ELIMIT, NULL));
	CHECK_OK(registry_audit(f->r, 102, "Kill", "a", SBX_OK, ""));
	CHECK_OK(registry_audit_count(f->r, "Create", &n));
	CHECK(n == 2);
	CHECK_OK(registry_audit_count(f->r, "Kill", &n));
	CHECK(n == 1);
	CHECK_OK(registry_audit_count(f->r, "Get", &n));
	CHECK(n == 0);
	CHECK_OK(registry_audit_count(f->r, NULL, &n));
	CHECK(n == 3);
	CHECK_INT(raw_int(f->path, "SELECT status FROM audit WHERE ts_ms = "
	                           "101 AND sandbox_id IS NULL AND detail "
	                           "IS NULL"),
	          SBX_ELIMIT);
}

static void
test_audit_truncation(void **state)
{
	struct fx *f = *state;
	char big[600], utf8[520];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK_OK(registry_audit(f->r, 103, "Big", NULL, SBX_OK, big));
	CHECK_INT(raw_int(f->path, "SELECT length(CAST(detail AS BLOB)) "
	                           "FROM audit WHERE method = 'Big'"),
	          512);

	/* A two-byte character across the limit is dropped whole. */
	memset(utf8, 'y', sizeof(utf8) - 1);
	utf8[sizeof(utf8) - 1] = '\0';
	utf8[511] = (char) 0xc3;
	utf8[512] = (char) 0xa9;
	CHECK_OK(registry_audit(f->r, 104, "Utf8", NULL, SBX_OK, utf8));
	CHECK_INT(raw_int(f->path, "SELECT length(CAST(detail AS BLOB)) "
	                           "FROM audit WHERE method = 'Utf8'"),
	          511);
}

static void
test_purge(void **state)
{
	struct fx *f = *state;
	static const char *const ids[] = {"alive", "old", "edge", "recent"};
	static const int64_t ended[] = {0, 100, 500, 1000};
	struct reg_sandbox s;
	int64_t n = -1;

	for (int i = 0; i < 4; i++) {
		s = sample(ids[i], 1);
		s.ended_ms = ended[i];
		CHECK_OK(registry_insert(f->r, &s));
	}
	for (int64_t ts = 10; ts <= 30; ts += 10) {
		CHECK_OK(registry_audit(f->r, ts, "Create", NULL, SBX_OK, NULL));
	}
	CHECK_OK(registry_purge(f->r, 500, 20));
	/* Strictly before: "edge" (500) and the row at 20 stay. */
	CHECK_INT(load_count(f->r), 3);
	CHECK_INT(raw_int(f->path,
	                  "SELECT count(*) FROM sandboxes WHERE id = 'old'"),
	          0);
	CHECK_INT(raw_int(f->path, "SELECT count(*) FROM kv "
	                           "WHERE sandbox_id = 'old'"),
	          0);
	CHECK_OK(registry_audit_count(f->r, NULL, &n));
	CHECK(n == 2);
	CHECK_INT(raw_int(f->path, "SELECT min(ts_ms) FROM audit"), 20);

	/* Alive sandboxes are never purged, however old. */
	CHECK_OK(registry_purge(f->r, INT64_MAX, 0));
	CHECK_INT(load_count(f->r), 1);
}

static void
test_delete_cascades(void **state)
{
	struct fx *f = *state;
	struct reg_sandbox a = sample("a", 1), b = sample("b", 2);

	CHECK_OK(registry_insert(f->r, &a));
	CHECK_OK(registry_insert(f->r, &b));
	CHECK_INT(raw_int(f->path, "SELECT count(*) FROM kv"), 12);
	CHECK_OK(registry_delete(f->r, "a"));
	CHECK_INT(raw_int(f->path, "SELECT count(*) FROM kv "
	                           "WHERE sandbox_id = 'a'"),
	          0);
	CHECK_INT(raw_int(f->path, "SELECT count(*) FROM kv"), 6);
	CHECK_OK(registry_delete(f->r, "a")); /* gone already: fine */
	CHECK_INT(load_count(f->r), 1);
}

/* An empty PATH SUFFIX of mode 0644, as an older sbxd might leave. */
static void
touch_0644(const char *path, const char *suffix)
{
	char p[PATH_MAX + 16];
	int fd;

	snprintf(p, sizeof(p), "%s%s", path, suffix);
	CHECK((fd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0644)) >= 0);
	CHECK(fchmod(fd, 0644) == 0);
	close(fd);
	CHECK_INT(file_mode(path, suffix), 0644);
}

static void
test_file_mode(void **state)
{
	struct fx *f = *state;
	struct reg_sandbox s = sample("m", 1);
	struct registry *r = NULL;
	char path[PATH_MAX], why[256];
	mode_t old;

	/* A permissive umask must not leak into any of the three files. */
	snprintf(path, sizeof(path), "%s/mode.db", f->dir);
	old = umask(0);
	CHECK_OK(registry_open(&r, path, why, sizeof(why)));
	CHECK_OK(registry_insert(r, &s));
	CHECK_INT(file_mode(path, ""), 0600);
	CHECK_INT(file_mode(path, "-wal"), 0600);
	CHECK_INT(file_mode(path, "-shm"), 0600);
	registry_close(r);

	/* Files loosened while sbxd was down are tightened on open. */
	CHECK(chmod(path, 0644) == 0);
	touch_0644(path, "-wal");
	touch_0644(path, "-shm");
	CHECK_OK(registry_open(&r, path, why, sizeof(why)));
	umask(old);
	CHECK_INT(file_mode(path, ""), 0600);
	CHECK_INT(file_mode(path, "-wal"), 0600);
	CHECK_INT(file_mode(path, "-shm"), 0600);
	registry_close(r);
}

/* Open PATH expecting refusal; WHY must contain WANT. */
static void
check_refused(const char *path, const char *want)
{
	struct registry *r = NULL;
	char why[256] = "";

	CHECK_ERR(registry_open(&r, path, why, sizeof(why)), SBX_EINTERNAL);
	CHECK(r == NULL); /* out-params are written only on success */
	print_message("refused as expected: %s\n", why);
	if (strstr(why, want) == NULL) {
		fail_msg("why \"%s\" lacks \"%s\"", why, want);
	}
}

static void
test_hostile_files(void **state)
{
	struct fx *f = *state;
	char path[PATH_MAX];
	FILE *fp;

	/* Garbage where the database should be. */
	snprintf(path, sizeof(path), "%s/garbage.db", f->dir);
	CHECK((fp = fopen(path, "w")) != NULL);
	for (int i = 0; i < 200; i++) {
		fputs("this is certainly not an SQLite file\n", fp);
	}
	fclose(fp);
	check_refused(path, "not a database");

	/* A symlink, dangling or not, is refused and nothing is created. */
	snprintf(path, sizeof(path), "%s/link.db", f->dir);
	CHECK(symlink(f->path, path) == 0);
	check_refused(path, "symlink");
	unlink(path);
	CHECK(symlink("nowhere.db", path) == 0);
	check_refused(path, "symlink");
	snprintf(path, sizeof(path), "%s/nowhere.db", f->dir);
	CHECK(access(path, F_OK) != 0);

	/* Another program's database. */
	snprintf(path, sizeof(path), "%s/other.db", f->dir);
	raw_exec(path, "CREATE TABLE t (x)");
	check_refused(path, "not an sbx registry");
}

static void
test_newer_schema_refused(void **state)
{
	struct fx *f = *state;

	registry_close(f->r);
	f->r = NULL;
	raw_exec(f->path, "PRAGMA user_version = 2");
	check_refused(f->path, "newer");
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

	return (x > y) - (x < y);
}

static void
test_insert_latency(void **state)
{
	enum { N = 1000 };
	struct fx *f = *state;
	struct reg_kv more[] = {{"a", "1"}, {"b", "2"}, {"c", "3"},
	                        {"d", "4"}, {"e", "5"}, {"f", "6"}};
	uint64_t *ns = calloc(N, sizeof(*ns)), p50, p99;
	struct timespec t0, t1;
	struct reg_sandbox s;
	char id[16];

	assert_non_null(ns);
	for (int i = 0; i < N; i++) {
		snprintf(id, sizeof(id), "lat%04d", i);
		s = sample(id, i);
		s.labels = more; /* 6 labels + 1 metadata + 3 env */
		s.n_labels = 6;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		CHECK_OK(registry_insert(f->r, &s));
		clock_gettime(CLOCK_MONOTONIC, &t1);
		ns[i] = (uint64_t) ((t1.tv_sec - t0.tv_sec) * 1000000000L +
		                    (t1.tv_nsec - t0.tv_nsec));
	}
	qsort(ns, N, sizeof(*ns), cmp_u64);
	p50 = ns[N / 2];
	p99 = ns[N * 99 / 100];
	print_message("registry_insert with 10 kv rows, %d runs: "
	              "p50=%.1fus p99=%.1fus max=%.1fus\n",
	              N, (double) p50 / 1e3, (double) p99 / 1e3,
	              (double) ns[N - 1] / 1e3);
	CHECK_INT(load_count(f->r), N);
	free(ns);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
	const struct CMUnitTest tests[] = {
		T(test_round_trip),
		T(test_duplicates),
		T(test_updates),
		T(test_update_unknown),
		T(test_load_order_and_stop),
		T(test_reopen),
		T(test_crash_keeps_commits),
		T(test_audit),
		T(test_audit_truncation),
		T(test_purge),
		T(test_delete_cascades),
		T(test_file_mode),
		T(test_hostile_files),
		T(test_newer_schema_refused),
		T(test_insert_latency),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
