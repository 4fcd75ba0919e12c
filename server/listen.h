/*
 * listen: start NNG listeners for a list of URLs with the transport options
 * sbxd's policy needs: ipc sockets mode 0600, a receive size cap, TLS from
 * the configured certificate files (client certificates required on event
 * listeners). Any thread at start-up.
 */
#ifndef SBX_LISTEN_H
#define SBX_LISTEN_H

#include <stdbool.h>
#include <stddef.h>

#include <nng/nng.h>

#include "err.h"

struct config;

enum listen_kind { LISTEN_RPC, LISTEN_EVENTS };

SBX_NODISCARD sbx_err listen_urls(nng_socket s, const struct config *cfg,
                                  char *const *urls, enum listen_kind kind,
                                  char *why, size_t whylen);

/* True if pipe P is an ipc connection (local, guarded by file modes). */
bool listen_pipe_is_ipc(nng_pipe p);

#endif
