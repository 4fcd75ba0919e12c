/*
 * Whole-file transfers on top of FileWrite/FileRead, in chunks that fit
 * sbxd's per-call cap, from and to memory or file descriptors.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define CHUNK (2u << 20)
/* sbxd's smallest --file_chunk_bytes. */
#define CHUNK_MIN 4096u

/* A source of bytes: returns a view of the next piece (at most MAX bytes),
 * *N = 0 at the end; NULL with *ERR set on failure. */
struct source {
	const uint8_t *(*next)(struct source *s, size_t max, size_t *n,
	                       sbx_err *err);
	const uint8_t *data; /* memory */
	size_t len;
	size_t pos;
	int fd;              /* file */
	uint8_t *buf;
};

static const uint8_t *
mem_next(struct source *s, size_t max, size_t *n, sbx_err *err)
{
	(void) err;
	*n = s->len - s->pos < max ? s->len - s->pos : max;
	s->pos += *n;
	return s->data + s->pos - *n;
}

static const uint8_t *
fd_next(struct source *s, size_t max, size_t *n, sbx_err *err)
{
	size_t got = 0;
	ssize_t r;

	while (got < max) {
		r = read(s->fd, s->buf + got, max - got);
		if (r < 0 && errno == EINTR) {
			continue;
		}
		if (r < 0) {
			*err = sbx_fail(SBX_EINTERNAL, "read: %s",
			                strerror(errno));
			return NULL;
		}
		if (r == 0) {
			break;
		}
		got += (size_t) r;
	}
	*n = got;
	return s->buf;
}

/* Send P[0..N) at OFFSET, halving the chunk size while sbxd refuses it as
 * too large: its per-call cap (--file_chunk_bytes, and its message cap) is
 * configurable down to 4 KiB and not announced. Later pieces keep the size
 * that fit. Rewriting the same offset is harmless. */
static sbx_err
put_piece(sbx_client *c, Sbx__V1__FileWriteRequest *req, const uint8_t *p,
          size_t n, uint64_t offset, size_t *chunk)
{
	Sbx__V1__FileEntry *rep;
	size_t done = 0;
	sbx_err err;

	do {
		size_t k = n - done < *chunk ? n - done : *chunk;

		req->offset = offset + done;
		req->truncate = offset + done == 0;
		req->data.data = (uint8_t *) p + done;
		req->data.len = k;
		err = sbx_call(c, "FileWrite", &req->base,
		               (ProtobufCMessage **) &rep);
		if (err == SBX_ELIMIT && k > CHUNK_MIN) {
			*chunk = k / 2 > CHUNK_MIN ? k / 2 : CHUNK_MIN;
			continue;
		}
		if (err != SBX_OK) {
			return err;
		}
		sbx__v1__file_entry__free_unpacked(rep, NULL);
		done += k;
	} while (done < n);
	return SBX_OK;
}

static sbx_err
file_put(sbx_client *c, const char *sandbox, const char *path,
         const char *user, uint32_t mode, struct source *src)
{
	Sbx__V1__FileWriteRequest req = SBX__V1__FILE_WRITE_REQUEST__INIT;
	size_t chunk = CHUNK, n;
	uint64_t off = 0;
	const uint8_t *p;
	sbx_err err = SBX_OK;

	req.sandbox_id = (char *) sandbox;
	req.path = (char *) path;
	req.user = (char *) (user != NULL ? user : "");
	req.mode = mode;
	req.make_parents = true;
	do {
		if ((p = src->next(src, CHUNK, &n, &err)) == NULL) {
			return err;
		}
		/* The first piece goes even when empty: it makes the file. */
		if ((n > 0 || off == 0) &&
		    (err = put_piece(c, &req, p, n, off, &chunk)) != SBX_OK) {
			return err;
		}
		off += n;
	} while (n > 0);
	return SBX_OK;
}

SBX_API sbx_err
sbx_file_write(sbx_client *c, const char *sandbox, const char *path,
               const char *user, const void *data, size_t len, uint32_t mode)
{
	struct source src = {.next = mem_next, .data = data, .len = len};

	return file_put(c, sandbox, path, user, mode, &src);
}

SBX_API sbx_err
sbx_file_upload(sbx_client *c, const char *sandbox, const char *path,
                const char *user, int fd, uint32_t mode)
{
	struct source src = {.next = fd_next, .fd = fd};
	sbx_err err;

	if ((src.buf = malloc(CHUNK)) == NULL) {
		return sbx_fail(SBX_ENOMEM, "out of memory");
	}
	err = file_put(c, sandbox, path, user, mode, &src);
	free(src.buf);
	return err;
}

/* A sink of bytes: returns SBX_OK or an error. */
struct sink {
	sbx_err (*put)(struct sink *k, const uint8_t *p, size_t n,
	               uint64_t size);
	uint8_t *buf; /* memory */
	size_t len;
	size_t cap;
	size_t max;
	const char *path;
	int fd; /* file */
};

static sbx_err
mem_put(struct sink *k, const uint8_t *p, size_t n, uint64_t size)
{
	uint8_t *b;
	size_t want;

	if (k->len + n > k->max) {
		return sbx_fail(SBX_ELIMIT, "%s is larger than %zu bytes",
		                k->path, k->max);
	}
	if (k->len + n + 1 > k->cap) {
		want = size > k->len + n ? (size_t) size : k->len + n;
		want = (want < k->max ? want : k->max) + 1;
		if ((b = realloc(k->buf, want)) == NULL) {
			return sbx_fail(SBX_ENOMEM, "out of memory");
		}
		k->buf = b;
		k->cap = want;
	}
	/* An empty bytes field unpacks as NULL, and memcpy from NULL is
	 * undefined even for 0 bytes. */
	if (n > 0) {
		memcpy(k->buf + k->len, p, n);
		k->len += n;
	}
	return SBX_OK;
}

static sbx_err
fd_put(struct sink *k, const uint8_t *p, size_t n, uint64_t size)
{
	ssize_t w;

	(void) size;
	while (n > 0) {
		if ((w = write(k->fd, p, n)) < 0) {
			if (errno == EINTR) {
				continue;
			}
			return sbx_fail(SBX_EINTERNAL, "write: %s",
			                strerror(errno));
		}
		p += w;
		n -= (size_t) w;
	}
	return SBX_OK;
}

static sbx_err
file_get(sbx_client *c, const char *sandbox, const char *path,
         const char *user, struct sink *k)
{
	Sbx__V1__FileReadRequest req = SBX__V1__FILE_READ_REQUEST__INIT;
	Sbx__V1__FileReadReply *rep;
	bool eof = false;
	sbx_err err;

	req.sandbox_id = (char *) sandbox;
	req.path = (char *) path;
	req.user = (char *) (user != NULL ? user : "");
	req.length = CHUNK;
	while (!eof) {
		err = sbx_call(c, "FileRead", &req.base,
		               (ProtobufCMessage **) &rep);
		if (err != SBX_OK) {
			return err;
		}
		eof = rep->eof || rep->data.len == 0;
		err = k->put(k, rep->data.data, rep->data.len, rep->size);
		req.offset += rep->data.len;
		sbx__v1__file_read_reply__free_unpacked(rep, NULL);
		if (err != SBX_OK) {
			return err;
		}
	}
	return SBX_OK;
}

SBX_API sbx_err
sbx_file_read(sbx_client *c, const char *sandbox, const char *path,
              const char *user, void **data, size_t *len, size_t max)
{
	struct sink k = {.put = mem_put, .max = max, .path = path};
	sbx_err err;

	if ((err = file_get(c, sandbox, path, user, &k)) != SBX_OK) {
		free(k.buf);
		return err;
	}
	if (k.buf == NULL && (k.buf = malloc(1)) == NULL) {
		return sbx_fail(SBX_ENOMEM, "out of memory");
	}
	k.buf[k.len] = '\0';
	*data = k.buf;
	*len = k.len;
	return SBX_OK;
}

SBX_API sbx_err
sbx_file_download(sbx_client *c, const char *sandbox, const char *path,
                  const char *user, int fd)
{
	struct sink k = {.put = fd_put, .fd = fd, .path = path};

	return file_get(c, sandbox, path, user, &k);
}
