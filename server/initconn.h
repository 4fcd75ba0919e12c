/*
 * initconn: sbxd's side of the link to one jail's sbx-init (NNG pair1 over
 * the ipc socket in the jail's runtime dir).
 *
 * The dialer reconnects by itself; a pipe is accepted only if its peer is the
 * jail's PID 1 (peer uid = the sandbox's host root uid, peer pid = the pid
 * bwrap reported). Calls (Down with a fresh id) complete through a callback
 * exactly once: with sbx-init's answer, or with SBX_EUNAVAIL when the link
 * closes or SBX_ETIMEDOUT past their deadline. Unsolicited Ups (process
 * events) go to the owner's on_up.
 *
 * NNG callbacks post to the loop with a reference on the conn, so a conn is
 * freed only when the last posted command has run. Loop thread only.
 */
#ifndef SBX_INITCONN_H
#define SBX_INITCONN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"
#include "init.pb-c.h"

struct initconn;
struct loop;

typedef void (*initconn_reply_fn)(void *arg, sbx_err st, const char *message,
                                  const Sbx__Init__V1__Up *up);

struct initconn_owner {
	void *arg;
	/* A link to sbx-init came up (the peer passed the checks). */
	void (*on_link_up)(void *arg);
	/* The link went down (sbx-init died or closed it). */
	void (*on_link_down)(void *arg);
	/* An Up with id 0 (events). UP is borrowed for the call. */
	void (*on_up)(void *arg, const Sbx__Init__V1__Up *up);
};

/* Dial URL; accept only a peer with PEER_UID and PEER_PID. */
SBX_NODISCARD sbx_err initconn_open(struct initconn **out, struct loop *lp,
                                    const char *url, uid_t peer_uid,
                                    pid_t peer_pid,
                                    const struct initconn_owner *owner);

/* Fail pending calls with SBX_EUNAVAIL, close the socket, drop the owner's
 * reference. No owner callback runs after this returns. Accepts NULL. */
void initconn_close(struct initconn *c);

bool initconn_is_up(const struct initconn *c);

/*
 * Send DOWN (its id is assigned here) and call FN with the reply, within
 * TIMEOUT_MS. SBX_EUNAVAIL if the link is down or the send queue is full;
 * then FN is never called.
 */
SBX_NODISCARD sbx_err initconn_call(struct initconn *c,
                                    Sbx__Init__V1__Down *down,
                                    uint32_t timeout_ms, initconn_reply_fn fn,
                                    void *arg);

/* Send DOWN without expecting a reply (acks). */
SBX_NODISCARD sbx_err initconn_send(struct initconn *c,
                                    Sbx__Init__V1__Down *down);

/* Fail calls past their deadline. Call from the loop's tick. */
void initconn_tick(struct initconn *c, int64_t now_ms);

#endif
