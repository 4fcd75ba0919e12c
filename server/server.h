/*
 * server: the handles of sbxd's modules, passed to whoever needs them
 * (no process-wide globals). Owned by main.c; its fields are set at start
 * and read by the loop thread afterwards.
 */
#ifndef SBX_SERVER_H
#define SBX_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "hmap.h"
#include "jail.h"
#include "sbx.pb-c.h"

struct config;
struct loop;
struct rpc;
struct publisher;
struct registry;
struct cgroup_env;
struct workers;

struct server {
	/* The handler table protoc-c's descriptor dispatches through. */
	Sbx__V1__Sandboxes_Service service;
	const struct config *cfg;
	struct loop *loop;
	struct rpc *rpc;
	struct publisher *pub;
	struct registry *reg;
	struct cgroup_env *cg; /* NULL when cgroups are off */
	struct workers *files; /* file operations, as the sandbox user */
	struct workers *cleaner; /* removes dead sandboxes' trees, as root */
	struct jail_env jail;
	struct hmap sandboxes; /* id -> struct sandbox */
	uint8_t *uid_used;     /* one byte per uid slot */
	uint32_t n_running;    /* starting or running */
	int64_t started_mono_ms;
	int64_t last_purge_ms; /* monotonic: the registry's last purge */
	int lock_fd; /* flock on state_dir/sbxd.lock */
	bool stopping;
	int exit_code;
};

/* The server that owns SVC (the handlers' first argument). */
static inline struct server *
server_of(Sbx__V1__Sandboxes_Service *svc)
{
	return (struct server *) ((char *) svc -
	                          __builtin_offsetof(struct server, service));
}

#endif
