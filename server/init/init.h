/*
 * sbx-init: PID 1 of every jail. The state its modules share, owned by the
 * loop thread (main.c). Modules take the parts they need, not this struct,
 * except the dispatcher of sbxd's requests (down.c), which needs them all.
 */
#ifndef SBX_INIT_INIT_H
#define SBX_INIT_INIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define INIT_PROTO_VERSION 1

struct events;
struct link;
struct procs;

struct init_opts {
	const char *socket_path;
	uint64_t peer_uid;
	size_t window_bytes;
	size_t retain_bytes;
	uint32_t max_procs;
	int log_level;
};

struct init {
	struct init_opts opts;
	int sig_fd; /* SIGCHLD, SIGTERM, SIGINT */
	bool stopping;
	struct link *link;
	struct procs *procs;
	struct events *events;
};

#endif
