/*
 * Files: FileWrite/Read/List/Stat/Mkdir/Move/Remove and libsbx's
 * sbx_file_write/read against real jails. Byte-exact round trips checked
 * from inside the jail too, chunk semantics and caps, path resolution for
 * both users, and the security core: no path, symlink, magic link or
 * pseudo file leads sbxd outside a sandbox's root or into a kernel
 * interface. Bad input gets a clear status and the daemon stays healthy.
 *
 * The fixture runs with a small --file_chunk_bytes so that a chunk over
 * the cap is cheap to send and a 10 MiB upload takes many chunks.
 */
#include <pthread.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sbx_test.h"
#include "sbxd_fixture.h"

#define CHUNK_CAP (256u << 10)
#define BLOB_LEN (10u << 20)

static struct sbxd_fixture fx;
static char *sb; /* the shared sandbox of most tests */

static int
setup(void **state)
{
	static const char *const extra[] = {"--file_chunk_bytes=262144",
	                                    NULL};
	int rc = sbxd_start(&fx, "files", extra);

	(void) state;
	if (rc == SBX_TEST_SKIP) {
		exit(SBX_TEST_SKIP);
	}
	if (rc != 0 || (sb = sbxd_create(&fx, NULL)) == NULL) {
		return -1;
	}
	return 0;
}

static int
teardown(void **state)
{
	(void) state;
	free(sb);
	return sbxd_stop(&fx, false);
}

/* ---- calls ---- */

enum { W_TRUNC = 1, W_PARENTS = 2 };

static sbx_err
file_write(const char *id, const char *user, const char *path, uint64_t off,
           const void *data, size_t len, int flags, uint32_t mode,
           Sbx__V1__FileEntry **out)
{
	Sbx__V1__FileWriteRequest req = SBX__V1__FILE_WRITE_REQUEST__INIT;
	Sbx__V1__FileEntry *e = NULL;
	sbx_err err;

	req.sandbox_id = (char *) id;
	req.user = (char *) (user != NULL ? user : "");
	req.path = (char *) path;
	req.offset = off;
	req.data.data = (uint8_t *) data;
	req.data.len = len;
	req.truncate = (flags & W_TRUNC) != 0;
	req.make_parents = (flags & W_PARENTS) != 0;
	req.mode = mode;
	err = sbx_call(fx.c, "FileWrite", &req.base, (ProtobufCMessage **) &e);
	if (err == SBX_OK && out != NULL) {
		*out = e;
	} else if (err == SBX_OK) {
		sbx__v1__file_entry__free_unpacked(e, NULL);
	}
	return err;
}

/* Write TEXT as the whole file (parents made) as the default user. */
static void
put(const char *id, const char *path, const char *text)
{
	CHECK_OK(file_write(id, NULL, path, 0, text, strlen(text),
	                    W_TRUNC | W_PARENTS, 0, NULL));
}

/* *OUT may be NULL to drop the reply. */
static sbx_err
file_read(const char *id, const char *user, const char *path, uint64_t off,
          uint32_t length, Sbx__V1__FileReadReply **out)
{
	Sbx__V1__FileReadRequest req = SBX__V1__FILE_READ_REQUEST__INIT;
	Sbx__V1__FileReadReply *rr = NULL;
	sbx_err err;

	req.sandbox_id = (char *) id;
	req.user = (char *) (user != NULL ? user : "");
	req.path = (char *) path;
	req.offset = off;
	req.length = length;
	err = sbx_call(fx.c, "FileRead", &req.base, (ProtobufCMessage **) &rr);
	if (err == SBX_OK && out != NULL) {
		*out = rr;
	} else if (err == SBX_OK) {
		sbx__v1__file_read_reply__free_unpacked(rr, NULL);
	}
	return err;
}

/* The whole file as a string (heap), or NULL with *ERR set. */
static char *
slurp(const char *id, const char *user, const char *path, sbx_err *err)
{
	void *data = NULL;
	size_t len = 0;

	*err = sbx_file_read(fx.c, id, path, user, &data, &len, 1u << 20);
	return *err == SBX_OK ? data : NULL;
}

static sbx_err
file_stat(const char *id, const char *user, const char *path,
          Sbx__V1__FileEntry **out)
{
	Sbx__V1__FileStatRequest req = SBX__V1__FILE_STAT_REQUEST__INIT;
	Sbx__V1__FileEntry *e = NULL;
	sbx_err err;

	req.sandbox_id = (char *) id;
	req.user = (char *) (user != NULL ? user : "");
	req.path = (char *) path;
	err = sbx_call(fx.c, "FileStat", &req.base, (ProtobufCMessage **) &e);
	if (err == SBX_OK && out != NULL) {
		*out = e;
	} else if (err == SBX_OK) {
		sbx__v1__file_entry__free_unpacked(e, NULL);
	}
	return err;
}

static sbx_err
file_list(const char *id, const char *user, const char *path, uint32_t depth,
          Sbx__V1__FileListReply **out)
{
	Sbx__V1__FileListRequest req = SBX__V1__FILE_LIST_REQUEST__INIT;

	req.sandbox_id = (char *) id;
	req.user = (char *) (user != NULL ? user : "");
	req.path = (char *) path;
	req.depth = depth;
	return sbx_call(fx.c, "FileList", &req.base, (ProtobufCMessage **) out);
}

static sbx_err
file_mkdir(const char *id, const char *user, const char *path, bool parents,
           uint32_t mode, Sbx__V1__FileEntry **out)
{
	Sbx__V1__FileMkdirRequest req = SBX__V1__FILE_MKDIR_REQUEST__INIT;
	Sbx__V1__FileEntry *e = NULL;
	sbx_err err;

	req.sandbox_id = (char *) id;
	req.user = (char *) (user != NULL ? user : "");
	req.path = (char *) path;
	req.parents = parents;
	req.mode = mode;
	err = sbx_call(fx.c, "FileMkdir", &req.base, (ProtobufCMessage **) &e);
	if (err == SBX_OK && out != NULL) {
		*out = e;
	} else if (err == SBX_OK) {
		sbx__v1__file_entry__free_unpacked(e, NULL);
	}
	return err;
}

static sbx_err
file_move(const char *id, const char *user, const char *src, const char *dst,
          bool parents, Sbx__V1__FileEntry **out)
{
	Sbx__V1__FileMoveRequest req = SBX__V1__FILE_MOVE_REQUEST__INIT;
	Sbx__V1__FileEntry *e = NULL;
	sbx_err err;

	req.sandbox_id = (char *) id;
	req.user = (char *) (user != NULL ? user : "");
	req.source = (char *) src;
	req.destination = (char *) dst;
	req.make_parents = parents;
	err = sbx_call(fx.c, "FileMove", &req.base, (ProtobufCMessage **) &e);
	if (err == SBX_OK && out != NULL) {
		*out = e;
	} else if (err == SBX_OK) {
		sbx__v1__file_entry__free_unpacked(e, NULL);
	}
	return err;
}

static sbx_err
file_remove(const char *id, const char *user, const char *path,
            bool recursive)
{
	Sbx__V1__FileRemoveRequest req = SBX__V1__FILE_REMOVE_REQUEST__INIT;
	ProtobufCMessage *rep;
	sbx_err err;

	req.sandbox_id = (char *) id;
	req.user = (char *) (user != NULL ? user : "");
	req.path = (char *) path;
	req.recursive = recursive;
	err = sbx_call(fx.c, "FileRemove", &req.base, &rep);
	if (err == SBX_OK) {
		protobuf_c_message_free_unpacked(rep, NULL);
	}
	return err;
}

/* The last error's message contains WORD (printed when it does not). */
static void
check_msg(const char *word)
{
	if (strstr(sbx_last_error(), word) == NULL) {
		fail_msg("message \"%s\" lacks \"%s\"", sbx_last_error(), word);
	}
}

static void
healthy(void)
{
	Sbx__V1__HealthRequest req = SBX__V1__HEALTH_REQUEST__INIT;
	ProtobufCMessage *rep;

	CHECK_OK(sbx_call_timeout(fx.c, "Health", &req.base, &rep, 3000));
	protobuf_c_message_free_unpacked(rep, NULL);
}

/* ---- processes ---- */

/* Run shell COMMAND in ID as USER (NULL: "user"); *OUT gets stdout
 * (heap, may be NULL to drop it). Returns the exit code. */
static int
sh(const char *id, const char *user, const char *command, char **out)
{
	char *err = NULL;
	int code = -1;

	CHECK_OK(sbxd_run_as(&fx, id, user, NULL, command, 60000, out, &err,
	                     &code));
	if (err[0] != '\0') {
		fprintf(stderr, "[%s] stderr: %s", command, err);
	}
	free(err);
	return code;
}

/* Run COMMAND, require exit 0 and stdout exactly WANT. */
static void
sh_expect(const char *id, const char *user, const char *command,
          const char *want)
{
	char *out = NULL;

	CHECK_INT(sh(id, user, command, &out), 0);
	CHECK_STR(out, want);
	free(out);
}

/* ---- host side ---- */

static void
host_write(const char *path, const void *data, size_t len)
{
	FILE *fp = fopen(path, "wb");

	CHECK(fp != NULL);
	CHECK_INT(fwrite(data, 1, len, fp), len);
	CHECK_INT(fclose(fp), 0);
}

/* sha256sum of a host file, the 64 hex digits. */
static void
host_sha256(const char *path, char hex[65])
{
	char cmd[1200];
	FILE *p;

	snprintf(cmd, sizeof(cmd), "sha256sum '%s'", path);
	CHECK((p = popen(cmd, "r")) != NULL);
	CHECK(fread(hex, 1, 64, p) == 64);
	hex[64] = '\0';
	CHECK_INT(pclose(p), 0);
}

static bool
list_has(const Sbx__V1__FileListReply *rep, const char *name)
{
	for (size_t i = 0; i < rep->n_entries; i++) {
		if (strcmp(rep->entries[i]->name, name) == 0) {
			return true;
		}
	}
	return false;
}

/* ---- 1. binary round trip ---- */

static void
test_binary_roundtrip(void **state)
{
	char local[700], hex[65], want[300], *out = NULL;
	Sbx__V1__FileEntry *e;
	uint8_t *blob = malloc(BLOB_LEN);
	void *back = NULL;
	size_t len = 0;

	(void) state;
	CHECK(blob != NULL);
	for (size_t off = 0; off < BLOB_LEN;) {
		ssize_t k = getrandom(blob + off, BLOB_LEN - off, 0);

		CHECK(k > 0);
		off += (size_t) k;
	}
	/* Make sure every byte value occurs, NULs and newlines included. */
	for (unsigned i = 0; i < 256; i++) {
		blob[i] = (uint8_t) i;
	}
	/* 10 MiB is forty times the per-call cap: libsbx must chunk. */
	CHECK_OK(sbx_file_write(fx.c, sb, "/home/user/data/blob.bin", NULL,
	                        blob, BLOB_LEN, 0));
	CHECK_OK(sbx_file_read(fx.c, sb, "/home/user/data/blob.bin", NULL,
	                       &back, &len, 64u << 20));
	CHECK_INT(len, BLOB_LEN);
	CHECK(memcmp(back, blob, BLOB_LEN) == 0);
	free(back);
	/* A read cap below the size is a clear RESOURCE_EXHAUSTED. */
	back = NULL;
	CHECK_ERR(sbx_file_read(fx.c, sb, "/home/user/data/blob.bin", NULL,
	                        &back, &len, 1u << 20),
	          SBX_ELIMIT);
	CHECK(back == NULL);
	check_msg("larger than");

	CHECK_OK(file_stat(sb, NULL, "/home/user/data/blob.bin", &e));
	CHECK_INT(e->type, SBX__V1__FILE_TYPE__FILE_TYPE_FILE);
	CHECK_INT(e->size, BLOB_LEN);
	CHECK_INT(e->mode, 0644);
	CHECK_INT(e->uid, 1000);
	CHECK_STR(e->owner, "user");
	CHECK_STR(e->group, "user");
	sbx__v1__file_entry__free_unpacked(e, NULL);

	/* The bytes really are in the sandbox: hash them in there. */
	snprintf(local, sizeof(local), "%s/blob.bin", fx.dir);
	host_write(local, blob, BLOB_LEN);
	host_sha256(local, hex);
	unlink(local);
	snprintf(want, sizeof(want),
	         "%s  /home/user/data/blob.bin\n1000 user 644 %u\n", hex,
	         BLOB_LEN);
	CHECK_INT(sh(sb, NULL,
	             "sha256sum /home/user/data/blob.bin && "
	             "stat -c '%u %U %a %s' /home/user/data/blob.bin",
	             &out),
	          0);
	CHECK_STR(out, want);
	free(out);

	/* The requested mode, and an empty file. */
	CHECK_OK(sbx_file_write(fx.c, sb, "/home/user/data/secret.bin", NULL,
	                        blob, 1000, 0600));
	CHECK_OK(sbx_file_write(fx.c, sb, "/home/user/data/empty", NULL, blob,
	                        0, 0));
	sh_expect(sb, NULL,
	          "stat -c '%n %u %a %s' /home/user/data/secret.bin "
	          "/home/user/data/empty",
	          "/home/user/data/secret.bin 1000 600 1000\n"
	          "/home/user/data/empty 1000 644 0\n");
	back = NULL;
	CHECK_OK(sbx_file_read(fx.c, sb, "/home/user/data/empty", NULL, &back,
	                       &len, 100));
	CHECK_INT(len, 0);
	CHECK_STR(back, "");
	free(back);
	/* Uploading again replaces the whole file (no stale tail). */
	CHECK_OK(sbx_file_write(fx.c, sb, "/home/user/data/blob.bin", NULL,
	                        "short", 5, 0));
	sh_expect(sb, NULL, "cat /home/user/data/blob.bin", "short");
	free(blob);
	healthy();
}

/* ---- 2. chunk semantics ---- */

static void
test_chunks(void **state)
{
	Sbx__V1__FileReadReply *rr;
	Sbx__V1__FileEntry *e;
	uint8_t *big = calloc(1, CHUNK_CAP + 1);
	char *s;
	sbx_err err;

	(void) state;
	CHECK(big != NULL);
	/* Missing parent: NOT_FOUND without make_parents. */
	CHECK_ERR(file_write(sb, NULL, "chunks/a/b.txt", 0, "x", 1, 0, 0,
	                     NULL),
	          SBX_ENOTFOUND);
	check_msg("No such file");
	CHECK_ERR(file_stat(sb, NULL, "chunks", NULL), SBX_ENOTFOUND);
	CHECK_OK(file_write(sb, NULL, "chunks/a/b.txt", 0, "hello world", 11,
	                    W_PARENTS, 0, &e));
	CHECK_STR(e->path, "/home/user/chunks/a/b.txt");
	CHECK_STR(e->name, "b.txt");
	CHECK_INT(e->size, 11);
	CHECK_INT(e->mode, 0644);
	sbx__v1__file_entry__free_unpacked(e, NULL);
	sh_expect(sb, NULL, "stat -c '%a %U' chunks chunks/a",
	          "755 user\n755 user\n");

	/* Overwrite in the middle, then extend past the end (a hole). */
	CHECK_OK(file_write(sb, NULL, "chunks/a/b.txt", 6, "WORLD", 5, 0, 0,
	                    NULL));
	CHECK_OK(file_write(sb, NULL, "chunks/a/b.txt", 20, "!", 1, 0, 0, &e));
	CHECK_INT(e->size, 21);
	sbx__v1__file_entry__free_unpacked(e, NULL);
	sh_expect(sb, NULL, "od -An -tx1 chunks/a/b.txt | tr -d ' \\n'",
	          "68656c6c6f20574f524c44" "000000000000000000" "21");
	/* Truncate starts over; mode applies to new files only. */
	CHECK_OK(file_write(sb, NULL, "chunks/a/b.txt", 0, "abc", 3, W_TRUNC,
	                    0600, &e));
	CHECK_INT(e->size, 3);
	CHECK_INT(e->mode, 0644);
	sbx__v1__file_entry__free_unpacked(e, NULL);
	sh_expect(sb, NULL, "cat chunks/a/b.txt", "abc");

	/* Reads: offset and length, past EOF empty with eof set. */
	CHECK_OK(file_read(sb, NULL, "chunks/a/b.txt", 1, 1, &rr));
	CHECK_INT(rr->data.len, 1);
	CHECK(memcmp(rr->data.data, "b", 1) == 0);
	CHECK_INT(rr->size, 3);
	CHECK(!rr->eof);
	sbx__v1__file_read_reply__free_unpacked(rr, NULL);
	CHECK_OK(file_read(sb, NULL, "chunks/a/b.txt", 1, 0, &rr));
	CHECK_INT(rr->data.len, 2);
	CHECK(memcmp(rr->data.data, "bc", 2) == 0);
	CHECK(rr->eof);
	sbx__v1__file_read_reply__free_unpacked(rr, NULL);
	CHECK_OK(file_read(sb, NULL, "chunks/a/b.txt", 3, 10, &rr));
	CHECK_INT(rr->data.len, 0);
	CHECK_INT(rr->size, 3);
	CHECK(rr->eof);
	sbx__v1__file_read_reply__free_unpacked(rr, NULL);
	CHECK_OK(file_read(sb, NULL, "chunks/a/b.txt", 1u << 30, 0, &rr));
	CHECK_INT(rr->data.len, 0);
	CHECK(rr->eof);
	sbx__v1__file_read_reply__free_unpacked(rr, NULL);
	CHECK_ERR(file_read(sb, NULL, "chunks/a/b.txt", UINT64_MAX, 0, &rr),
	          SBX_ERANGE);
	CHECK_ERR(file_read(sb, NULL, "chunks/a", 0, 0, &rr), SBX_ESTATE);
	check_msg("is a directory");
	CHECK_ERR(file_write(sb, NULL, "chunks/a", 0, "x", 1, 0, 0, NULL),
	          SBX_ESTATE);
	CHECK_ERR(file_write(sb, NULL, "chunks/a/b.txt", UINT64_MAX - 1, "x",
	                     1, 0, 0, NULL),
	          SBX_ERANGE);

	/* Exactly the cap is fine; a read never returns more than it. */
	for (size_t i = 0; i < CHUNK_CAP; i++) {
		big[i] = (uint8_t) (i * 7 + 3);
	}
	CHECK_OK(file_write(sb, NULL, "chunks/big", 0, big, CHUNK_CAP,
	                    W_TRUNC, 0, NULL));
	CHECK_OK(file_write(sb, NULL, "chunks/big", CHUNK_CAP, "Z", 1, 0, 0,
	                    NULL));
	CHECK_OK(file_read(sb, NULL, "chunks/big", 0, 0xffffffffu, &rr));
	CHECK_INT(rr->data.len, CHUNK_CAP);
	CHECK(memcmp(rr->data.data, big, CHUNK_CAP) == 0);
	CHECK_INT(rr->size, CHUNK_CAP + 1);
	CHECK(!rr->eof);
	sbx__v1__file_read_reply__free_unpacked(rr, NULL);
	CHECK_OK(file_read(sb, NULL, "chunks/big", CHUNK_CAP, 0, &rr));
	CHECK_INT(rr->data.len, 1);
	CHECK_INT(rr->data.data[0], 'Z');
	CHECK(rr->eof);
	sbx__v1__file_read_reply__free_unpacked(rr, NULL);

	/* One byte over the cap: refused before anything is written. */
	CHECK_ERR(file_write(sb, NULL, "chunks/over", 0, big, CHUNK_CAP + 1,
	                     W_TRUNC | W_PARENTS, 0, NULL),
	          SBX_ELIMIT);
	check_msg("262145 bytes exceed the 262144 per call");
	CHECK_ERR(file_stat(sb, NULL, "chunks/over", NULL), SBX_ENOTFOUND);
	CHECK_ERR(file_write(sb, NULL, "chunks/a/b.txt", 0, big, CHUNK_CAP + 1,
	                     W_TRUNC, 0, NULL),
	          SBX_ELIMIT);
	s = slurp(sb, NULL, "chunks/a/b.txt", &err);
	CHECK_OK(err);
	CHECK_STR(s, "abc");
	free(s);
	free(big);
	healthy();
}

/* ---- 3. list, stat, mkdir, move, remove ---- */

static void
check_entry(const Sbx__V1__FileEntry *e, const char *name, const char *path,
            Sbx__V1__FileType type, uint64_t size, uint32_t mode)
{
	long long now = (long long) time(NULL) * 1000;

	CHECK_STR(e->name, name);
	CHECK_STR(e->path, path);
	CHECK_INT(e->type, type);
	if (type != SBX__V1__FILE_TYPE__FILE_TYPE_DIRECTORY) {
		CHECK_INT(e->size, size);
	}
	CHECK_INT(e->mode, mode);
	CHECK_INT(e->uid, 1000);
	CHECK_INT(e->gid, 1000);
	CHECK_STR(e->owner, "user");
	CHECK_STR(e->group, "user");
	CHECK(e->mtime_ms > now - 120000 && e->mtime_ms < now + 5000);
}

static void
test_list_stat(void **state)
{
	const Sbx__V1__FileType F = SBX__V1__FILE_TYPE__FILE_TYPE_FILE,
	                        D = SBX__V1__FILE_TYPE__FILE_TYPE_DIRECTORY,
	                        L = SBX__V1__FILE_TYPE__FILE_TYPE_SYMLINK;
	Sbx__V1__FileListReply *rep;
	Sbx__V1__FileEntry *e;

	(void) state;
	CHECK_OK(file_mkdir(sb, NULL, "t3", false, 0, &e));
	check_entry(e, "t3", "/home/user/t3", D, 0, 0755);
	sbx__v1__file_entry__free_unpacked(e, NULL);
	put(sb, "t3/f1", "12345");
	put(sb, "t3/a/f2", "abc");
	CHECK_OK(file_mkdir(sb, NULL, "t3/a/b", false, 0700, NULL));
	sh_expect(sb, NULL, "ln -s f1 t3/link && ln -s nowhere t3/dangling",
	          "");

	CHECK_OK(file_list(sb, NULL, "t3", 0, &rep));
	CHECK_INT(rep->n_entries, 4);
	check_entry(rep->entries[0], "a", "/home/user/t3/a", D, 0, 0755);
	check_entry(rep->entries[1], "dangling", "/home/user/t3/dangling", L,
	            7, 0777);
	check_entry(rep->entries[2], "f1", "/home/user/t3/f1", F, 5, 0644);
	check_entry(rep->entries[3], "link", "/home/user/t3/link", L, 2, 0777);
	CHECK_STR(rep->entries[3]->symlink_target, "f1");
	CHECK_INT(rep->entries[3]->target_type, F);
	CHECK_STR(rep->entries[2]->symlink_target, "");
	sbx__v1__file_list_reply__free_unpacked(rep, NULL);

	CHECK_OK(file_list(sb, NULL, "/home/user/t3/", 2, &rep));
	CHECK_INT(rep->n_entries, 6);
	check_entry(rep->entries[0], "a", "/home/user/t3/a", D, 0, 0755);
	check_entry(rep->entries[1], "b", "/home/user/t3/a/b", D, 0, 0700);
	check_entry(rep->entries[2], "f2", "/home/user/t3/a/f2", F, 3, 0644);
	CHECK_STR(rep->entries[3]->path, "/home/user/t3/dangling");
	CHECK_STR(rep->entries[4]->path, "/home/user/t3/f1");
	CHECK_STR(rep->entries[5]->path, "/home/user/t3/link");
	sbx__v1__file_list_reply__free_unpacked(rep, NULL);
	/* Listing a file or a missing directory. */
	CHECK_ERR(file_list(sb, NULL, "t3/f1", 1, &rep), SBX_ESTATE);
	CHECK_ERR(file_list(sb, NULL, "t3/nope", 1, &rep), SBX_ENOTFOUND);
	CHECK_ERR(file_list(sb, NULL, "t3", 65, &rep), SBX_EINVAL);
	check_msg("depth");

	CHECK_OK(file_stat(sb, NULL, "t3/f1", &e));
	check_entry(e, "f1", "/home/user/t3/f1", F, 5, 0644);
	sbx__v1__file_entry__free_unpacked(e, NULL);
	CHECK_OK(file_stat(sb, NULL, "t3/a", &e));
	check_entry(e, "a", "/home/user/t3/a", D, 0, 0755);
	sbx__v1__file_entry__free_unpacked(e, NULL);
	CHECK_OK(file_stat(sb, NULL, "t3/link", &e));
	check_entry(e, "link", "/home/user/t3/link", L, 2, 0777);
	CHECK_STR(e->symlink_target, "f1");
	CHECK_INT(e->target_type, F);
	sbx__v1__file_entry__free_unpacked(e, NULL);
	CHECK_OK(file_stat(sb, NULL, "t3/dangling", &e));
	CHECK_INT(e->type, L);
	CHECK_STR(e->symlink_target, "nowhere");
	CHECK_INT(e->target_type, SBX__V1__FILE_TYPE__FILE_TYPE_UNSPECIFIED);
	sbx__v1__file_entry__free_unpacked(e, NULL);
	CHECK_ERR(file_stat(sb, NULL, "t3/missing", NULL), SBX_ENOTFOUND);
	check_msg("/home/user/t3/missing");
	/* A symlink to a directory reports what it reaches. */
	sh_expect(sb, NULL, "ln -s a t3/dirlink", "");
	CHECK_OK(file_stat(sb, NULL, "t3/dirlink", &e));
	CHECK_INT(e->target_type, D);
	sbx__v1__file_entry__free_unpacked(e, NULL);
	CHECK_OK(file_remove(sb, NULL, "t3/dirlink", false));
	healthy();
}

static void
test_mkdir_move_remove(void **state)
{
	Sbx__V1__FileEntry *e;
	char *s;
	sbx_err err;

	(void) state;
	/* mkdir: single, exists, parents, missing parents, mode. */
	CHECK_OK(file_mkdir(sb, NULL, "t4", false, 0, NULL));
	CHECK_ERR(file_mkdir(sb, NULL, "t4", false, 0, NULL), SBX_EEXIST);
	check_msg("exists");
	CHECK_ERR(file_mkdir(sb, NULL, "t4", true, 0, NULL), SBX_EEXIST);
	CHECK_ERR(file_mkdir(sb, NULL, "t4/x/y/z", false, 0, NULL),
	          SBX_ENOTFOUND);
	CHECK_ERR(file_stat(sb, NULL, "t4/x", NULL), SBX_ENOTFOUND);
	CHECK_OK(file_mkdir(sb, NULL, "t4/x/y/z", true, 0710, &e));
	CHECK_STR(e->path, "/home/user/t4/x/y/z");
	CHECK_INT(e->mode, 0710);
	CHECK_INT(e->type, SBX__V1__FILE_TYPE__FILE_TYPE_DIRECTORY);
	sbx__v1__file_entry__free_unpacked(e, NULL);
	sh_expect(sb, NULL, "stat -c '%a %U %F' t4/x t4/x/y t4/x/y/z",
	          "755 user directory\n755 user directory\n"
	          "710 user directory\n");
	put(sb, "t4/file", "data");
	CHECK_ERR(file_mkdir(sb, NULL, "t4/file", false, 0, NULL), SBX_EEXIST);
	CHECK_ERR(file_mkdir(sb, NULL, "t4/file/sub", true, 0, NULL),
	          SBX_ESTATE);

	/* move: rename, into new parents, replace, missing. */
	CHECK_OK(file_move(sb, NULL, "t4/file", "t4/renamed", false, &e));
	CHECK_STR(e->path, "/home/user/t4/renamed");
	CHECK_INT(e->size, 4);
	sbx__v1__file_entry__free_unpacked(e, NULL);
	CHECK_ERR(file_stat(sb, NULL, "t4/file", NULL), SBX_ENOTFOUND);
	CHECK_ERR(file_move(sb, NULL, "t4/renamed", "t4/new/dir/moved", false,
	                    NULL),
	          SBX_ENOTFOUND);
	CHECK_OK(file_stat(sb, NULL, "t4/renamed", NULL));
	CHECK_OK(file_move(sb, NULL, "t4/renamed", "t4/new/dir/moved", true,
	                   &e));
	CHECK_STR(e->path, "/home/user/t4/new/dir/moved");
	CHECK_STR(e->owner, "user");
	sbx__v1__file_entry__free_unpacked(e, NULL);
	s = slurp(sb, NULL, "t4/new/dir/moved", &err);
	CHECK_OK(err);
	CHECK_STR(s, "data");
	free(s);
	put(sb, "t4/other", "other content");
	CHECK_OK(file_move(sb, NULL, "t4/other", "t4/new/dir/moved", false,
	                   &e));
	CHECK_INT(e->size, 13);
	sbx__v1__file_entry__free_unpacked(e, NULL);
	sh_expect(sb, NULL, "cat t4/new/dir/moved; ls t4",
	          "other contentnew\nx\n");
	CHECK_ERR(file_move(sb, NULL, "t4/nothing", "t4/n2", false, NULL),
	          SBX_ENOTFOUND);
	/* A directory moves with its contents. */
	CHECK_OK(file_move(sb, NULL, "t4/new", "t4/x/new2", false, &e));
	CHECK_INT(e->type, SBX__V1__FILE_TYPE__FILE_TYPE_DIRECTORY);
	sbx__v1__file_entry__free_unpacked(e, NULL);
	sh_expect(sb, NULL, "cat t4/x/new2/dir/moved", "other content");

	/* remove: file, empty dir, non-empty dir, recursive, missing. */
	put(sb, "t4/gone", "x");
	CHECK_OK(file_remove(sb, NULL, "t4/gone", false));
	CHECK_ERR(file_stat(sb, NULL, "t4/gone", NULL), SBX_ENOTFOUND);
	CHECK_ERR(file_remove(sb, NULL, "t4/gone", false), SBX_ENOTFOUND);
	CHECK_ERR(file_remove(sb, NULL, "t4/x", false), SBX_ESTATE);
	check_msg("not empty");
	sh_expect(sb, NULL, "find t4 | sort",
	          "t4\nt4/x\nt4/x/new2\nt4/x/new2/dir\nt4/x/new2/dir/moved\n"
	          "t4/x/y\nt4/x/y/z\n");
	CHECK_OK(file_remove(sb, NULL, "t4/x/y/z", false));
	CHECK_OK(file_remove(sb, NULL, "t4/x", true));
	sh_expect(sb, NULL, "find t4", "t4\n");
	/* A symlink is removed, not what it points to. */
	put(sb, "t4/target", "kept");
	sh_expect(sb, NULL, "ln -s target t4/ln; ln -s /home/user/t4 t4/dl",
	          "");
	CHECK_OK(file_remove(sb, NULL, "t4/ln", false));
	CHECK_OK(file_remove(sb, NULL, "t4/dl", true));
	sh_expect(sb, NULL, "ls t4; cat t4/target", "target\nkept");
	/* A final "..", "." or "/" never removes a parent. */
	CHECK_ERR(file_remove(sb, NULL, "t4/..", true), SBX_EINVAL);
	CHECK_ERR(file_remove(sb, NULL, "/", true), SBX_EINVAL);
	CHECK_ERR(file_remove(sb, NULL, "t4/.", true), SBX_EINVAL);
	CHECK_OK(file_stat(sb, NULL, "t4/target", NULL));
	healthy();
}

/* ---- 4. paths and users ---- */

static void
test_paths_users(void **state)
{
	Sbx__V1__FileListReply *rep;
	Sbx__V1__FileEntry *e;
	char *s;
	sbx_err err;

	(void) state;
	CHECK_OK(file_write(sb, NULL, "~/tilde.txt", 0, "t", 1, W_TRUNC, 0,
	                    &e));
	CHECK_STR(e->path, "/home/user/tilde.txt");
	sbx__v1__file_entry__free_unpacked(e, NULL);
	CHECK_OK(file_write(sb, NULL, "rel/dir/x", 0, "r", 1, W_PARENTS, 0,
	                    &e));
	CHECK_STR(e->path, "/home/user/rel/dir/x");
	sbx__v1__file_entry__free_unpacked(e, NULL);
	CHECK_OK(file_write(sb, NULL, "./rel//dir/../y", 0, "y", 1, 0, 0, &e));
	CHECK_STR(e->path, "/home/user/rel/y");
	sbx__v1__file_entry__free_unpacked(e, NULL);
	CHECK_OK(file_stat(sb, NULL, "~", &e));
	CHECK_STR(e->path, "/home/user");
	CHECK_STR(e->name, "user");
	CHECK_INT(e->type, SBX__V1__FILE_TYPE__FILE_TYPE_DIRECTORY);
	sbx__v1__file_entry__free_unpacked(e, NULL);
	CHECK_OK(file_stat(sb, NULL, "", &e));
	CHECK_STR(e->path, "/home/user");
	sbx__v1__file_entry__free_unpacked(e, NULL);
	CHECK_OK(file_list(sb, NULL, "~", 1, &rep));
	CHECK(list_has(rep, "tilde.txt"));
	CHECK(list_has(rep, "rel"));
	sbx__v1__file_list_reply__free_unpacked(rep, NULL);
	sh_expect(sb, NULL, "cat ~/tilde.txt rel/dir/x rel/y", "try");

	/* root's home is /root, and what root creates is root's. */
	CHECK_OK(file_write(sb, "root", "r.txt", 0, "root data", 9, W_TRUNC,
	                    0, &e));
	CHECK_STR(e->path, "/root/r.txt");
	CHECK_INT(e->uid, 0);
	CHECK_INT(e->gid, 0);
	CHECK_STR(e->owner, "root");
	CHECK_STR(e->group, "root");
	sbx__v1__file_entry__free_unpacked(e, NULL);
	CHECK_OK(file_stat(sb, "root", "~", &e));
	CHECK_STR(e->path, "/root");
	CHECK_INT(e->uid, 0);
	sbx__v1__file_entry__free_unpacked(e, NULL);
	CHECK_OK(file_mkdir(sb, "root", "~/rdir", false, 0, &e));
	CHECK_STR(e->path, "/root/rdir");
	CHECK_STR(e->owner, "root");
	sbx__v1__file_entry__free_unpacked(e, NULL);
	sh_expect(sb, "root", "stat -c '%n %u %U %a' /root/r.txt /root/rdir",
	          "/root/r.txt 0 root 644\n/root/rdir 0 root 755\n");
	/* The user can neither read nor write there. */
	CHECK_ERR(file_read(sb, NULL, "/root/r.txt", 0, 0, NULL), SBX_EPERM);
	check_msg("Permission denied");
	CHECK_ERR(file_write(sb, NULL, "/root/u.txt", 0, "u", 1, 0, 0, NULL),
	          SBX_EPERM);
	CHECK_ERR(file_list(sb, NULL, "/root", 1, &rep), SBX_EPERM);
	/* A root-only file where the user can reach it: file permissions
	 * decide, as for a process. */
	CHECK_OK(file_write(sb, "root", "/tmp/root-only", 0, "secret", 6,
	                    W_TRUNC, 0600, NULL));
	CHECK_ERR(file_read(sb, NULL, "/tmp/root-only", 0, 0, NULL),
	          SBX_EPERM);
	CHECK_ERR(file_write(sb, NULL, "/tmp/root-only", 0, "x", 1, 0, 0,
	                     NULL),
	          SBX_EPERM);
	sh_expect(sb, NULL, "cat /tmp/root-only 2>/dev/null || echo denied",
	          "denied\n");
	/* root reads what it has permission for, the user's files too. */
	CHECK_OK(file_write(sb, NULL, "/tmp/user-file", 0, "mine", 4, W_TRUNC,
	                    0644, NULL));
	s = slurp(sb, "root", "/tmp/user-file", &err);
	CHECK_OK(err);
	CHECK_STR(s, "mine");
	free(s);
	s = slurp(sb, "root", "/tmp/root-only", &err);
	CHECK_OK(err);
	CHECK_STR(s, "secret");
	free(s);
	/* The user may not create at / or in /etc; root owns /. */
	CHECK_ERR(file_write(sb, NULL, "/x", 0, "x", 1, 0, 0, NULL), SBX_EPERM);
	CHECK_ERR(file_mkdir(sb, NULL, "/etc/x", false, 0, NULL), SBX_EPERM);
	healthy();
}

/* ---- 5. escapes ---- */

static const char jail_passwd[] =
        "root:x:0:0:root:/root:/bin/bash\n"
        "user:x:1000:1000:user:/home/user:/bin/bash\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";

/* PATH must not be readable as USER, and nothing read may hold MARK;
 * with STAT, stat must not find a file of MARK's size there either. */
static void
no_read(const char *user, const char *path, const char *mark, bool stat)
{
	Sbx__V1__FileReadReply *rr = NULL;
	Sbx__V1__FileEntry *e = NULL;
	sbx_err err = file_read(sb, user, path, 0, 0, &rr);

	if (err == SBX_OK) {
		fail_msg("read %s as %s succeeded: %.*s", path,
		         user != NULL ? user : "user", (int) rr->data.len,
		         (const char *) rr->data.data);
	}
	if (err != SBX_ENOTFOUND && err != SBX_EPERM && err != SBX_EINVAL) {
		fail_msg("read %s: unexpected %s: %s", path,
		         sbx_strerror(err), sbx_last_error());
	}
	CHECK(strstr(sbx_last_error(), mark) == NULL);
	if (stat && file_stat(sb, user, path, &e) == SBX_OK) {
		if (e->type == SBX__V1__FILE_TYPE__FILE_TYPE_FILE &&
		    e->size == strlen(mark)) {
			fail_msg("stat %s as %s found a file of %llu bytes",
			         path, user != NULL ? user : "user",
			         (unsigned long long) e->size);
		}
		sbx__v1__file_entry__free_unpacked(e, NULL);
	}
}

/* Start ARGV in the background in SB as USER; returns its pid inside. */
static uint32_t
start_bg(const char *user, const char *const *argv, size_t argc)
{
	Sbx__V1__ProcessStartRequest req = SBX__V1__PROCESS_START_REQUEST__INIT;
	Sbx__V1__ProcessInfo *pi = NULL;
	uint32_t pid;

	req.sandbox_id = sb;
	req.user = (char *) (user != NULL ? user : "");
	req.argv = (char **) argv;
	req.n_argv = argc;
	CHECK_OK(sbx_call(fx.c, "ProcessStart", &req.base,
	                  (ProtobufCMessage **) &pi));
	pid = pi->pid;
	sbx__v1__process_info__free_unpacked(pi, NULL);
	return pid;
}

static void
kill_bg(uint32_t pid)
{
	Sbx__V1__ProcessSignalRequest req = SBX__V1__PROCESS_SIGNAL_REQUEST__INIT;
	Sbx__V1__ProcessRef ref = SBX__V1__PROCESS_REF__INIT;
	ProtobufCMessage *rep;

	ref.ref_case = SBX__V1__PROCESS_REF__REF_PID;
	ref.pid = pid;
	req.sandbox_id = sb;
	req.process = &ref;
	req.signal = 9;
	CHECK_OK(sbx_call(fx.c, "ProcessSignal", &req.base, &rep));
	protobuf_c_message_free_unpacked(rep, NULL);
}

/*
 * /proc magic links (root, cwd, exe, fd/N) jump wherever the kernel says,
 * not along a path inside the root. sbxd's file workers run without
 * CAP_SYS_PTRACE in the host's user namespace, so the kernel's ptrace
 * check closes them even for the user's own processes: they fail before
 * resolution, through a symlink, for writing, and for stat.
 */
static void
test_magic_links_of_own_process(void)
{
	static const char *const argv[] = {"sleep", "120"};
	const char *rest[] = {"/root/etc/passwd", "/cwd/x", "/exe", "/fd/0",
	                      "/root"};
	Sbx__V1__FileListReply *rep;
	uint32_t pid = start_bg(NULL, argv, 2);
	char path[128], cmd[128];

	CHECK(pid > 1);
	for (size_t i = 0; i < sizeof(rest) / sizeof(rest[0]); i++) {
		snprintf(path, sizeof(path), "/proc/%u%s", pid, rest[i]);
		CHECK_ERR(file_read(sb, NULL, path, 0, 0, NULL), SBX_EPERM);
		check_msg("Permission denied");
		CHECK_ERR(file_read(sb, "root", path, 0, 0, NULL), SBX_EPERM);
	}
	snprintf(path, sizeof(path), "/proc/%u/root", pid);
	CHECK_ERR(file_list(sb, NULL, path, 1, &rep), SBX_EPERM);
	CHECK_ERR(file_stat(sb, NULL, path, NULL), SBX_EPERM);
	snprintf(cmd, sizeof(cmd), "ln -s /proc/%u/root ~/ownroot", pid);
	sh_expect(sb, NULL, cmd, "");
	CHECK_ERR(file_read(sb, NULL, "ownroot/etc/passwd", 0, 0, NULL),
	          SBX_EPERM);
	CHECK_ERR(file_write(sb, NULL, "ownroot/home/user/x", 0, "x", 1,
	                     W_TRUNC, 0, NULL),
	          SBX_EPERM);
	CHECK_ERR(file_stat(sb, NULL, "x", NULL), SBX_ENOTFOUND);
	/* Plain /proc files of it are readable by the kernel's rules but
	 * refused as a pseudo filesystem. */
	snprintf(path, sizeof(path), "/proc/%u/cmdline", pid);
	CHECK_ERR(file_read(sb, NULL, path, 0, 0, NULL), SBX_EPERM);
	check_msg("pseudo filesystem");
	kill_bg(pid);
}

static void
test_escape_paths(void **state)
{
	char marker[700], sibling[800], path[2000], mark[64], cmd[2000];
	const char *users[] = {NULL, "root"};
	Sbx__V1__FileListReply *rep;
	char *s, *host_pw;
	sbx_err err;

	(void) state;
	/* ".." stops at the jail's root: this is the generated passwd. */
	s = slurp(sb, NULL, "../../../../etc/passwd", &err);
	CHECK_OK(err);
	CHECK_STR(s, jail_passwd);
	free(s);
	s = slurp(sb, "root", "/../../../etc/./passwd", &err);
	CHECK_OK(err);
	CHECK_STR(s, jail_passwd);
	free(s);
	host_pw = sbx_test_read_file("/etc/passwd", NULL);
	CHECK(host_pw != NULL && strcmp(host_pw, jail_passwd) != 0);

	/* Host files outside the jail: one in the state dir, one beside
	 * the sandbox's home directory on the host. */
	snprintf(mark, sizeof(mark), "HOST-MARKER-%d-%lld", (int) getpid(),
	         sbx_test_mono_ms());
	snprintf(marker, sizeof(marker), "%s/host-marker.txt", fx.state_dir);
	host_write(marker, mark, strlen(mark));
	snprintf(sibling, sizeof(sibling), "%s/sandboxes/%s/marker.txt",
	         fx.state_dir, sb);
	host_write(sibling, mark, strlen(mark));
	snprintf(cmd, sizeof(cmd),
	         "ln -s / hostroot && ln -s /proc/1/root p1root && "
	         "ln -s /proc/1/cwd p1cwd && "
	         "ln -s ../../../../../../etc etcup && "
	         "ln -s '%s' m1 && ln -s '%s' m2 && ln -s /etc/passwd pw && "
	         "ln -s /proc/self/root selfroot",
	         marker, sibling);
	sh_expect(sb, NULL, cmd, "");
	/* The same in root's home, which the user cannot enter. */
	snprintf(cmd, sizeof(cmd),
	         "ln -s / /root/hr && ln -s /proc/1/root /root/p1 && "
	         "ln -s '%s' /root/m1",
	         marker);
	sh_expect(sb, "root", cmd, "");

	for (size_t u = 0; u < 2; u++) {
		const char *user = users[u];
		/* Each prefix is followed by the host file's absolute
		 * path. */
		const char *via[] = {
			"", "../../../..", "/proc/1/root",
			"/proc/1/cwd/../../..", "/proc/self/root",
			"/proc/thread-self/root", "/home/user/hostroot",
			"/home/user/p1root", "/home/user/p1cwd/../..",
			"/home/user/selfroot", "/run/sbx/../../..",
			"/usr/../..", "/root/hr", "/root/p1",
			"/root/hr/proc/1/root",
		};

		for (size_t i = 0; i < sizeof(via) / sizeof(via[0]); i++) {
			snprintf(path, sizeof(path), "%s%s", via[i], marker);
			no_read(user, path, mark, true);
			snprintf(path, sizeof(path), "%s%s", via[i], sibling);
			no_read(user, path, mark, true);
		}
		no_read(user, "/home/user/m1", mark, true);
		no_read(user, "/home/user/m2", mark, true);
		no_read(user, "/root/m1", mark, true);
		no_read(user, "/home/user/../marker.txt", mark, true);
		no_read(user, "/home/marker.txt", mark, true);
		no_read(user, "/marker.txt", mark, true);
		no_read(user, "/host-marker.txt", mark, true);
		no_read(user, "/proc/1/root/etc/passwd", mark, false);
		no_read(user, "/proc/1/environ", mark, false);
		no_read(user, "/proc/1/mountinfo", mark, false);
	}
	/* Symlinks made inside resolve inside. */
	s = slurp(sb, NULL, "hostroot/etc/passwd", &err);
	CHECK_OK(err);
	CHECK_STR(s, jail_passwd);
	free(s);
	s = slurp(sb, NULL, "etcup/passwd", &err);
	CHECK_OK(err);
	CHECK_STR(s, jail_passwd);
	free(s);
	s = slurp(sb, "root", "hr/etc/passwd", &err);
	CHECK_OK(err);
	CHECK_STR(s, jail_passwd);
	free(s);
	/* sbx-init's /proc entries are closed to both users (it is not
	 * theirs to ptrace), so its magic links fail before resolution. */
	CHECK_ERR(file_read(sb, NULL, "p1root/etc/passwd", 0, 0, NULL),
	          SBX_EPERM);
	CHECK_ERR(file_read(sb, "root", "p1/etc/passwd", 0, 0, NULL),
	          SBX_EPERM);
	CHECK_ERR(file_list(sb, "root", "/proc/1/root", 1, &rep), SBX_EPERM);
	CHECK_ERR(file_list(sb, "root", "/proc/1/cwd", 1, &rep), SBX_EPERM);
	test_magic_links_of_own_process();
	/* A dangling link to the host path: nothing read, nothing made. */
	CHECK_ERR(file_write(sb, NULL, "m1", 0, "pwned", 5, W_TRUNC, 0, NULL),
	          SBX_ENOTFOUND);
	CHECK_ERR(file_write(sb, NULL, "m2", 0, "pwned", 5, 0, 0, NULL),
	          SBX_ENOTFOUND);
	CHECK_ERR(file_write(sb, "root", "m1", 0, "pwned", 5, W_TRUNC, 0,
	                     NULL),
	          SBX_ENOTFOUND);
	sh_expect(sb, "root", "test -e /root/m1 || echo dangling",
	          "dangling\n");
	/* Writing through a link to the read-only /etc/passwd. */
	CHECK_ERR(file_write(sb, NULL, "pw", 0, "x", 1, W_TRUNC, 0, NULL),
	          SBX_EPERM);
	CHECK_ERR(file_write(sb, "root", "/etc/passwd", 0, "x", 1, W_TRUNC,
	                     0, NULL),
	          SBX_EPERM);
	/* Root making the host path makes it inside the jail (its /tmp),
	 * and moving onto the marker's path replaces nothing on the host. */
	snprintf(path, sizeof(path), "%s/escape.txt", fx.state_dir);
	CHECK_OK(file_write(sb, "root", path, 0, "in jail", 7,
	                    W_TRUNC | W_PARENTS, 0, NULL));
	CHECK(access(path, F_OK) != 0);
	CHECK_OK(file_move(sb, "root", path, marker, false, NULL));
	snprintf(cmd, sizeof(cmd), "cat '%s'", marker);
	sh_expect(sb, "root", cmd, "in jail");
	/* The host files are untouched. */
	s = sbx_test_read_file(marker, NULL);
	CHECK(s != NULL);
	CHECK_STR(s, mark);
	free(s);
	s = sbx_test_read_file(sibling, NULL);
	CHECK(s != NULL);
	CHECK_STR(s, mark);
	free(s);
	s = sbx_test_read_file("/etc/passwd", NULL);
	CHECK(s != NULL);
	CHECK_STR(s, host_pw);
	free(s);
	free(host_pw);

	/* The jail's / and /etc, not the host's (which has /work, /srv,
	 * /etc/shadow). */
	CHECK_OK(file_list(sb, "root", "/", 1, &rep));
	{
		const char *want[] = {"bin", "dev", "etc", "home", "lib",
		                      "lib64", "opt", "proc", "root", "run",
		                      "sbin", "tmp", "usr", "var"};
		size_t n = 0;

		for (size_t i = 0; i < rep->n_entries; i++) {
			const char *p = rep->entries[i]->path;
			size_t k = strlen(p);

			/* Skip the top of the scratch path root made above
			 * (it lands in the jail's /tmp unless TMPDIR is
			 * elsewhere). */
			if (strncmp(fx.dir, p, k) == 0 && fx.dir[k] == '/' &&
			    strcmp(p, "/tmp") != 0) {
				continue;
			}
			CHECK(n < sizeof(want) / sizeof(want[0]));
			CHECK_STR(rep->entries[i]->name, want[n]);
			n++;
		}
		CHECK_INT(n, sizeof(want) / sizeof(want[0]));
	}
	sbx__v1__file_list_reply__free_unpacked(rep, NULL);
	CHECK_OK(file_list(sb, NULL, "hostroot", 1, &rep));
	CHECK(!list_has(rep, "work"));
	CHECK(!list_has(rep, "srv"));
	CHECK(list_has(rep, "usr"));
	sbx__v1__file_list_reply__free_unpacked(rep, NULL);
	CHECK_OK(file_list(sb, NULL, "etcup", 1, &rep));
	CHECK(list_has(rep, "passwd"));
	CHECK(list_has(rep, "hostname"));
	CHECK(!list_has(rep, "shadow"));
	sbx__v1__file_list_reply__free_unpacked(rep, NULL);
	healthy();
}

static void
test_escape_kernel_and_special(void **state)
{
	char host[256], *before, *after, *s;
	Sbx__V1__FileListReply *rep;
	long long t0;
	sbx_err err;

	(void) state;
	/* Read-only system directories. */
	CHECK_ERR(file_write(sb, NULL, "/usr/bin/x", 0, "x", 1, W_TRUNC, 0755,
	                     NULL),
	          SBX_EPERM);
	CHECK_ERR(file_write(sb, "root", "/usr/bin/x", 0, "x", 1, W_TRUNC,
	                     0755, NULL),
	          SBX_EPERM);
	CHECK_ERR(file_write(sb, "root", "/usr/bin/sh", 0, "x", 1, W_TRUNC, 0,
	                     NULL),
	          SBX_EPERM);
	CHECK_ERR(file_remove(sb, "root", "/usr/bin/sh", false), SBX_EPERM);
	CHECK_ERR(file_mkdir(sb, "root", "/usr/newdir", false, 0, NULL),
	          SBX_EPERM);
	CHECK(access("/usr/bin/x", F_OK) != 0);
	CHECK(access("/usr/newdir", F_OK) != 0);
	sh_expect(sb, NULL, "head -c 4 /usr/bin/sh | od -An -tx1 | tr -d ' '",
	          "7f454c46\n");

	/* /proc/sys: never read or written by sbxd. The data written is
	 * the host's own hostname, so even a broken guard changes
	 * nothing; the status still tells. */
	CHECK_INT(gethostname(host, sizeof(host)), 0);
	before = sbx_test_read_file("/proc/sys/kernel/hostname", NULL);
	CHECK(before != NULL);
	for (int u = 0; u < 2; u++) {
		const char *user = u == 0 ? NULL : "root";

		CHECK_ERR(file_read(sb, user, "/proc/sys/kernel/hostname", 0,
		                    0, NULL),
		          SBX_EPERM);
		check_msg("pseudo filesystem");
		CHECK_ERR(file_write(sb, user, "/proc/sys/kernel/hostname", 0,
		                     host, strlen(host), 0, 0, NULL),
		          SBX_EPERM);
		CHECK_ERR(file_write(sb, user, "/proc/sys/kernel/newfile", 0,
		                     "x", 1, W_TRUNC, 0, NULL),
		          SBX_EPERM);
		CHECK_ERR(file_mkdir(sb, user, "/proc/sys/kernel/d", false, 0,
		                     NULL),
		          SBX_EPERM);
		CHECK_ERR(file_remove(sb, user, "/proc/sys/kernel/hostname",
		                      false),
		          SBX_EPERM);
		CHECK_ERR(file_read(sb, user, "/proc/self/status", 0, 0, NULL),
		          SBX_ENOTFOUND);
		CHECK_ERR(file_read(sb, user, "/proc/1/status", 0, 0, NULL),
		          SBX_EPERM);
	}
	after = sbx_test_read_file("/proc/sys/kernel/hostname", NULL);
	CHECK(after != NULL);
	CHECK_STR(after, before);
	free(before);
	free(after);
	sh_expect(sb, NULL, "hostname", "sbx\n");
	/* /proc may still be listed and stat'ed. */
	CHECK_OK(file_list(sb, NULL, "/proc/sys/kernel", 1, &rep));
	CHECK(list_has(rep, "hostname"));
	sbx__v1__file_list_reply__free_unpacked(rep, NULL);

	/* A FIFO: refused at once, not a hang, with or without a reader. */
	sh_expect(sb, NULL, "mkfifo ~/fifo", "");
	t0 = sbx_test_mono_ms();
	CHECK_ERR(file_read(sb, NULL, "fifo", 0, 0, NULL), SBX_ESTATE);
	check_msg("not a regular file");
	CHECK_ERR(file_write(sb, NULL, "fifo", 0, "x", 1, 0, 0, NULL),
	          SBX_ESTATE);
	CHECK_ERR(file_write(sb, NULL, "fifo", 0, "x", 1, W_TRUNC, 0, NULL),
	          SBX_ESTATE);
	CHECK_ERR(file_read(sb, "root", "/home/user/fifo", 0, 0, NULL),
	          SBX_EPERM); /* /home/user is 0700 */
	CHECK(sbx_test_mono_ms() - t0 < 3000);
	CHECK_OK(file_list(sb, NULL, "~", 1, &rep));
	for (size_t i = 0; i < rep->n_entries; i++) {
		if (strcmp(rep->entries[i]->name, "fifo") == 0) {
			CHECK_INT(rep->entries[i]->type,
			          SBX__V1__FILE_TYPE__FILE_TYPE_OTHER);
		}
	}
	sbx__v1__file_list_reply__free_unpacked(rep, NULL);
	/* Devices are not regular files either. */
	t0 = sbx_test_mono_ms();
	CHECK_ERR(file_read(sb, NULL, "/dev/zero", 0, 0, NULL), SBX_ESTATE);
	CHECK_ERR(file_read(sb, NULL, "/dev/urandom", 0, 0, NULL), SBX_ESTATE);
	CHECK_ERR(file_write(sb, NULL, "/dev/null", 0, "x", 1, 0, 0, NULL),
	          SBX_ESTATE);
	CHECK(sbx_test_mono_ms() - t0 < 3000);
	/* /sys is not in the jail at all. */
	CHECK_ERR(file_read(sb, "root", "/sys/kernel/mm/ksm/run", 0, 0, NULL),
	          SBX_ENOTFOUND);
	/* And the sandbox still works. */
	s = slurp(sb, NULL, "/etc/hostname", &err);
	CHECK_OK(err);
	CHECK_STR(s, "sbx\n");
	free(s);
	healthy();
}

/* ---- 6. isolation and visibility ---- */

static void
test_isolation_visibility(void **state)
{
	Sbx__V1__FileListReply *rep;
	char *b = sbxd_create(&fx, NULL), *s;
	sbx_err err;

	(void) state;
	CHECK(b != NULL);
	put(sb, "/home/user/only-a.txt", "A's");
	put(sb, "/tmp/only-a.txt", "A's tmp");
	CHECK_ERR(file_stat(b, NULL, "/home/user/only-a.txt", NULL),
	          SBX_ENOTFOUND);
	CHECK_ERR(file_stat(b, NULL, "/tmp/only-a.txt", NULL), SBX_ENOTFOUND);
	CHECK_ERR(file_read(b, NULL, "only-a.txt", 0, 0, NULL),
	          SBX_ENOTFOUND);
	CHECK_OK(file_list(b, NULL, "~", 1, &rep));
	CHECK_INT(rep->n_entries, 0);
	sbx__v1__file_list_reply__free_unpacked(rep, NULL);
	sh_expect(b, NULL, "ls -A /home/user /tmp; echo end", "/home/user:\n\n"
	          "/tmp:\nend\n");
	/* The same name in B is B's own file. */
	put(b, "/home/user/only-a.txt", "B's");
	s = slurp(sb, NULL, "only-a.txt", &err);
	CHECK_OK(err);
	CHECK_STR(s, "A's");
	free(s);

	/* API writes are seen by processes, and the other way round. */
	put(b, "api.txt", "from the api\n");
	sh_expect(b, NULL, "cat ~/api.txt", "from the api\n");
	sh_expect(b, NULL,
	          "printf 'from a process' > ~/proc.txt && "
	          "printf 'in tmpfs' > /tmp/t.txt && "
	          "mkdir -p ~/pd/sub && printf x > ~/pd/sub/f",
	          "");
	s = slurp(b, NULL, "proc.txt", &err);
	CHECK_OK(err);
	CHECK_STR(s, "from a process");
	free(s);
	s = slurp(b, NULL, "/tmp/t.txt", &err);
	CHECK_OK(err);
	CHECK_STR(s, "in tmpfs");
	free(s);
	CHECK_OK(file_list(b, NULL, "pd", 2, &rep));
	CHECK_INT(rep->n_entries, 2);
	CHECK_STR(rep->entries[1]->path, "/home/user/pd/sub/f");
	CHECK_INT(rep->entries[1]->size, 1);
	sbx__v1__file_list_reply__free_unpacked(rep, NULL);
	/* An API remove is seen by a process. */
	CHECK_OK(file_remove(b, NULL, "pd", true));
	sh_expect(b, NULL, "test -e ~/pd || echo gone", "gone\n");
	CHECK_OK(sbxd_kill(&fx, b));
	free(b);
	healthy();
}

/* ---- 7. bad targets and caps ---- */

/* Every file call on ID as USER fails with WANT. */
static void
all_calls_fail(const char *id, const char *user, sbx_err want,
               const char *word)
{
	Sbx__V1__FileListReply *rep;

	CHECK_ERR(file_write(id, user, "f", 0, "x", 1, 0, 0, NULL), want);
	check_msg(word);
	CHECK_ERR(file_read(id, user, "f", 0, 0, NULL), want);
	check_msg(word);
	CHECK_ERR(file_list(id, user, "~", 1, &rep), want);
	check_msg(word);
	CHECK_ERR(file_stat(id, user, "~", NULL), want);
	check_msg(word);
	CHECK_ERR(file_mkdir(id, user, "d", false, 0, NULL), want);
	check_msg(word);
	CHECK_ERR(file_move(id, user, "f", "g", false, NULL), want);
	check_msg(word);
	CHECK_ERR(file_remove(id, user, "f", false), want);
	check_msg(word);
}

static void
test_bad_targets(void **state)
{
	char *c = sbxd_create(&fx, NULL), *longp;

	(void) state;
	CHECK(c != NULL);
	all_calls_fail("aaaaaaaaaaaaaaaaaaaa", NULL, SBX_ENOTFOUND,
	               "no sandbox");
	all_calls_fail("../../etc", NULL, SBX_EINVAL, "invalid sandbox id");
	all_calls_fail("", NULL, SBX_EINVAL, "invalid sandbox id");
	all_calls_fail(sb, "admin", SBX_EINVAL, "unknown user");
	all_calls_fail(sb, "0", SBX_EINVAL, "unknown user");
	all_calls_fail(sb, "Root", SBX_EINVAL, "unknown user");
	/* A killed sandbox: its files are gone with it. */
	put(c, "f", "x");
	CHECK_OK(sbxd_kill(&fx, c));
	all_calls_fail(c, NULL, SBX_ENOTFOUND, "killed");
	/* Paths too long for the kernel, or for sbxd. */
	longp = malloc(5001);
	CHECK(longp != NULL);
	memset(longp, 'a', 5000);
	longp[5000] = '\0';
	CHECK_ERR(file_write(sb, NULL, longp, 0, "x", 1, 0, 0, NULL),
	          SBX_EINVAL);
	check_msg("longer than");
	CHECK_ERR(file_stat(sb, NULL, longp, NULL), SBX_EINVAL);
	longp[300] = '\0';
	CHECK_ERR(file_write(sb, NULL, longp, 0, "x", 1, 0, 0, NULL),
	          SBX_EINVAL);
	check_msg("File name too long");
	free(longp);
	free(c);
	healthy();
}

struct list_job {
	const char *path;
	uint32_t depth;
	sbx_err err;
	size_t n;
	char first[64], last[64];
	char why[600]; /* sbx_last_error() is per thread */
	bool done;
};

static void *
list_thread(void *arg)
{
	struct list_job *j = arg;
	Sbx__V1__FileListReply *rep = NULL;

	j->err = file_list(sb, NULL, j->path, j->depth, &rep);
	snprintf(j->why, sizeof(j->why), "%s", sbx_last_error());
	if (j->err == SBX_OK) {
		j->n = rep->n_entries;
		if (rep->n_entries > 0) {
			snprintf(j->first, sizeof(j->first), "%s",
			         rep->entries[0]->name);
			snprintf(j->last, sizeof(j->last), "%s",
			         rep->entries[rep->n_entries - 1]->name);
		}
		sbx__v1__file_list_reply__free_unpacked(rep, NULL);
	}
	__atomic_store_n(&j->done, true, __ATOMIC_RELEASE);
	return NULL;
}

/* List in a thread while Health keeps answering on this one. */
static void
list_while_healthy(struct list_job *j)
{
	long long t0 = sbx_test_mono_ms();
	pthread_t t;

	j->done = false;
	CHECK_INT(pthread_create(&t, NULL, list_thread, j), 0);
	/* However long the list takes, other calls are answered at once. */
	do {
		healthy();
	} while (!__atomic_load_n(&j->done, __ATOMIC_ACQUIRE) &&
	         sbx_test_mono_ms() - t0 < 30000);
	CHECK_INT(pthread_join(t, NULL), 0);
	CHECK(sbx_test_mono_ms() - t0 < 30000);
}

static void
test_huge_directory(void **state)
{
	struct list_job j = {.path = "many", .depth = 1};
	char *out = NULL;

	(void) state;
	CHECK_INT(sh(sb, NULL,
	             "mkdir ~/many && cd ~/many && "
	             "seq -f 'file-%05g' 0 2999 | xargs touch && "
	             "ls | wc -l",
	             &out),
	          0);
	CHECK_STR(out, "3000\n");
	free(out);
	list_while_healthy(&j);
	CHECK_OK(j.err);
	CHECK_INT(j.n, 3000);
	CHECK_STR(j.first, "file-00000");
	CHECK_STR(j.last, "file-02999");

	/* A tree whose listing is far larger than a message: thousands of
	 * entries with ~3.6 KiB paths. It must fail clearly and quickly,
	 * and never stall the daemon. */
	CHECK_INT(sh(sb, NULL,
	             "set -e; p=~/deep; n=$(printf 'd%.0s' $(seq 240)); "
	             "for i in $(seq 15); do p=$p/$n; done; mkdir -p $p; "
	             "cd $p; f=$(printf 'f%.0s' $(seq 200)); "
	             "seq -f \"$f%05g\" 0 5999 | xargs touch; ls | wc -l",
	             &out),
	          0);
	CHECK_STR(out, "6000\n");
	free(out);
	memset(&j, 0, sizeof(j));
	j.path = "deep";
	j.depth = 32;
	list_while_healthy(&j);
	CHECK_ERR(j.err, SBX_ELIMIT);
	if (strstr(j.why, "more than 16777216 bytes of names and paths") ==
	    NULL) {
		fail_msg("unexpected message: %s", j.why);
	}
	/* Depth 1 of the same tree is small and fine. */
	memset(&j, 0, sizeof(j));
	j.path = "deep";
	j.depth = 1;
	list_while_healthy(&j);
	CHECK_OK(j.err);
	CHECK_INT(j.n, 1);
	CHECK_OK(file_remove(sb, NULL, "deep", true));
	CHECK_OK(file_remove(sb, NULL, "many", true));
	CHECK_ERR(file_stat(sb, NULL, "many", NULL), SBX_ENOTFOUND);
	healthy();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_binary_roundtrip),
		cmocka_unit_test(test_chunks),
		cmocka_unit_test(test_list_stat),
		cmocka_unit_test(test_mkdir_move_remove),
		cmocka_unit_test(test_paths_users),
		cmocka_unit_test(test_escape_paths),
		cmocka_unit_test(test_escape_kernel_and_special),
		cmocka_unit_test(test_isolation_visibility),
		cmocka_unit_test(test_bad_targets),
		cmocka_unit_test(test_huge_directory),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
