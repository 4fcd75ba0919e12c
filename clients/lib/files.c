/*
 * Whole-file transfers on top of FileWrite/FileRead, in chunks that fit
 * sbxd's per-call cap.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define CHUNK (2u << 20)
/* sbxd's smallest --file_chunk_bytes. */
#define CHUNK_MIN 4096u

SBX_API sbx_err
sbx_file_write(sbx_client *c, const char *sandbox, const char *path,
               const char *user, const void *data, size_t len, uint32_t mode)
{
	Sbx__V1__FileWriteRequest req = SBX__V1__FILE_WRITE_REQUEST__INIT;
	Sbx__V1__FileEntry *rep;
	size_t off = 0, chunk = CHUNK;
	sbx_err err;

	req.sandbox_id = (char *) sandbox;
	req.path = (char *) path;
	req.user = (char *) (user != NULL ? user : "");
	req.mode = mode;
	req.make_parents = true;
	do {
		size_t n = len - off < chunk ? len - off : chunk;

		req.offset = off;
		req.truncate = off == 0;
		req.data.data = (uint8_t *) data + off;
		req.data.len = n;
		err = sbx_call(c, "FileWrite", &req.base,
		               (ProtobufCMessage **) &rep);
		/* sbxd's per-call cap (--file_chunk_bytes, and its message
		 * cap) is configurable down to 4 KiB and not announced, so
		 * a chunk refused as too large is sent again in halves, and
		 * later chunks keep the size that fits. Rewriting the same
		 * offset is harmless if a full disk refused it part-way. */
		if (err == SBX_ELIMIT && n > CHUNK_MIN) {
			chunk = n / 2 > CHUNK_MIN ? n / 2 : CHUNK_MIN;
			continue;
		}
		if (err != SBX_OK) {
			return err;
		}
		sbx__v1__file_entry__free_unpacked(rep, NULL);
		off += n;
	} while (off < len);
	return SBX_OK;
}

SBX_API sbx_err
sbx_file_read(sbx_client *c, const char *sandbox, const char *path,
              const char *user, void **data, size_t *len, size_t max)
{
	Sbx__V1__FileReadRequest req = SBX__V1__FILE_READ_REQUEST__INIT;
	Sbx__V1__FileReadReply *rep;
	uint8_t *buf = NULL, *p;
	size_t n = 0, cap = 0;
	bool eof = false;
	sbx_err err;

	req.sandbox_id = (char *) sandbox;
	req.path = (char *) path;
	req.user = (char *) (user != NULL ? user : "");
	req.length = CHUNK;
	while (!eof) {
		req.offset = n;
		err = sbx_call(c, "FileRead", &req.base,
		               (ProtobufCMessage **) &rep);
		if (err != SBX_OK) {
			free(buf);
			return err;
		}
		eof = rep->eof || rep->data.len == 0;
		if (n + rep->data.len > max) {
			sbx__v1__file_read_reply__free_unpacked(rep, NULL);
			free(buf);
			return sbx_fail(SBX_ELIMIT, "%s is larger than %zu bytes",
			                path, max);
		}
		if (n + rep->data.len + 1 > cap) {
			size_t want = rep->size > n + rep->data.len
			                      ? rep->size
			                      : n + rep->data.len;

			cap = (want < max ? want : max) + 1;
			if ((p = realloc(buf, cap)) == NULL) {
				sbx__v1__file_read_reply__free_unpacked(rep,
				                                        NULL);
				free(buf);
				return sbx_fail(SBX_ENOMEM, "out of memory");
			}
			buf = p;
		}
		/* An empty bytes field unpacks as NULL, and memcpy from
		 * NULL is undefined even for 0 bytes (UBSan aborted here on
		 * every empty file). */
		if (rep->data.len > 0) {
			memcpy(buf + n, rep->data.data, rep->data.len);
			n += rep->data.len;
		}
		sbx__v1__file_read_reply__free_unpacked(rep, NULL);
	}
	if (buf == NULL && (buf = malloc(1)) == NULL) {
		return sbx_fail(SBX_ENOMEM, "out of memory");
	}
	buf[n] = '\0';
	*data = buf;
	*len = n;
	return SBX_OK;
}
