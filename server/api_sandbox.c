/*
 * Handlers: health, create, get, list, kill, set_timeout. Validation of
 * every field happens here, before any state changes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "cgroup.h"
#include "config.h"
#include "rpc.h"
#include "sandbox.h"
#include "server.h"
#include "util.h"

#define KV_MAX_ENTRIES 64
#define KV_KEY_MAX 128
#define KV_VALUE_MAX 4096
#define LIST_PAGE_MAX 100

static const char *
sbx_version(void)
{
	return SBX_VERSION;
}

void
api_health(Sbx__V1__Sandboxes_Service *svc, const Sbx__V1__HealthRequest *req,
           Sbx__V1__HealthReply_Closure done, void *call)
{
	struct server *srv = server_of(svc);
	Sbx__V1__HealthReply rep = SBX__V1__HEALTH_REPLY__INIT;

	(void) req;
	rep.version = (char *) sbx_version();
	rep.uptime_ms = (uint64_t) (sbx_mono_ms() - srv->started_mono_ms);
	rep.sandboxes_running = srv->n_running;
	rep.sandboxes_max = srv->cfg->max_sandboxes;
	rep.cgroup_mode = srv->cg != NULL ? (char *) cgroup_env_mode(srv->cg)
	                                  : "off";
	done(&rep, call);
}

static bool
env_key_valid(const char *k)
{
	if (!((k[0] >= 'A' && k[0] <= 'Z') || (k[0] >= 'a' && k[0] <= 'z') ||
	      k[0] == '_')) {
		return false;
	}
	for (const char *p = k; *p != '\0'; p++) {
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		      (*p >= '0' && *p <= '9') || *p == '_')) {
			return false;
		}
	}
	return true;
}

/* Check and copy a map (an array of KEY/VALUE entries; all generated map
 * entry types share this shape). */
struct map_entry {
	ProtobufCMessage base;
	char *key;
	char *value;
};

static sbx_err
map_copy(struct kvlist *dst, void *const *entries, size_t n,
         const char *what, bool env, char *why, size_t whylen)
{
	if (n > KV_MAX_ENTRIES) {
		snprintf(why, whylen, "%s: at most %d entries", what,
		         KV_MAX_ENTRIES);
		return SBX_EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		const struct map_entry *e = entries[i];

		if (e->key[0] == '\0' || strlen(e->key) > KV_KEY_MAX ||
		    strlen(e->value) > KV_VALUE_MAX ||
		    (env && !env_key_valid(e->key))) {
			snprintf(why, whylen, "%s: bad entry '%.64s'", what,
			         e->key);
			return SBX_EINVAL;
		}
		if (kvlist_set(dst, e->key, e->value) != SBX_OK) {
			return SBX_ENOMEM;
		}
	}
	return SBX_OK;
}

static bool
name_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64) {
		return false;
	}
	for (; *s != '\0'; s++) {
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= '0' && *s <= '9') || strchr("._-", *s) != NULL)) {
			return false;
		}
	}
	return true;
}

static sbx_err
create_limits(const struct config *cfg, const Sbx__V1__Limits *in,
              struct cgroup_limits *out, char *why, size_t whylen)
{
	uint64_t mem = in != NULL ? in->memory_bytes : 0;
	uint32_t cpu = in != NULL ? in->cpu_millis : 0;
	uint32_t pids = in != NULL ? in->pids : 0;

	out->memory_bytes = mem != 0 ? mem : cfg->default_memory_mb << 20;
	out->cpu_millis = cpu != 0 ? cpu : cfg->default_cpu_millis;
	out->pids = pids != 0 ? pids : cfg->default_pids;
	if (out->memory_bytes < (16u << 20) ||
	    out->memory_bytes > cfg->max_memory_mb << 20) {
		snprintf(why, whylen, "memory_bytes must be 16 MiB..%llu MiB",
		         (unsigned long long) cfg->max_memory_mb);
		return SBX_EINVAL;
	}
	if (out->cpu_millis < 10 || out->cpu_millis > cfg->max_cpu_millis) {
		snprintf(why, whylen, "cpu_millis must be 10..%u",
		         cfg->max_cpu_millis);
		return SBX_EINVAL;
	}
	if (out->pids < 8 || out->pids > cfg->max_pids) {
		snprintf(why, whylen, "pids must be 8..%u", cfg->max_pids);
		return SBX_EINVAL;
	}
	return SBX_OK;
}

/* Build the new sandbox's fields from REQ. */
static sbx_err
create_prepare(struct server *srv, const Sbx__V1__CreateRequest *req,
               struct sandbox *sb, char *why, size_t whylen)
{
	const struct config *cfg = srv->cfg;
	const char *tmpl = req->template_[0] != '\0' ? req->template_ : "base";
	uint32_t timeout = req->timeout_s != 0 ? req->timeout_s
	                                       : cfg->default_timeout_s;
	sbx_err rv;

	if (!name_valid(tmpl)) {
		snprintf(why, whylen, "bad template name");
		return SBX_EINVAL;
	}
	if (timeout > cfg->max_timeout_s) {
		snprintf(why, whylen, "timeout_s %u exceeds the maximum %u",
		         timeout, cfg->max_timeout_s);
		return SBX_EINVAL;
	}
	switch (req->network) {
	case SBX__V1__NETWORK_POLICY__NETWORK_DEFAULT:
		sb->net_allow = cfg->network_allow;
		break;
	case SBX__V1__NETWORK_POLICY__NETWORK_ALLOW:
		sb->net_allow = true;
		break;
	case SBX__V1__NETWORK_POLICY__NETWORK_DENY:
		sb->net_allow = false;
		break;
	default:
		snprintf(why, whylen, "unknown network policy %d",
		         (int) req->network);
		return SBX_EINVAL;
	}
	if ((rv = create_limits(cfg, req->limits, &sb->limits, why, whylen)) !=
	            SBX_OK ||
	    (rv = map_copy(&sb->labels, (void *const *) req->labels,
	                   req->n_labels, "labels", false, why, whylen)) !=
	            SBX_OK ||
	    (rv = map_copy(&sb->metadata, (void *const *) req->metadata,
	                   req->n_metadata, "metadata", false, why, whylen)) !=
	            SBX_OK ||
	    (rv = map_copy(&sb->env, (void *const *) req->env, req->n_env,
	                   "env", true, why, whylen)) != SBX_OK) {
		return rv;
	}
	if ((sb->template_name = strdup(tmpl)) == NULL) {
		return SBX_ENOMEM;
	}
	/* The deadline counts from creation; set when the id is made. */
	sb->deadline_ms = sbx_clock_ms() + (int64_t) timeout * 1000;
	return SBX_OK;
}

void
api_create(Sbx__V1__Sandboxes_Service *svc, const Sbx__V1__CreateRequest *req,
           Sbx__V1__SandboxInfo_Closure done, void *call)
{
	struct server *srv = server_of(svc);
	struct sandbox *sb;
	char why[256];
	sbx_err rv;

	if (srv->stopping) {
		rpc_fail(call, SBX_EUNAVAIL, "sbxd is shutting down");
		return;
	}
	if ((sb = calloc(1, sizeof(*sb))) == NULL) {
		rpc_fail(call, SBX_ENOMEM, "out of memory");
		return;
	}
	sb->srv = srv;
	sb->pidfd = sb->info_fd = sb->block_fd = sb->root_fd = sb->log_fd = -1;
	hmap_init(&sb->procs);
	if ((rv = create_prepare(srv, req, sb, why, sizeof(why))) != SBX_OK) {
		sandbox_free(sb);
		rpc_fail(call, rv, "%s", why);
		return;
	}
	sandbox_create(srv, sb,
	               call, (void (*)(const ProtobufCMessage *, void *)) done);
}

/* Reply with SB's info through DONE. */
static void
reply_info(const struct sandbox *sb, Sbx__V1__SandboxInfo_Closure done,
           void *call)
{
	struct info_store st;
	Sbx__V1__SandboxInfo info;

	if (sandbox_info(sb, &info, &st) != SBX_OK) {
		rpc_fail(call, SBX_ENOMEM, "out of memory");
		return;
	}
	done(&info, call);
	sandbox_info_fini(&st);
}

/* A sandbox for get/kill/set_timeout: any state but dead. */
static struct sandbox *
find_alive(struct server *srv, const char *id, void *call)
{
	struct sandbox *sb;

	if (!sbx_wire_id_valid(id)) {
		rpc_fail(call, SBX_EINVAL, "invalid sandbox id");
		return NULL;
	}
	if ((sb = sandbox_find(srv, id)) == NULL ||
	    (!sb->ran && sb->state != SANDBOX_STARTING)) {
		rpc_fail(call, SBX_ENOTFOUND, "no sandbox %s", id);
		return NULL;
	}
	if (sb->state == SANDBOX_DEAD) {
		rpc_fail(call, SBX_ENOTFOUND, "sandbox %s %s", id,
		         sb->end_reason != NULL ? sb->end_reason : "ended");
		return NULL;
	}
	return sb;
}

void
api_get(Sbx__V1__Sandboxes_Service *svc, const Sbx__V1__GetRequest *req,
        Sbx__V1__SandboxInfo_Closure done, void *call)
{
	struct sandbox *sb = find_alive(server_of(svc), req->id, call);

	if (sb != NULL) {
		reply_info(sb, done, call);
	}
}

void
api_kill(Sbx__V1__Sandboxes_Service *svc, const Sbx__V1__KillRequest *req,
         Sbx__V1__KillReply_Closure done, void *call)
{
	struct sandbox *sb = find_alive(server_of(svc), req->id, call);
	struct waiter *w;

	if (sb == NULL) {
		return;
	}
	if ((w = calloc(1, sizeof(*w))) == NULL) {
		rpc_fail(call, SBX_ENOMEM, "out of memory");
		return;
	}
	w->call = call;
	w->done = (void (*)(const ProtobufCMessage *, void *)) done;
	sandbox_kill(sb, "killed", w);
}

void
api_set_timeout(Sbx__V1__Sandboxes_Service *svc,
                const Sbx__V1__SetTimeoutRequest *req,
                Sbx__V1__SandboxInfo_Closure done, void *call)
{
	struct server *srv = server_of(svc);
	struct sandbox *sb;

	if (req->timeout_s == 0 || req->timeout_s > srv->cfg->max_timeout_s) {
		rpc_fail(call, SBX_EINVAL, "timeout_s must be 1..%u",
		         srv->cfg->max_timeout_s);
		return;
	}
	if ((sb = find_alive(srv, req->id, call)) == NULL) {
		return;
	}
	if (sb->state == SANDBOX_KILLING) {
		rpc_fail(call, SBX_ENOTFOUND, "sandbox %s is being killed",
		         sb->id);
		return;
	}
	if (sandbox_set_deadline(sb, sbx_clock_ms() +
	                                     (int64_t) req->timeout_s * 1000) !=
	    SBX_OK) {
		/* Logged by the registry; the deadline holds in memory. */
	}
	reply_info(sb, done, call);
}

static bool
state_wanted(const Sbx__V1__ListRequest *req, enum sandbox_state s)
{
	if (req->n_states == 0) {
		return s == SANDBOX_STARTING || s == SANDBOX_RUNNING;
	}
	for (size_t i = 0; i < req->n_states; i++) {
		if ((int) req->states[i] == (int) s) {
			return true;
		}
	}
	return false;
}

static bool
map_matches(const struct kvlist *have, void *const *want, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct map_entry *e = want[i];
		const char *v = kvlist_get(have, e->key);

		if (v == NULL || strcmp(v, e->value) != 0) {
			return false;
		}
	}
	return true;
}

/* Newest first; ids break ties. */
static int
list_cmp(const void *a, const void *b)
{
	const struct sandbox *x = *(struct sandbox *const *) a;
	const struct sandbox *y = *(struct sandbox *const *) b;

	if (x->created_ms != y->created_ms) {
		return x->created_ms > y->created_ms ? -1 : 1;
	}
	return strcmp(x->id, y->id);
}

/* Is SB after the page token's position? */
static bool
after_token(const struct sandbox *sb, int64_t t_ms, const char *t_id)
{
	return sb->created_ms < t_ms ||
	       (sb->created_ms == t_ms && strcmp(sb->id, t_id) > 0);
}

static sbx_err
parse_token(const char *tok, int64_t *ms, const char **id)
{
	char *end;
	long long v;

	v = strtoll(tok, &end, 10);
	if (end == tok || *end != '.' || !sbx_wire_id_valid(end + 1)) {
		return SBX_EINVAL;
	}
	*ms = v;
	*id = end + 1;
	return SBX_OK;
}

static void
list_reply(struct sandbox **v, size_t n, size_t more,
           Sbx__V1__ListReply_Closure done, void *call)
{
	Sbx__V1__ListReply rep = SBX__V1__LIST_REPLY__INIT;
	Sbx__V1__SandboxInfo *infos = calloc(n + 1, sizeof(*infos));
	Sbx__V1__SandboxInfo **ptrs = calloc(n + 1, sizeof(*ptrs));
	struct info_store *stores = calloc(n + 1, sizeof(*stores));
	char token[96];
	size_t ok = 0;

	if (infos == NULL || ptrs == NULL || stores == NULL) {
		rpc_fail(call, SBX_ENOMEM, "out of memory");
		goto out;
	}
	for (; ok < n; ok++) {
		if (sandbox_info(v[ok], &infos[ok], &stores[ok]) != SBX_OK) {
			rpc_fail(call, SBX_ENOMEM, "out of memory");
			goto out;
		}
		ptrs[ok] = &infos[ok];
	}
	rep.sandboxes = ptrs;
	rep.n_sandboxes = n;
	rep.next_page_token = "";
	if (more > 0 && n > 0) {
		snprintf(token, sizeof(token), "%lld.%s",
		         (long long) v[n - 1]->created_ms, v[n - 1]->id);
		rep.next_page_token = token;
	}
	done(&rep, call);
out:
	for (size_t i = 0; i < ok; i++) {
		sandbox_info_fini(&stores[i]);
	}
	free(infos);
	free(ptrs);
	free(stores);
}

void
api_list(Sbx__V1__Sandboxes_Service *svc, const Sbx__V1__ListRequest *req,
         Sbx__V1__ListReply_Closure done, void *call)
{
	struct server *srv = server_of(svc);
	size_t page = req->page_size != 0 ? req->page_size : LIST_PAGE_MAX;
	struct sandbox **v, *sb;
	size_t n = 0, pos = 0, start = 0;
	int64_t t_ms = 0;
	const char *t_id = NULL;

	if (page > LIST_PAGE_MAX) {
		page = LIST_PAGE_MAX;
	}
	if (req->page_token[0] != '\0' &&
	    parse_token(req->page_token, &t_ms, &t_id) != SBX_OK) {
		rpc_fail(call, SBX_EINVAL, "malformed page_token");
		return;
	}
	if ((v = calloc(srv->sandboxes.n + 1, sizeof(*v))) == NULL) {
		rpc_fail(call, SBX_ENOMEM, "out of memory");
		return;
	}
	while (hmap_next(&srv->sandboxes, &pos, (void **) &sb)) {
		/* A sandbox whose start failed was never created as far as
		 * callers know; it only lingers while its jail is torn down. */
		if (!sb->ran && sb->state != SANDBOX_STARTING) {
			continue;
		}
		if (state_wanted(req, sb->state) &&
		    map_matches(&sb->labels, (void *const *) req->labels,
		                req->n_labels) &&
		    map_matches(&sb->metadata, (void *const *) req->metadata,
		                req->n_metadata) &&
		    (t_id == NULL || after_token(sb, t_ms, t_id))) {
			v[n++] = sb;
		}
	}
	qsort(v, n, sizeof(*v), list_cmp);
	list_reply(v + start, n < page ? n : page, n > page ? n - page : 0,
	           done, call);
	free(v);
}
