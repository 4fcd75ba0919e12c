/*
 * Handlers: file write, read, list, stat, mkdir, move, remove. Each call
 * becomes a job on the file workers, which act as the sandbox's user
 * (fsuid) through the jail's root with fsops; the reply is sent when the job
 * is done, back on the loop thread. A job owns a dup of the root fd, so a
 * sandbox killed meanwhile cannot pull the directory out from under it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "config.h"
#include "fsops.h"
#include "rpc.h"
#include "sandbox.h"
#include "server.h"
#include "workers.h"

enum fop { FOP_WRITE, FOP_READ, FOP_LIST, FOP_STAT, FOP_MKDIR, FOP_MOVE,
           FOP_REMOVE };

struct fjob {
	struct work w;
	enum fop op;
	void *call;
	void (*done)(const ProtobufCMessage *, void *);
	const ProtobufCMessage *req; /* borrowed until the call completes */
	struct fsops_root root;
	uid_t uid;
	gid_t gid;
	sbx_err rv;
	char why[512];
	struct fs_entry entry;
	struct fs_entry *entries;
	size_t n_entries;
	uint8_t *buf;
	size_t n;
	uint64_t size;
	bool eof;
};

static void
fjob_run(struct work *w)
{
	struct fjob *j = (struct fjob *) w;
	const struct fsops_root *r = &j->root;
	char *why = j->why;
	size_t wl = sizeof(j->why);

	if ((j->rv = fsops_creds_enter(j->uid, j->gid)) != SBX_OK) {
		snprintf(why, wl, "cannot act as the sandbox user");
		return;
	}
	switch (j->op) {
	case FOP_WRITE: {
		const Sbx__V1__FileWriteRequest *q = (const void *) j->req;

		j->rv = fsops_write(r, q->path, q->offset, q->data.data,
		                    q->data.len, q->truncate, q->make_parents,
		                    q->mode, &j->entry, why, wl);
		break;
	}
	case FOP_READ: {
		const Sbx__V1__FileReadRequest *q = (const void *) j->req;

		j->rv = fsops_read(r, q->path, q->offset, j->n, j->buf, &j->n,
		                   &j->size, &j->eof, why, wl);
		break;
	}
	case FOP_LIST: {
		const Sbx__V1__FileListRequest *q = (const void *) j->req;

		j->rv = fsops_list(r, q->path, q->depth, &j->entries,
		                   &j->n_entries, why, wl);
		break;
	}
	case FOP_STAT: {
		const Sbx__V1__FileStatRequest *q = (const void *) j->req;

		j->rv = fsops_stat(r, q->path, &j->entry, why, wl);
		break;
	}
	case FOP_MKDIR: {
		const Sbx__V1__FileMkdirRequest *q = (const void *) j->req;

		j->rv = fsops_mkdir(r, q->path, q->parents, q->mode, &j->entry,
		                    why, wl);
		break;
	}
	case FOP_MOVE: {
		const Sbx__V1__FileMoveRequest *q = (const void *) j->req;

		j->rv = fsops_move(r, q->source, q->destination,
		                   q->make_parents, &j->entry, why, wl);
		break;
	}
	case FOP_REMOVE: {
		const Sbx__V1__FileRemoveRequest *q = (const void *) j->req;

		j->rv = fsops_remove(r, q->path, q->recursive, why, wl);
		break;
	}
	}
	fsops_creds_leave();
}

static void
entry_view(const struct fs_entry *e, Sbx__V1__FileEntry *out)
{
	sbx__v1__file_entry__init(out);
	out->name = e->name != NULL ? e->name : "";
	out->path = e->path != NULL ? e->path : "";
	out->type = (Sbx__V1__FileType) e->type;
	out->size = e->size;
	out->mode = e->mode;
	out->uid = e->uid;
	out->gid = e->gid;
	out->owner = (char *) (e->owner != NULL ? e->owner : "");
	out->group = (char *) (e->group != NULL ? e->group : "");
	out->mtime_ms = e->mtime_ms;
	out->symlink_target = e->symlink_target != NULL ? e->symlink_target
	                                                : "";
	out->target_type = (Sbx__V1__FileType) e->target_type;
}

static void
fjob_reply_list(struct fjob *j)
{
	Sbx__V1__FileListReply rep = SBX__V1__FILE_LIST_REPLY__INIT;
	Sbx__V1__FileEntry *v = calloc(j->n_entries + 1, sizeof(*v));
	Sbx__V1__FileEntry **p = calloc(j->n_entries + 1, sizeof(*p));

	if (v == NULL || p == NULL) {
		rpc_fail(j->call, SBX_ENOMEM, "out of memory");
	} else {
		for (size_t i = 0; i < j->n_entries; i++) {
			entry_view(&j->entries[i], &v[i]);
			p[i] = &v[i];
		}
		rep.entries = p;
		rep.n_entries = j->n_entries;
		j->done(&rep.base, j->call);
	}
	free(v);
	free(p);
}

static void
fjob_done(struct work *w)
{
	struct fjob *j = (struct fjob *) w;
	Sbx__V1__FileReadReply rr = SBX__V1__FILE_READ_REPLY__INIT;
	Sbx__V1__Empty empty = SBX__V1__EMPTY__INIT;
	Sbx__V1__FileEntry fe;

	if (j->rv != SBX_OK) {
		rpc_fail(j->call, j->rv, "%s", j->why);
	} else {
		switch (j->op) {
		case FOP_READ:
			rr.data.data = j->buf;
			rr.data.len = j->n;
			rr.size = j->size;
			rr.eof = j->eof;
			j->done(&rr.base, j->call);
			break;
		case FOP_LIST:
			fjob_reply_list(j);
			break;
		case FOP_REMOVE:
			j->done(&empty.base, j->call);
			break;
		case FOP_WRITE:
		case FOP_STAT:
		case FOP_MKDIR:
		case FOP_MOVE:
			entry_view(&j->entry, &fe);
			j->done(&fe.base, j->call);
			break;
		}
	}
	fs_entry_fini(&j->entry);
	fs_entries_free(j->entries, j->n_entries);
	close(j->root.root_fd);
	free(j->buf);
	free(j);
}

/* Start a file job for the sandbox and user a request names. */
static void
fjob_start(struct server *srv, enum fop op, const char *sandbox_id,
           const char *user, const ProtobufCMessage *req, size_t read_len,
           void *call, void (*done)(const ProtobufCMessage *, void *))
{
	struct sandbox *sb;
	struct fjob *j;
	char why[256];
	bool root;
	sbx_err rv;

	if ((rv = sandbox_lookup_running(srv, sandbox_id, &sb, why,
	                                 sizeof(why))) != SBX_OK) {
		rpc_fail(call, rv, "%s", why);
		return;
	}
	if (user[0] == '\0' || strcmp(user, "user") == 0) {
		root = false;
	} else if (strcmp(user, "root") == 0) {
		root = true;
	} else {
		rpc_fail(call, SBX_EINVAL, "unknown user '%.32s' (user or root)",
		         user);
		return;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL ||
	    (read_len > 0 && (j->buf = malloc(read_len)) == NULL)) {
		free(j);
		rpc_fail(call, SBX_ENOMEM, "out of memory");
		return;
	}
	if ((j->root.root_fd = dup(sb->root_fd)) < 0) {
		free(j->buf);
		free(j);
		rpc_fail(call, SBX_ELIMIT, "out of file descriptors");
		return;
	}
	j->op = op;
	j->call = call;
	j->done = done;
	j->req = req;
	j->n = read_len;
	j->uid = root ? sb->host_root : sb->host_user;
	j->gid = (gid_t) j->uid;
	j->root.home = root ? "/root" : "/home/user";
	j->root.ids.host_root_uid = sb->host_root;
	j->root.ids.host_root_gid = (gid_t) sb->host_root;
	j->root.ids.host_user_uid = sb->host_user;
	j->root.ids.host_user_gid = (gid_t) sb->host_user;
	j->root.max_chunk = srv->cfg->file_chunk_bytes;
	j->root.max_entries = 100000;
	/* The reply must fit a message; the daemon's cap on calls is the
	 * natural bound for one. */
	j->root.max_list_bytes = srv->cfg->max_message_bytes;
	j->w.run = fjob_run;
	j->w.done = fjob_done;
	workers_submit(srv->files, &j->w);
}

#define DONE(d) ((void (*)(const ProtobufCMessage *, void *)) (d))

void
api_file_write(Sbx__V1__Sandboxes_Service *svc,
               const Sbx__V1__FileWriteRequest *req,
               Sbx__V1__FileEntry_Closure done, void *call)
{
	struct server *srv = server_of(svc);

	if (req->data.len > srv->cfg->file_chunk_bytes) {
		rpc_fail(call, SBX_ELIMIT,
		         "%zu bytes exceed the %u per call: write in chunks",
		         req->data.len, srv->cfg->file_chunk_bytes);
		return;
	}
	fjob_start(srv, FOP_WRITE, req->sandbox_id, req->user, &req->base, 0,
	           call, DONE(done));
}

void
api_file_read(Sbx__V1__Sandboxes_Service *svc,
              const Sbx__V1__FileReadRequest *req,
              Sbx__V1__FileReadReply_Closure done, void *call)
{
	struct server *srv = server_of(svc);
	size_t len = srv->cfg->file_chunk_bytes;

	if (req->length != 0 && req->length < len) {
		len = req->length;
	}
	fjob_start(srv, FOP_READ, req->sandbox_id, req->user, &req->base, len,
	           call, DONE(done));
}

void
api_file_list(Sbx__V1__Sandboxes_Service *svc,
              const Sbx__V1__FileListRequest *req,
              Sbx__V1__FileListReply_Closure done, void *call)
{
	if (req->depth > 64) {
		rpc_fail(call, SBX_EINVAL, "depth must be at most 64");
		return;
	}
	fjob_start(server_of(svc), FOP_LIST, req->sandbox_id, req->user,
	           &req->base, 0, call, DONE(done));
}

void
api_file_stat(Sbx__V1__Sandboxes_Service *svc,
              const Sbx__V1__FileStatRequest *req,
              Sbx__V1__FileEntry_Closure done, void *call)
{
	fjob_start(server_of(svc), FOP_STAT, req->sandbox_id, req->user,
	           &req->base, 0, call, DONE(done));
}

void
api_file_mkdir(Sbx__V1__Sandboxes_Service *svc,
               const Sbx__V1__FileMkdirRequest *req,
               Sbx__V1__FileEntry_Closure done, void *call)
{
	fjob_start(server_of(svc), FOP_MKDIR, req->sandbox_id, req->user,
	           &req->base, 0, call, DONE(done));
}

void
api_file_move(Sbx__V1__Sandboxes_Service *svc,
              const Sbx__V1__FileMoveRequest *req,
              Sbx__V1__FileEntry_Closure done, void *call)
{
	fjob_start(server_of(svc), FOP_MOVE, req->sandbox_id, req->user,
	           &req->base, 0, call, DONE(done));
}

void
api_file_remove(Sbx__V1__Sandboxes_Service *svc,
                const Sbx__V1__FileRemoveRequest *req,
                Sbx__V1__Empty_Closure done, void *call)
{
	fjob_start(server_of(svc), FOP_REMOVE, req->sandbox_id, req->user,
	           &req->base, 0, call, DONE(done));
}
