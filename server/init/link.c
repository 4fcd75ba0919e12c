/*
 * sbx-init's end of the sbxd link: an NNG pair1 listener.
 *
 * The loop thread owns struct link. NNG runs two pipe callbacks on its own
 * threads; they see only struct link_peer: the accepted uid (immutable)
 * and the id of the connection that said hello (atomic).
 *
 * DESIGN
 * pair1 gets no send buffer (NNG_OPT_SENDBUF 0), so a non-blocking send
 * succeeds only when the one connection can take a message right now, and
 * nothing lingers inside NNG to reach a future connection. Messages NNG
 * refuses wait here, in order, and SENDFD says when to retry.
 * Event messages flow only to a connection that said hello: a new sbxd
 * first gets its hello reply, then the replay, never events of a cursor
 * that was meant for its predecessor. Losing a message to a dying
 * connection is fine: every event stays in its log until acked, and the
 * next hello replays it.
 *
 * NNG 1.5.2 stops accepting for good when a connection fails a certain
 * way during its handshake (EPIPE is mapped to NNG_ECLOSED, which the
 * listener takes for its own closing; nanomsg/nng#1518, fixed in 1.6).
 * Any peer that hangs up at the wrong moment can trigger it, a dying sbxd
 * or a process of the sandbox. So while no sbxd is attached, a watchdog
 * connects to the socket now and then and completes the handshake: a
 * working listener hands the connection to the ADD_PRE callback, which
 * recognises our own pid and closes it; if nothing closes it in time, the
 * listener is re-created.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/pair1/pair.h>

#include "link.h"
#include "log.h"
#include "wire.h"

#define LINK_URL_MAX 256
#define LINK_PROBE_EVERY_MS 2000 /* watchdog period without sbxd */
#define LINK_PROBE_WAIT_MS 1000  /* a working listener answers by then */
#define LINK_PROBE_RETRY_MS 100  /* check a re-created listener soon */

/* What NNG's pipe callbacks may touch; immutable but for hello_pipe. */
struct link_peer {
	uint64_t peer_uid;
	uint64_t self_pid; /* the watchdog's connections come from here */
	_Atomic uint32_t hello_pipe; /* 0: no connection said hello */
};

struct link_msg {
	nng_msg *msg;
	bool events;
};

struct link {
	nng_socket sock;
	bool sock_open;
	nng_listener listener;
	bool have_listener;
	char url[LINK_URL_MAX];
	struct sockaddr_un addr;
	int recv_fd;
	int send_fd;
	int probe_fd;           /* the watchdog's connection, or -1 */
	int64_t probe_at;       /* when the next probe starts */
	int64_t probe_deadline; /* when the running probe has failed */
	struct link_peer peer;
	struct link_msg *q; /* ring: q[(q_head + i) % q_cap], i < q_len */
	size_t q_head;
	size_t q_len;
	size_t q_cap;
};

/* NNG thread, before the connection is usable: refuse other uids. Inside
 * the jail sbxd (host root, unmapped) shows as the overflow uid, while
 * sandbox processes show as 0 or 1000. */
static void
link_on_pipe_add(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
	const struct link_peer *peer = arg;
	uint64_t uid = 0, pid = 0;
	int rv;

	(void) ev;
	if (nng_pipe_get_uint64(pipe, NNG_OPT_IPC_PEER_PID, &pid) == 0 &&
	    pid == peer->self_pid) {
		/* The watchdog: the listener works, and that is all. */
		(void) nng_pipe_close(pipe);
		return;
	}
	rv = nng_pipe_get_uint64(pipe, NNG_OPT_IPC_PEER_UID, &uid);
	if (rv == 0 && uid == peer->peer_uid) {
		log_info("SBX-INIT-PEER", "pipe=%d uid=%llu", nng_pipe_id(pipe),
			 (unsigned long long) uid);
		return;
	}
	if (rv != 0) {
		log_warn("SBX-INIT-PEER-REFUSED", "uid=unknown err=%s",
			 nng_strerror(rv));
	} else {
		log_warn("SBX-INIT-PEER-REFUSED", "uid=%llu want=%llu",
			 (unsigned long long) uid,
			 (unsigned long long) peer->peer_uid);
	}
	(void) nng_pipe_close(pipe);
}

/* NNG thread: the connection that said hello is gone. */
static void
link_on_pipe_rem(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
	struct link_peer *peer = arg;
	uint32_t id = (uint32_t) nng_pipe_id(pipe);

	(void) ev;
	atomic_compare_exchange_strong(&peer->hello_pipe, &id, 0);
}

static sbx_err
link_listen(struct link *l)
{
	mode_t old;
	int rv;

	if ((rv = nng_listener_create(&l->listener, l->sock, l->url)) != 0) {
		log_error("SBX-INIT-LISTEN", "url=%s err=%s", l->url,
			  nng_strerror(rv));
		return SBX_EINVAL;
	}
	l->have_listener = true;
	if ((rv = nng_listener_set_int(l->listener, NNG_OPT_IPC_PERMISSIONS,
				       S_IRUSR | S_IWUSR)) != 0) {
		log_error("SBX-INIT-LISTEN", "url=%s err=%s", l->url,
			  nng_strerror(rv));
		return SBX_EINVAL;
	}
	/* NNG binds, then chmods: the umask closes that window. Nothing
	 * else creates files meanwhile, and children get their own. */
	old = umask(S_IRWXG | S_IRWXO);
	rv = nng_listener_start(l->listener, 0);
	umask(old);
	if (rv != 0) {
		log_error("SBX-INIT-LISTEN", "url=%s err=%s", l->url,
			  nng_strerror(rv));
		return SBX_EUNAVAIL;
	}
	return SBX_OK;
}

static sbx_err
link_setup(struct link *l, const char *path)
{
	int rv;

	l->addr.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(l->addr.sun_path)) {
		log_error("SBX-INIT-LISTEN", "path=%s err=too long", path);
		return SBX_EINVAL;
	}
	memcpy(l->addr.sun_path, path, strlen(path) + 1);
	snprintf(l->url, sizeof(l->url), "ipc://%s", path);

	if ((rv = nng_pair1_open(&l->sock)) != 0) {
		log_error("SBX-INIT-NNG", "op=open err=%s", nng_strerror(rv));
		return SBX_EINTERNAL;
	}
	l->sock_open = true;
	/* SENDBUF 0 is the default; the design depends on it (see top). */
	if ((rv = nng_socket_set_size(l->sock, NNG_OPT_RECVMAXSZ,
				      LINK_RECV_MAX)) != 0 ||
	    (rv = nng_socket_set_int(l->sock, NNG_OPT_SENDBUF, 0)) != 0 ||
	    (rv = nng_pipe_notify(l->sock, NNG_PIPE_EV_ADD_PRE,
				  link_on_pipe_add, &l->peer)) != 0 ||
	    (rv = nng_pipe_notify(l->sock, NNG_PIPE_EV_REM_POST,
				  link_on_pipe_rem, &l->peer)) != 0 ||
	    (rv = nng_socket_get_int(l->sock, NNG_OPT_RECVFD, &l->recv_fd)) !=
		    0 ||
	    (rv = nng_socket_get_int(l->sock, NNG_OPT_SENDFD, &l->send_fd)) !=
		    0) {
		log_error("SBX-INIT-NNG", "op=setup err=%s", nng_strerror(rv));
		return SBX_EINTERNAL;
	}
	return link_listen(l);
}

sbx_err
link_open(struct link **out, const char *path, uint64_t peer_uid)
{
	struct link *l;
	sbx_err rv;

	if ((l = calloc(1, sizeof(*l))) == NULL) {
		return SBX_ENOMEM;
	}
	l->peer.peer_uid = peer_uid;
	l->peer.self_pid = (uint64_t) getpid();
	atomic_init(&l->peer.hello_pipe, 0);
	l->recv_fd = l->send_fd = l->probe_fd = -1;
	if ((rv = link_setup(l, path)) != SBX_OK) {
		link_close(l);
		return rv;
	}
	*out = l;
	return SBX_OK;
}

static void
queue_pop(struct link *l)
{
	l->q_head = (l->q_head + 1) % l->q_cap;
	l->q_len--;
}

void
link_close(struct link *l)
{
	if (l == NULL) {
		return;
	}
	/* nng_close returns after every pipe callback has run, so
	 * l->peer outlives them. */
	if (l->sock_open) {
		(void) nng_close(l->sock);
	}
	if (l->probe_fd >= 0) {
		close(l->probe_fd);
	}
	while (l->q_len > 0) {
		nng_msg_free(l->q[l->q_head].msg);
		queue_pop(l);
	}
	free(l->q);
	free(l);
}

int
link_recv_fd(const struct link *l)
{
	return l->recv_fd;
}

int
link_send_fd(const struct link *l)
{
	return l->send_fd;
}

sbx_err
link_recv(struct link *l, Sbx__Init__V1__Down **out, uint32_t *pipe)
{
	ProtobufCMessage *m;
	nng_msg *msg;
	sbx_err rv;
	int nrv;

	if ((nrv = nng_recvmsg(l->sock, &msg, NNG_FLAG_NONBLOCK)) != 0) {
		if (nrv != NNG_EAGAIN) {
			log_warn("SBX-INIT-NNG", "op=recv err=%s",
				 nng_strerror(nrv));
		}
		return SBX_EUNAVAIL;
	}
	rv = sbx_wire_unpack(&sbx__init__v1__down__descriptor,
			     nng_msg_body(msg), nng_msg_len(msg), &m);
	if (rv != SBX_OK) {
		log_warn("SBX-INIT-MALFORMED", "bytes=%zu", nng_msg_len(msg));
	} else {
		*out = (Sbx__Init__V1__Down *) m;
		*pipe = nng_msg_get_pipe(msg).id;
	}
	nng_msg_free(msg);
	return rv;
}

static sbx_err
queue_push(struct link *l, nng_msg *msg, bool events)
{
	struct link_msg *q;
	size_t cap;

	if (l->q_len == l->q_cap) {
		cap = l->q_cap != 0 ? l->q_cap * 2 : 16;
		if ((q = calloc(cap, sizeof(*q))) == NULL) {
			return SBX_ENOMEM;
		}
		for (size_t i = 0; i < l->q_len; i++) {
			q[i] = l->q[(l->q_head + i) % l->q_cap];
		}
		free(l->q);
		l->q = q;
		l->q_cap = cap;
		l->q_head = 0;
	}
	l->q[(l->q_head + l->q_len) % l->q_cap] =
		(struct link_msg){.msg = msg, .events = events};
	l->q_len++;
	return SBX_OK;
}

/* Hand MSG to NNG. Returns false if NNG cannot take it now (the caller
 * still owns it); other failures free it. */
static bool
link_try_send(struct link *l, nng_msg *msg)
{
	int rv = nng_sendmsg(l->sock, msg, NNG_FLAG_NONBLOCK);

	if (rv == NNG_EAGAIN) {
		return false;
	}
	if (rv != 0) {
		log_warn("SBX-INIT-NNG", "op=send err=%s", nng_strerror(rv));
		nng_msg_free(msg);
	}
	return true;
}

sbx_err
link_send(struct link *l, const Sbx__Init__V1__Up *up, bool events)
{
	size_t len = sbx__init__v1__up__get_packed_size(up);
	nng_msg *msg;
	sbx_err rv;

	if (nng_msg_alloc(&msg, len) != 0) {
		return SBX_ENOMEM;
	}
	/* Packed straight into the message body: no intermediate copy. */
	(void) sbx__init__v1__up__pack(up, nng_msg_body(msg));
	link_flush(l);
	if (l->q_len == 0 && link_try_send(l, msg)) {
		return SBX_OK;
	}
	if ((rv = queue_push(l, msg, events)) != SBX_OK) {
		nng_msg_free(msg);
	}
	return rv;
}

void
link_flush(struct link *l)
{
	struct link_msg *m;

	while (l->q_len > 0) {
		m = &l->q[l->q_head];
		if (m->events && !link_ready(l)) {
			/* The next hello replays these events. */
			nng_msg_free(m->msg);
		} else if (!link_try_send(l, m->msg)) {
			return;
		}
		queue_pop(l);
	}
}

bool
link_pending(const struct link *l)
{
	return l->q_len > 0;
}

/* Drop queued event messages, keeping the others in order. */
static void
queue_drop_events(struct link *l)
{
	size_t n = l->q_len, kept = 0;
	struct link_msg m;

	for (size_t i = 0; i < n; i++) {
		m = l->q[(l->q_head + i) % l->q_cap];
		if (m.events) {
			nng_msg_free(m.msg);
		} else {
			l->q[(l->q_head + kept++) % l->q_cap] = m;
		}
	}
	l->q_len = kept;
}

void
link_hello(struct link *l, uint32_t pipe)
{
	nng_pipe p = NNG_PIPE_INITIALIZER;
	uint64_t uid;

	atomic_store(&l->peer.hello_pipe, pipe);
	/* The connection may have gone before the store: then its removal
	 * callback found nothing to clear, and the pipe is (almost always)
	 * no longer known to NNG. */
	p.id = pipe;
	if (nng_pipe_get_uint64(p, NNG_OPT_IPC_PEER_UID, &uid) != 0) {
		atomic_compare_exchange_strong(&l->peer.hello_pipe, &pipe, 0);
	}
	queue_drop_events(l);
}

bool
link_ready(const struct link *l)
{
	return atomic_load(&l->peer.hello_pipe) != 0;
}

/* ---- the listener watchdog ---- */

static void
link_relisten(struct link *l, const char *why)
{
	log_warn("SBX-INIT-RELISTEN", "url=%s reason=%s", l->url, why);
	if (l->have_listener) {
		(void) nng_listener_close(l->listener);
		l->have_listener = false;
	}
	/* On failure the next probe finds no listener and tries again. */
	(void) link_listen(l);
}

static void
link_probe_stop(struct link *l, int64_t next_ms)
{
	if (l->probe_fd >= 0) {
		close(l->probe_fd);
		l->probe_fd = -1;
	}
	l->probe_at = next_ms;
}

/* Connect and send a pair1 handshake; the rest is link_probe_check's. */
static void
link_probe_start(struct link *l, int64_t now_ms)
{
	static const uint8_t sp_header[8] = {0, 'S', 'P', 0, 0, NNG_PAIR1_SELF,
					     0, 0};
	int fd;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		l->probe_at = now_ms + LINK_PROBE_EVERY_MS;
		return;
	}
	/* A Unix connect completes at once, into the listen backlog: a
	 * refusal means no socket, EAGAIN a backlog nobody drains. */
	if (connect(fd, (struct sockaddr *) &l->addr, sizeof(l->addr)) != 0 ||
	    write(fd, sp_header, sizeof(sp_header)) !=
		    (ssize_t) sizeof(sp_header)) {
		close(fd);
		link_relisten(l, strerror(errno));
		l->probe_at = now_ms + LINK_PROBE_RETRY_MS;
		return;
	}
	l->probe_fd = fd;
	l->probe_deadline = now_ms + LINK_PROBE_WAIT_MS;
}

static void
link_probe_check(struct link *l, int64_t now_ms)
{
	uint8_t buf[64];
	ssize_t n;

	while ((n = read(l->probe_fd, buf, sizeof(buf))) > 0) {
		/* NNG's half of the handshake: the transport alone. */
	}
	if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
		/* Closed by the ADD_PRE callback: the listener works. */
		link_probe_stop(l, now_ms + LINK_PROBE_EVERY_MS);
		return;
	}
	if (now_ms < l->probe_deadline) {
		return;
	}
	link_probe_stop(l, now_ms + LINK_PROBE_RETRY_MS);
	/* Someone got through meanwhile: then it works. */
	if (!link_ready(l)) {
		link_relisten(l, "handshake not taken");
	}
}

void
link_tick(struct link *l, int64_t now_ms)
{
	if (l->probe_fd >= 0) {
		link_probe_check(l, now_ms);
	} else if (link_ready(l)) {
		l->probe_at = now_ms + LINK_PROBE_EVERY_MS;
	} else if (now_ms >= l->probe_at) {
		link_probe_start(l, now_ms);
	}
}

int
link_probe_fd(const struct link *l)
{
	return l->probe_fd;
}

int
link_timeout_ms(const struct link *l, int64_t now_ms)
{
	int64_t at = l->probe_fd >= 0 ? l->probe_deadline : l->probe_at;

	if (at <= now_ms) {
		return 0;
	}
	return at - now_ms > LINK_PROBE_EVERY_MS ? LINK_PROBE_EVERY_MS
						 : (int) (at - now_ms);
}
