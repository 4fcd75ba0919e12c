/*
 * The link to sbx-init. Pending calls are a small list: a jail has few
 * calls in flight at once (a handful of process starts and inputs).
 */
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/pair1/pair.h>

#include "initconn.h"
#include "log.h"
#include "loop.h"
#include "panic.h"
#include "util.h"

struct pending {
	struct pending *next;
	uint64_t id;
	int64_t deadline_ms;
	initconn_reply_fn fn;
	void *arg;
};

struct initconn {
	nng_socket sock;
	nng_dialer dialer;
	nng_aio *rx;
	struct loop *loop;
	struct initconn_owner owner;
	uid_t peer_uid;
	pid_t peer_pid;
	int refs;      /* atomic: the owner's plus one per posted command */
	bool closed;   /* loop thread */
	bool up;       /* loop thread */
	uint64_t next_id;
	struct pending *pending;
};

enum ic_kind { IC_MSG, IC_UP, IC_DOWN };

struct ic_cmd {
	struct loop_cmd cmd;
	struct initconn *conn;
	enum ic_kind kind;
	nng_msg *msg;
};

static void
ic_unref(struct initconn *c)
{
	if (__atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) == 0) {
		free(c);
	}
}

static void
ic_fail_all(struct initconn *c, sbx_err st, const char *why)
{
	struct pending *p;

	while ((p = c->pending) != NULL) {
		c->pending = p->next;
		p->fn(p->arg, st, why, NULL);
		free(p);
	}
}

static void
ic_on_up(struct initconn *c, nng_msg *msg)
{
	Sbx__Init__V1__Up *up;
	struct pending **pp, *p;

	up = sbx__init__v1__up__unpack(NULL, nng_msg_len(msg),
	                               nng_msg_body(msg));
	if (up == NULL) {
		log_warn("SBX-INIT-MALFORMED", "len=%zu", nng_msg_len(msg));
		return;
	}
	if (up->id == 0) {
		c->owner.on_up(c->owner.arg, up);
	} else {
		for (pp = &c->pending; (p = *pp) != NULL; pp = &p->next) {
			if (p->id == up->id) {
				*pp = p->next;
				p->fn(p->arg, (sbx_err) up->status,
				      up->message, up);
				free(p);
				break;
			}
		}
	}
	sbx__init__v1__up__free_unpacked(up, NULL);
}

static void
ic_on_cmd(struct loop_cmd *cmd)
{
	struct ic_cmd *ic = (struct ic_cmd *) cmd;
	struct initconn *c = ic->conn;

	if (!c->closed) {
		switch (ic->kind) {
		case IC_MSG:
			ic_on_up(c, ic->msg);
			break;
		case IC_UP:
			c->up = true;
			c->owner.on_link_up(c->owner.arg);
			break;
		case IC_DOWN:
			c->up = false;
			ic_fail_all(c, SBX_EUNAVAIL, "sandbox agent went away");
			c->owner.on_link_down(c->owner.arg);
			break;
		}
	}
	if (ic->msg != NULL) {
		nng_msg_free(ic->msg);
	}
	free(ic);
	ic_unref(c);
}

/* NNG thread. */
static void
ic_post(struct initconn *c, enum ic_kind kind, nng_msg *msg)
{
	struct ic_cmd *ic = calloc(1, sizeof(*ic));

	if (ic == NULL) {
		/* Out of memory on an NNG thread: drop; a lost event shows up
		 * as a gap that sbx-init's replay or the client repairs. */
		if (msg != NULL) {
			nng_msg_free(msg);
		}
		return;
	}
	__atomic_add_fetch(&c->refs, 1, __ATOMIC_ACQ_REL);
	ic->conn = c;
	ic->kind = kind;
	ic->msg = msg;
	ic->cmd.fn = ic_on_cmd;
	loop_post(c->loop, &ic->cmd);
}

static void
ic_on_rx(void *arg)
{
	struct initconn *c = arg;
	int rv = nng_aio_result(c->rx);

	if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
		return;
	}
	if (rv == 0) {
		ic_post(c, IC_MSG, nng_aio_get_msg(c->rx));
	}
	nng_recv_aio(c->sock, c->rx);
}

/* NNG thread: check the peer before the pipe is used at all. */
static void
ic_on_pipe(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct initconn *c = arg;
	uint64_t uid = UINT64_MAX, pid = UINT64_MAX;

	switch (ev) {
	case NNG_PIPE_EV_ADD_PRE:
		/* NNG reports SO_PEERCRED as uint64 options. */
		if (nng_pipe_get_uint64(p, NNG_OPT_IPC_PEER_UID, &uid) != 0 ||
		    nng_pipe_get_uint64(p, NNG_OPT_IPC_PEER_PID, &pid) != 0 ||
		    uid != (uint64_t) c->peer_uid ||
		    pid != (uint64_t) c->peer_pid) {
			log_warn("SBX-INIT-PEER-REFUSED",
			         "uid=%lld pid=%lld want_uid=%u want_pid=%d",
			         (long long) uid, (long long) pid,
			         (unsigned) c->peer_uid, (int) c->peer_pid);
			nng_pipe_close(p);
		}
		break;
	case NNG_PIPE_EV_ADD_POST:
		ic_post(c, IC_UP, NULL);
		break;
	case NNG_PIPE_EV_REM_POST:
		ic_post(c, IC_DOWN, NULL);
		break;
	case NNG_PIPE_EV_NUM:
		break;
	}
}

sbx_err
initconn_open(struct initconn **out, struct loop *lp, const char *url,
              uid_t peer_uid, pid_t peer_pid,
              const struct initconn_owner *owner)
{
	struct initconn *c;
	int rv;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		return SBX_ENOMEM;
	}
	c->loop = lp;
	c->owner = *owner;
	c->peer_uid = peer_uid;
	c->peer_pid = peer_pid;
	c->refs = 1;
	c->next_id = 1;
	if ((rv = nng_pair1_open(&c->sock)) != 0) {
		free(c);
		return SBX_EINTERNAL;
	}
	if ((rv = nng_aio_alloc(&c->rx, ic_on_rx, c)) != 0 ||
	    (rv = nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ,
	                              64u << 20)) != 0 ||
	    (rv = nng_socket_set_int(c->sock, NNG_OPT_SENDBUF, 1024)) != 0 ||
	    (rv = nng_socket_set_ms(c->sock, NNG_OPT_RECONNMINT, 1)) != 0 ||
	    (rv = nng_socket_set_ms(c->sock, NNG_OPT_RECONNMAXT, 10)) != 0 ||
	    (rv = nng_pipe_notify(c->sock, NNG_PIPE_EV_ADD_PRE, ic_on_pipe,
	                          c)) != 0 ||
	    (rv = nng_pipe_notify(c->sock, NNG_PIPE_EV_ADD_POST, ic_on_pipe,
	                          c)) != 0 ||
	    (rv = nng_pipe_notify(c->sock, NNG_PIPE_EV_REM_POST, ic_on_pipe,
	                          c)) != 0 ||
	    (rv = nng_dial(c->sock, url, &c->dialer, NNG_FLAG_NONBLOCK)) !=
	            0) {
		log_error("SBX-INIT-DIAL", "url=%s err=%s", url,
		          nng_strerror(rv));
		nng_close(c->sock);
		if (c->rx != NULL) {
			nng_aio_free(c->rx);
		}
		free(c);
		return SBX_EINTERNAL;
	}
	nng_recv_aio(c->sock, c->rx);
	*out = c;
	return SBX_OK;
}

void
initconn_close(struct initconn *c)
{
	if (c == NULL) {
		return;
	}
	c->closed = true;
	c->up = false;
	ic_fail_all(c, SBX_EUNAVAIL, "sandbox is gone");
	/* After close and stop no NNG callback runs any more; commands
	 * already posted hold references and see closed. */
	nng_close(c->sock);
	nng_aio_stop(c->rx);
	nng_aio_free(c->rx);
	c->rx = NULL;
	ic_unref(c);
}

bool
initconn_is_up(const struct initconn *c)
{
	return c != NULL && c->up && !c->closed;
}

static sbx_err
ic_send(struct initconn *c, Sbx__Init__V1__Down *down)
{
	size_t len = sbx__init__v1__down__get_packed_size(down);
	nng_msg *msg;
	int rv;

	if (!initconn_is_up(c)) {
		return SBX_EUNAVAIL;
	}
	if (nng_msg_alloc(&msg, len) != 0) {
		return SBX_ENOMEM;
	}
	sbx__init__v1__down__pack(down, nng_msg_body(msg));
	if ((rv = nng_sendmsg(c->sock, msg, NNG_FLAG_NONBLOCK)) != 0) {
		nng_msg_free(msg);
		log_warn("SBX-INIT-SEND", "err=%s", nng_strerror(rv));
		return SBX_EUNAVAIL;
	}
	return SBX_OK;
}

sbx_err
initconn_call(struct initconn *c, Sbx__Init__V1__Down *down,
              uint32_t timeout_ms, initconn_reply_fn fn, void *arg)
{
	struct pending *p;
	sbx_err rv;

	if ((p = calloc(1, sizeof(*p))) == NULL) {
		return SBX_ENOMEM;
	}
	down->id = c->next_id++;
	if ((rv = ic_send(c, down)) != SBX_OK) {
		free(p);
		return rv;
	}
	p->id = down->id;
	p->deadline_ms = sbx_mono_ms() + timeout_ms;
	p->fn = fn;
	p->arg = arg;
	p->next = c->pending;
	c->pending = p;
	return SBX_OK;
}

sbx_err
initconn_send(struct initconn *c, Sbx__Init__V1__Down *down)
{
	down->id = 0;
	return ic_send(c, down);
}

void
initconn_tick(struct initconn *c, int64_t now_ms)
{
	struct pending **pp = &c->pending, *p;

	while ((p = *pp) != NULL) {
		if (p->deadline_ms > now_ms) {
			pp = &p->next;
			continue;
		}
		*pp = p->next;
		p->fn(p->arg, SBX_ETIMEDOUT, "sandbox agent did not answer",
		      NULL);
		free(p);
	}
}
