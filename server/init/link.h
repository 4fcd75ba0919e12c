/*
 * The NNG side of sbx-init: one pair1 socket listening on ipc://PATH for
 * sbxd, the peer-uid check, receiving Down messages and a FIFO of packed
 * Up messages that NNG has not taken yet. Loop thread only, except the
 * pipe callbacks inside link.c, which run on NNG threads.
 */
#ifndef SBX_INIT_LINK_H
#define SBX_INIT_LINK_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "init.pb-c.h"

#define LINK_RECV_MAX (16 * 1024 * 1024) /* NNG_OPT_RECVMAXSZ */

struct link;

/*
 * Listen on ipc://PATH (mode 0600) and accept only peers whose uid is
 * PEER_UID. SBX_EINVAL (bad path), SBX_EUNAVAIL (cannot listen),
 * SBX_ENOMEM. Free with link_close.
 */
SBX_NODISCARD sbx_err link_open(struct link **out, const char *path,
				uint64_t peer_uid);

/* Close the socket (dropping whatever is queued) and free L. */
void link_close(struct link *l);

/* Pollable fds: readable when a Down can be received, and when NNG will
 * take an Up (poll it only while link_pending). */
int link_recv_fd(const struct link *l);
int link_send_fd(const struct link *l);

/*
 * Receive one Down without blocking. SBX_OK: *OUT (free with
 * sbx__init__v1__down__free_unpacked) and *PIPE, the id of the
 * connection it came on. SBX_EUNAVAIL: nothing to receive. SBX_EINVAL: a
 * malformed message was dropped.
 */
SBX_NODISCARD sbx_err link_recv(struct link *l, Sbx__Init__V1__Down **out,
				uint32_t *pipe);

/*
 * Pack UP and hand it to NNG, or queue it if NNG cannot take it now.
 * EVENTS marks a message of events only: those are dropped rather than
 * sent to a peer that has not said hello (see link_ready). SBX_ENOMEM.
 */
SBX_NODISCARD sbx_err link_send(struct link *l, const Sbx__Init__V1__Up *up,
				bool events);

/* Hand queued messages to NNG until it refuses one. */
void link_flush(struct link *l);

/* True while messages wait in the queue. */
bool link_pending(const struct link *l);

/*
 * PIPE said hello: events may flow to it from now on. Queued event
 * messages are dropped, since the hello's replay sends their events again
 * in order.
 */
void link_hello(struct link *l, uint32_t pipe);

/* True while the peer that last said hello is connected. */
bool link_ready(const struct link *l);

/*
 * The listener watchdog (see link.c). Call link_tick on every turn of the
 * loop; poll link_probe_fd (when not -1) for POLLIN, and wake up after
 * link_timeout_ms at the latest.
 */
void link_tick(struct link *l, int64_t now_ms);
int link_probe_fd(const struct link *l);
int link_timeout_ms(const struct link *l, int64_t now_ms);

#endif
