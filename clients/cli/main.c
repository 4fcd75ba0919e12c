/*
 * sbx: the command line of sbx, on libsbx.
 *
 *   sbx health | create | ls | get | kill | timeout | exec | run | cp | ps |
 *       files
 *
 * Output is for people by default and JSON with --json. exec and run exit
 * with the command's status (128 + signal when it was killed).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sbx.h"

#define MAX_KV 64
#define CP_MAX (1ull << 34)

struct kvargs {
	const char *k[MAX_KV];
	const char *v[MAX_KV];
	size_t n;
};

struct globals {
	struct sbx_client_opts opts;
	bool json;
};

static int
die(const char *what, sbx_err err)
{
	fprintf(stderr, "sbx: %s: %s: %s\n", what, sbx_strerror(err),
	        sbx_last_error());
	return 1;
}

static int
usage(void)
{
	fputs("usage: sbx [--url URL] [--events-url URL] [--token T] "
	      "[--ca-file F] [--json] COMMAND ...\n"
	      "  health\n"
	      "  create [--label k=v] [--meta k=v] [--env K=V] [--timeout S]\n"
	      "         [--template T] [--net allow|deny] [--memory MB]"
	      " [--cpu MILLIS] [--pids N]\n"
	      "  ls [--label k=v] [--meta k=v] [--all]\n"
	      "  get ID | kill ID... | timeout ID SECONDS | ps ID\n"
	      "  files ID [PATH] [--depth N]\n"
	      "  exec [-i] [--user U] [--cwd DIR] [--env K=V] [--tty] ID -- "
	      "CMD [ARG...]\n"
	      "  exec [...] ID -c 'shell command'\n"
	      "  run [--file F | -] [--lang sh|python] [create options]\n"
	      "  cp SRC DST            (one side is ID:/path)\n",
	      stderr);
	return 2;
}

/* ---- JSON output ---- */

static void
json_str(const char *s)
{
	putchar('"');
	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char) *s;

		if (ch == '"' || ch == '\\') {
			printf("\\%c", ch);
		} else if (ch < 0x20) {
			printf("\\u%04x", ch);
		} else {
			putchar(ch);
		}
	}
	putchar('"');
}

static void
json_map(const char *name, void *const *entries, size_t n)
{
	struct entry {
		ProtobufCMessage base;
		char *key;
		char *value;
	};

	printf(",\"%s\":{", name);
	for (size_t i = 0; i < n; i++) {
		const struct entry *e = entries[i];

		printf(i > 0 ? "," : "");
		json_str(e->key);
		putchar(':');
		json_str(e->value);
	}
	putchar('}');
}

static const char *
state_name(Sbx__V1__SandboxState s)
{
	switch (s) {
	case SBX__V1__SANDBOX_STATE__STATE_STARTING:
		return "starting";
	case SBX__V1__SANDBOX_STATE__STATE_RUNNING:
		return "running";
	case SBX__V1__SANDBOX_STATE__STATE_PAUSED:
		return "paused";
	case SBX__V1__SANDBOX_STATE__STATE_KILLING:
		return "killing";
	case SBX__V1__SANDBOX_STATE__STATE_DEAD:
		return "dead";
	default:
		return "unknown";
	}
}

static void
print_info_json(const Sbx__V1__SandboxInfo *i)
{
	printf("{\"id\":");
	json_str(i->id);
	printf(",\"state\":\"%s\",\"template\":", state_name(i->state));
	json_str(i->template_);
	printf(",\"created_ms\":%" PRId64 ",\"deadline_ms\":%" PRId64,
	       i->created_ms, i->deadline_ms);
	if (i->limits != NULL) {
		printf(",\"memory_bytes\":%" PRIu64 ",\"cpu_millis\":%u,"
		       "\"pids\":%u",
		       i->limits->memory_bytes, i->limits->cpu_millis,
		       i->limits->pids);
	}
	printf(",\"network\":\"%s\"",
	       i->network == SBX__V1__NETWORK_POLICY__NETWORK_ALLOW ? "allow"
	                                                            : "deny");
	json_map("labels", (void *const *) i->labels, i->n_labels);
	json_map("metadata", (void *const *) i->metadata, i->n_metadata);
	putchar('}');
}

static void
print_info(const struct globals *g, const Sbx__V1__SandboxInfo *i)
{
	long long left = (i->deadline_ms - (long long) time(NULL) * 1000) / 1000;

	if (g->json) {
		print_info_json(i);
		putchar('\n');
		return;
	}
	printf("%-22s %-9s %-12s %5llds", i->id, state_name(i->state),
	       i->template_, left > 0 ? left : 0);
	for (size_t k = 0; k < i->n_labels; k++) {
		printf(" %s=%s", i->labels[k]->key, i->labels[k]->value);
	}
	putchar('\n');
}

/* ---- argument helpers ---- */

static int
kv_add(struct kvargs *kv, char *arg)
{
	char *eq = strchr(arg, '=');

	if (eq == NULL || eq == arg || kv->n == MAX_KV) {
		fprintf(stderr, "sbx: expected KEY=VALUE, got '%s'\n", arg);
		return -1;
	}
	*eq = '\0';
	kv->k[kv->n] = arg;
	kv->v[kv->n] = eq + 1;
	kv->n++;
	return 0;
}

/* Build an array of map entries of DESC from KV (entries share layout). */
static void **
kv_entries(const struct kvargs *kv, const ProtobufCMessageDescriptor *desc)
{
	struct entry {
		ProtobufCMessage base;
		char *key;
		char *value;
	};
	void **v = calloc(kv->n + 1, sizeof(*v));

	for (size_t i = 0; v != NULL && i < kv->n; i++) {
		struct entry *e = calloc(1, desc->sizeof_message);

		if (e == NULL) {
			exit(die("memory", SBX_ENOMEM));
		}
		desc->message_init(&e->base);
		e->key = (char *) kv->k[i];
		e->value = (char *) kv->v[i];
		v[i] = e;
	}
	return v;
}

static void
kv_entries_free(void **v, size_t n)
{
	for (size_t i = 0; v != NULL && i < n; i++) {
		free(v[i]);
	}
	free(v);
}

static int
parse_u32(const char *s, uint32_t *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || end == s || v > UINT32_MAX) {
		fprintf(stderr, "sbx: bad number '%s'\n", s);
		return -1;
	}
	*out = (uint32_t) v;
	return 0;
}

/* ---- create options (create and run) ---- */

struct create_args {
	Sbx__V1__CreateRequest req;
	Sbx__V1__Limits limits;
	struct kvargs labels, meta, env;
};

enum { OPT_LABEL = 1000, OPT_META, OPT_ENV, OPT_TIMEOUT, OPT_TEMPLATE,
       OPT_NET, OPT_MEMORY, OPT_CPU, OPT_PIDS, OPT_FILE, OPT_LANG,
       OPT_ALL, OPT_USER, OPT_CWD, OPT_DEPTH, OPT_TTY };

#define CREATE_LONGOPTS                                                       \
	{"label", required_argument, NULL, OPT_LABEL},                        \
	        {"meta", required_argument, NULL, OPT_META},                  \
	        {"env", required_argument, NULL, OPT_ENV},                    \
	        {"timeout", required_argument, NULL, OPT_TIMEOUT},            \
	        {"template", required_argument, NULL, OPT_TEMPLATE},          \
	        {"net", required_argument, NULL, OPT_NET},                    \
	        {"memory", required_argument, NULL, OPT_MEMORY},              \
	        {"cpu", required_argument, NULL, OPT_CPU},                    \
	        {"pids", required_argument, NULL, OPT_PIDS}

static void
create_init(struct create_args *a)
{
	memset(a, 0, sizeof(*a));
	sbx__v1__create_request__init(&a->req);
	sbx__v1__limits__init(&a->limits);
	a->req.limits = &a->limits;
}

/* Returns 1 if OPT was a create option, 0 if not, -1 on a bad value. */
static int
create_opt(struct create_args *a, int opt, char *arg)
{
	uint32_t v;

	switch (opt) {
	case OPT_LABEL:
		return kv_add(&a->labels, arg) == 0 ? 1 : -1;
	case OPT_META:
		return kv_add(&a->meta, arg) == 0 ? 1 : -1;
	case OPT_ENV:
		return kv_add(&a->env, arg) == 0 ? 1 : -1;
	case OPT_TIMEOUT:
		return parse_u32(arg, &a->req.timeout_s) == 0 ? 1 : -1;
	case OPT_TEMPLATE:
		a->req.template_ = arg;
		return 1;
	case OPT_NET:
		if (strcmp(arg, "allow") == 0) {
			a->req.network = SBX__V1__NETWORK_POLICY__NETWORK_ALLOW;
		} else if (strcmp(arg, "deny") == 0) {
			a->req.network = SBX__V1__NETWORK_POLICY__NETWORK_DENY;
		} else {
			fprintf(stderr, "sbx: --net allow|deny\n");
			return -1;
		}
		return 1;
	case OPT_MEMORY:
		if (parse_u32(arg, &v) != 0) {
			return -1;
		}
		a->limits.memory_bytes = (uint64_t) v << 20;
		return 1;
	case OPT_CPU:
		return parse_u32(arg, &a->limits.cpu_millis) == 0 ? 1 : -1;
	case OPT_PIDS:
		return parse_u32(arg, &a->limits.pids) == 0 ? 1 : -1;
	default:
		return 0;
	}
}

static sbx_err
create_call(sbx_client *c, struct create_args *a, Sbx__V1__SandboxInfo **out)
{
	sbx_err err;

	a->req.labels = (Sbx__V1__CreateRequest__LabelsEntry **) kv_entries(
	        &a->labels, &sbx__v1__create_request__labels_entry__descriptor);
	a->req.n_labels = a->labels.n;
	a->req.metadata =
	        (Sbx__V1__CreateRequest__MetadataEntry **) kv_entries(
	                &a->meta,
	                &sbx__v1__create_request__metadata_entry__descriptor);
	a->req.n_metadata = a->meta.n;
	a->req.env = (Sbx__V1__CreateRequest__EnvEntry **) kv_entries(
	        &a->env, &sbx__v1__create_request__env_entry__descriptor);
	a->req.n_env = a->env.n;
	err = sbx_call(c, "Create", &a->req.base, (ProtobufCMessage **) out);
	kv_entries_free((void **) a->req.labels, a->labels.n);
	kv_entries_free((void **) a->req.metadata, a->meta.n);
	kv_entries_free((void **) a->req.env, a->env.n);
	return err;
}

/* ---- commands ---- */

static int
cmd_health(sbx_client *c, const struct globals *g)
{
	Sbx__V1__HealthRequest req = SBX__V1__HEALTH_REQUEST__INIT;
	Sbx__V1__HealthReply *rep;
	sbx_err err;

	if ((err = sbx_call(c, "Health", &req.base,
	                    (ProtobufCMessage **) &rep)) != SBX_OK) {
		return die("health", err);
	}
	if (g->json) {
		printf("{\"version\":");
		json_str(rep->version);
		printf(",\"uptime_ms\":%" PRIu64 ",\"sandboxes_running\":%u,"
		       "\"sandboxes_max\":%u,\"cgroup_mode\":",
		       rep->uptime_ms, rep->sandboxes_running,
		       rep->sandboxes_max);
		json_str(rep->cgroup_mode);
		printf("}\n");
	} else {
		printf("ok: sbxd %s, up %" PRIu64 " s, %u/%u sandboxes, "
		       "cgroups %s\n",
		       rep->version, rep->uptime_ms / 1000,
		       rep->sandboxes_running, rep->sandboxes_max,
		       rep->cgroup_mode);
	}
	sbx__v1__health_reply__free_unpacked(rep, NULL);
	return 0;
}

static int
cmd_create(sbx_client *c, const struct globals *g, int argc, char **argv)
{
	static const struct option lo[] = {CREATE_LONGOPTS, {0, 0, 0, 0}};
	struct create_args a;
	Sbx__V1__SandboxInfo *info;
	sbx_err err;
	int opt;

	create_init(&a);
	while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (create_opt(&a, opt, optarg) != 1) {
			return usage();
		}
	}
	if (optind != argc) {
		return usage();
	}
	if ((err = create_call(c, &a, &info)) != SBX_OK) {
		return die("create", err);
	}
	if (g->json) {
		print_info_json(info);
		putchar('\n');
	} else {
		printf("%s\n", info->id);
	}
	sbx__v1__sandbox_info__free_unpacked(info, NULL);
	return 0;
}

static int
cmd_ls(sbx_client *c, const struct globals *g, int argc, char **argv)
{
	static const struct option lo[] = {
		{"label", required_argument, NULL, OPT_LABEL},
		{"meta", required_argument, NULL, OPT_META},
		{"all", no_argument, NULL, OPT_ALL},
		{0, 0, 0, 0},
	};
	static Sbx__V1__SandboxState all[] = {
		SBX__V1__SANDBOX_STATE__STATE_STARTING,
		SBX__V1__SANDBOX_STATE__STATE_RUNNING,
		SBX__V1__SANDBOX_STATE__STATE_KILLING,
		SBX__V1__SANDBOX_STATE__STATE_DEAD,
	};
	Sbx__V1__ListRequest req = SBX__V1__LIST_REQUEST__INIT;
	Sbx__V1__ListReply *rep;
	struct kvargs labels = {0}, meta = {0};
	char *token = NULL;
	bool first = true;
	sbx_err err;
	int opt;

	while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if ((opt == OPT_LABEL && kv_add(&labels, optarg) != 0) ||
		    (opt == OPT_META && kv_add(&meta, optarg) != 0) ||
		    opt == '?') {
			return usage();
		}
		if (opt == OPT_ALL) {
			req.states = all;
			req.n_states = 4;
		}
	}
	req.labels = (Sbx__V1__ListRequest__LabelsEntry **) kv_entries(
	        &labels, &sbx__v1__list_request__labels_entry__descriptor);
	req.n_labels = labels.n;
	req.metadata = (Sbx__V1__ListRequest__MetadataEntry **) kv_entries(
	        &meta, &sbx__v1__list_request__metadata_entry__descriptor);
	req.n_metadata = meta.n;
	if (g->json) {
		printf("[");
	}
	do {
		req.page_token = token != NULL ? token : "";
		err = sbx_call(c, "List", &req.base,
		               (ProtobufCMessage **) &rep);
		free(token);
		token = NULL;
		if (err != SBX_OK) {
			break;
		}
		for (size_t i = 0; i < rep->n_sandboxes; i++) {
			if (g->json) {
				printf(first ? "" : ",");
				print_info_json(rep->sandboxes[i]);
				first = false;
			} else {
				print_info(g, rep->sandboxes[i]);
			}
		}
		if (rep->next_page_token[0] != '\0') {
			token = strdup(rep->next_page_token);
		}
		sbx__v1__list_reply__free_unpacked(rep, NULL);
	} while (token != NULL);
	if (g->json) {
		printf("]\n");
	}
	kv_entries_free((void **) req.labels, labels.n);
	kv_entries_free((void **) req.metadata, meta.n);
	return err == SBX_OK ? 0 : die("ls", err);
}

static int
cmd_get(sbx_client *c, const struct globals *g, int argc, char **argv)
{
	Sbx__V1__GetRequest req = SBX__V1__GET_REQUEST__INIT;
	Sbx__V1__SandboxInfo *info;
	sbx_err err;

	if (argc != 2) {
		return usage();
	}
	req.id = argv[1];
	if ((err = sbx_call(c, "Get", &req.base,
	                    (ProtobufCMessage **) &info)) != SBX_OK) {
		return die("get", err);
	}
	print_info(g, info);
	sbx__v1__sandbox_info__free_unpacked(info, NULL);
	return 0;
}

static sbx_err
kill_one(sbx_client *c, const char *id)
{
	Sbx__V1__KillRequest req = SBX__V1__KILL_REQUEST__INIT;
	Sbx__V1__KillReply *rep;
	sbx_err err;

	req.id = (char *) id;
	err = sbx_call(c, "Kill", &req.base, (ProtobufCMessage **) &rep);
	if (err == SBX_OK) {
		sbx__v1__kill_reply__free_unpacked(rep, NULL);
	}
	return err;
}

static int
cmd_kill(sbx_client *c, int argc, char **argv)
{
	int rc = 0;
	sbx_err err;

	if (argc < 2) {
		return usage();
	}
	for (int i = 1; i < argc; i++) {
		if ((err = kill_one(c, argv[i])) != SBX_OK) {
			rc = die(argv[i], err);
		}
	}
	return rc;
}

static int
cmd_timeout(sbx_client *c, const struct globals *g, int argc, char **argv)
{
	Sbx__V1__SetTimeoutRequest req = SBX__V1__SET_TIMEOUT_REQUEST__INIT;
	Sbx__V1__SandboxInfo *info;
	sbx_err err;

	if (argc != 3 || parse_u32(argv[2], &req.timeout_s) != 0) {
		return usage();
	}
	req.id = argv[1];
	if ((err = sbx_call(c, "SetTimeout", &req.base,
	                    (ProtobufCMessage **) &info)) != SBX_OK) {
		return die("timeout", err);
	}
	print_info(g, info);
	sbx__v1__sandbox_info__free_unpacked(info, NULL);
	return 0;
}

static int
cmd_ps(sbx_client *c, const struct globals *g, int argc, char **argv)
{
	Sbx__V1__ProcessListRequest req = SBX__V1__PROCESS_LIST_REQUEST__INIT;
	Sbx__V1__ProcessListReply *rep;
	sbx_err err;

	if (argc != 2) {
		return usage();
	}
	req.sandbox_id = argv[1];
	if ((err = sbx_call(c, "ProcessList", &req.base,
	                    (ProtobufCMessage **) &rep)) != SBX_OK) {
		return die("ps", err);
	}
	printf(g->json ? "[" : "%-8s %-20s %-8s %s\n", "PID", "STREAM",
	       "STATE", "COMMAND");
	for (size_t i = 0; i < rep->n_processes; i++) {
		const Sbx__V1__ProcessInfo *p = rep->processes[i];
		const char *cmd = p->command[0] != '\0'
		                          ? p->command
		                          : (p->n_argv > 0 ? p->argv[0] : "");

		if (g->json) {
			printf("%s{\"pid\":%u,\"stream\":", i > 0 ? "," : "",
			       p->pid);
			json_str(p->stream);
			printf(",\"running\":%s,\"command\":",
			       p->running ? "true" : "false");
			json_str(cmd);
			printf("}");
		} else {
			printf("%-8u %-20s %-8s %s\n", p->pid, p->stream,
			       p->running ? "running" : "ended", cmd);
		}
	}
	if (g->json) {
		printf("]\n");
	}
	sbx__v1__process_list_reply__free_unpacked(rep, NULL);
	return 0;
}

static const char *
type_name(Sbx__V1__FileType t)
{
	switch (t) {
	case SBX__V1__FILE_TYPE__FILE_TYPE_FILE:
		return "file";
	case SBX__V1__FILE_TYPE__FILE_TYPE_DIRECTORY:
		return "dir";
	case SBX__V1__FILE_TYPE__FILE_TYPE_SYMLINK:
		return "link";
	default:
		return "other";
	}
}

static int
cmd_files(sbx_client *c, const struct globals *g, int argc, char **argv)
{
	static const struct option lo[] = {
		{"depth", required_argument, NULL, OPT_DEPTH},
		{0, 0, 0, 0},
	};
	Sbx__V1__FileListRequest req = SBX__V1__FILE_LIST_REQUEST__INIT;
	Sbx__V1__FileListReply *rep;
	sbx_err err;
	int opt;

	while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (opt != OPT_DEPTH || parse_u32(optarg, &req.depth) != 0) {
			return usage();
		}
	}
	if (argc - optind < 1 || argc - optind > 2) {
		return usage();
	}
	req.sandbox_id = argv[optind];
	req.path = argc - optind == 2 ? argv[optind + 1] : "";
	if ((err = sbx_call(c, "FileList", &req.base,
	                    (ProtobufCMessage **) &rep)) != SBX_OK) {
		return die("files", err);
	}
	printf(g->json ? "[" : "");
	for (size_t i = 0; i < rep->n_entries; i++) {
		const Sbx__V1__FileEntry *e = rep->entries[i];

		if (g->json) {
			printf("%s{\"path\":", i > 0 ? "," : "");
			json_str(e->path);
			printf(",\"type\":\"%s\",\"size\":%" PRIu64
			       ",\"mode\":%u}",
			       type_name(e->type), e->size, e->mode);
		} else {
			printf("%-5s %04o %10" PRIu64 " %s\n",
			       type_name(e->type), e->mode, e->size, e->path);
		}
	}
	printf(g->json ? "]\n" : "");
	sbx__v1__file_list_reply__free_unpacked(rep, NULL);
	return 0;
}

/* ---- exec and run ---- */

struct exec_state {
	sbx_client *c;
	const char *sandbox;
	char stream[64];
	bool forward_stdin;
};

static void
write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR) {
				continue;
			}
			return;
		}
		p += w;
		n -= (size_t) w;
	}
}

static void
on_data(void *arg, Sbx__V1__Event__BodyCase kind, const uint8_t *data,
        size_t len)
{
	(void) arg;
	write_all(kind == SBX__V1__EVENT__BODY_STDERR ? 2 : 1, data, len);
}

/* Forward our stdin to the process until EOF, then close its stdin. */
static void *
stdin_main(void *arg)
{
	struct exec_state *st = arg;
	Sbx__V1__ProcessRef ref = SBX__V1__PROCESS_REF__INIT;
	Sbx__V1__ProcessInputRequest in = SBX__V1__PROCESS_INPUT_REQUEST__INIT;
	Sbx__V1__ProcessCloseStdinRequest cl =
	        SBX__V1__PROCESS_CLOSE_STDIN_REQUEST__INIT;
	Sbx__V1__Empty *rep;
	uint8_t buf[65536];
	ssize_t n;

	ref.ref_case = SBX__V1__PROCESS_REF__REF_STREAM;
	ref.stream = st->stream;
	in.sandbox_id = cl.sandbox_id = (char *) st->sandbox;
	in.process = cl.process = &ref;
	while ((n = read(0, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR)) {
		if (n <= 0) {
			continue;
		}
		in.data.data = buf;
		in.data.len = (size_t) n;
		if (sbx_call(st->c, "ProcessInput", &in.base,
		             (ProtobufCMessage **) &rep) != SBX_OK) {
			return NULL;
		}
		sbx__v1__empty__free_unpacked(rep, NULL);
	}
	if (sbx_call(st->c, "ProcessCloseStdin", &cl.base,
	             (ProtobufCMessage **) &rep) == SBX_OK) {
		sbx__v1__empty__free_unpacked(rep, NULL);
	}
	return NULL;
}

static void
on_start(void *arg, const Sbx__V1__ProcessInfo *info)
{
	struct exec_state *st = arg;
	pthread_t t;

	snprintf(st->stream, sizeof(st->stream), "%s", info->stream);
	if (st->forward_stdin &&
	    pthread_create(&t, NULL, stdin_main, st) == 0) {
		pthread_detach(t);
	}
}

/* Run REQ to its end; returns the exit status for our own exit. */
static int
run_process(sbx_client *c, Sbx__V1__ProcessStartRequest *req,
            bool forward_stdin)
{
	struct exec_state st = {.c = c, .sandbox = req->sandbox_id,
	                        .forward_stdin = forward_stdin};
	struct sbx_stream_cbs cbs = {.arg = &st, .on_start = on_start,
	                             .on_data = on_data};
	int32_t code = 0, sig = 0;
	sbx_err err;

	req->stdin = forward_stdin;
	err = sbx_process_run(c, req, &cbs, 0, NULL, &code, &sig);
	if (err != SBX_OK) {
		return die("exec", err);
	}
	return sig != 0 ? 128 + sig : code;
}

static int
cmd_exec(sbx_client *c, int argc, char **argv)
{
	static const struct option lo[] = {
		{"user", required_argument, NULL, OPT_USER},
		{"cwd", required_argument, NULL, OPT_CWD},
		{"env", required_argument, NULL, OPT_ENV},
		{"tty", no_argument, NULL, OPT_TTY},
		{0, 0, 0, 0},
	};
	Sbx__V1__ProcessStartRequest req = SBX__V1__PROCESS_START_REQUEST__INIT;
	Sbx__V1__PtySize pty = SBX__V1__PTY_SIZE__INIT;
	struct kvargs env = {0};
	bool fwd = false;
	int opt, rc;

	while ((opt = getopt_long(argc, argv, "+i", lo, NULL)) != -1) {
		switch (opt) {
		case 'i':
			fwd = true;
			break;
		case OPT_USER:
			req.user = optarg;
			break;
		case OPT_CWD:
			req.cwd = optarg;
			break;
		case OPT_ENV:
			if (kv_add(&env, optarg) != 0) {
				return usage();
			}
			break;
		case OPT_TTY:
			pty.cols = 80;
			pty.rows = 24;
			req.pty = &pty;
			break;
		default:
			return usage();
		}
	}
	if (argc - optind < 2) {
		return usage();
	}
	req.sandbox_id = argv[optind++];
	if (strcmp(argv[optind], "-c") == 0 && argc - optind == 2) {
		req.command = argv[optind + 1];
	} else {
		if (strcmp(argv[optind], "--") == 0) {
			optind++;
		}
		if (optind == argc) {
			return usage();
		}
		req.argv = argv + optind;
		req.n_argv = (size_t) (argc - optind);
	}
	req.env = (Sbx__V1__ProcessStartRequest__EnvEntry **) kv_entries(
	        &env, &sbx__v1__process_start_request__env_entry__descriptor);
	req.n_env = env.n;
	rc = run_process(c, &req, fwd);
	kv_entries_free((void **) req.env, env.n);
	if (fwd) {
		/* The stdin thread may still be reading: leave without
		 * tearing the client down under it. */
		fflush(stdout);
		_exit(rc);
	}
	return rc;
}

static char *
slurp_fd(int fd, size_t *len)
{
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap), *p;
	ssize_t r;

	while (buf != NULL && (r = read(fd, buf + n, cap - n)) != 0) {
		if (r < 0) {
			if (errno == EINTR) {
				continue;
			}
			free(buf);
			return NULL;
		}
		n += (size_t) r;
		if (n == cap) {
			if ((p = realloc(buf, cap * 2)) == NULL) {
				free(buf);
				return NULL;
			}
			buf = p;
			cap *= 2;
		}
	}
	*len = n;
	return buf;
}

static int
cmd_run(sbx_client *c, int argc, char **argv)
{
	static const struct option lo[] = {
		CREATE_LONGOPTS,
		{"file", required_argument, NULL, OPT_FILE},
		{"lang", required_argument, NULL, OPT_LANG},
		{0, 0, 0, 0},
	};
	Sbx__V1__ProcessStartRequest req = SBX__V1__PROCESS_START_REQUEST__INIT;
	const char *file = "-", *lang = "sh", *path, *interp;
	struct create_args a;
	Sbx__V1__SandboxInfo *info;
	char *script, *args[3];
	size_t len = 0;
	sbx_err err;
	int opt, fd, rc;

	create_init(&a);
	while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (opt == OPT_FILE) {
			file = optarg;
		} else if (opt == OPT_LANG) {
			lang = optarg;
		} else if (create_opt(&a, opt, optarg) != 1) {
			return usage();
		}
	}
	if (optind < argc) {
		file = argv[optind];
	}
	if (strcmp(lang, "sh") == 0) {
		path = "/home/user/.sbx-run/script.sh";
		interp = "/bin/sh";
	} else if (strcmp(lang, "python") == 0) {
		path = "/home/user/.sbx-run/script.py";
		interp = "/usr/bin/python3";
	} else {
		fprintf(stderr, "sbx: --lang sh|python\n");
		return 2;
	}
	fd = strcmp(file, "-") == 0 ? 0 : open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || (script = slurp_fd(fd, &len)) == NULL) {
		fprintf(stderr, "sbx: %s: %s\n", file, strerror(errno));
		return 1;
	}
	if (fd != 0) {
		close(fd);
	}
	if ((err = create_call(c, &a, &info)) != SBX_OK) {
		free(script);
		return die("create", err);
	}
	err = sbx_file_write(c, info->id, path, NULL, script, len, 0600);
	free(script);
	if (err != SBX_OK) {
		rc = die("upload", err);
	} else {
		args[0] = (char *) interp;
		args[1] = (char *) path;
		args[2] = NULL;
		req.sandbox_id = info->id;
		req.argv = args;
		req.n_argv = 2;
		rc = run_process(c, &req, false);
	}
	if ((err = kill_one(c, info->id)) != SBX_OK) {
		die("kill", err);
	}
	sbx__v1__sandbox_info__free_unpacked(info, NULL);
	return rc;
}

/* ---- cp ---- */

/* Split "ID:/path"; returns false for a local path. */
static bool
remote_split(char *arg, char **id, char **path)
{
	char *colon = strchr(arg, ':');

	if (colon == NULL || colon == arg) {
		return false;
	}
	for (char *p = arg; p < colon; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		      *p == '-')) {
			return false;
		}
	}
	*colon = '\0';
	*id = arg;
	*path = colon + 1;
	return true;
}

static int
cp_up(sbx_client *c, const char *local, const char *id, const char *path)
{
	struct stat st;
	sbx_err err;
	int fd;

	if ((fd = open(local, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &st) != 0) {
		fprintf(stderr, "sbx: %s: %s\n", local, strerror(errno));
		return 1;
	}
	err = sbx_file_upload(c, id, path, NULL, fd, st.st_mode & 0777);
	close(fd);
	return err == SBX_OK ? 0 : die("cp", err);
}

static int
cp_down(sbx_client *c, const char *id, const char *path, const char *local)
{
	Sbx__V1__FileStatRequest st = SBX__V1__FILE_STAT_REQUEST__INIT;
	ProtobufCMessage *rep;
	sbx_err err;
	int fd;

	/* Ask first: opening LOCAL truncates it, and a copy from a missing
	 * file must not leave an empty (or emptied) one behind, as cp(1)
	 * does not. */
	st.sandbox_id = (char *) id;
	st.path = (char *) path;
	if ((err = sbx_call(c, "FileStat", &st.base, &rep)) != SBX_OK) {
		return die("cp", err);
	}
	protobuf_c_message_free_unpacked(rep, NULL);
	fd = strcmp(local, "-") == 0
	             ? 1
	             : open(local, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	                    0644);
	if (fd < 0) {
		fprintf(stderr, "sbx: %s: %s\n", local, strerror(errno));
		return 1;
	}
	err = sbx_file_download(c, id, path, NULL, fd);
	if (fd != 1 && close(fd) != 0 && err == SBX_OK) {
		fprintf(stderr, "sbx: %s: %s\n", local, strerror(errno));
		return 1;
	}
	return err == SBX_OK ? 0 : die("cp", err);
}

static int
cmd_cp(sbx_client *c, int argc, char **argv)
{
	char *id, *path;

	if (argc != 3) {
		return usage();
	}
	if (remote_split(argv[2], &id, &path)) {
		return cp_up(c, argv[1], id, path);
	}
	if (remote_split(argv[1], &id, &path)) {
		return cp_down(c, id, path, argv[2]);
	}
	fprintf(stderr, "sbx: one side of cp must be ID:/path\n");
	return 2;
}

/* ---- main ---- */

static bool
command_known(const char *cmd)
{
	static const char *const commands[] = {
		"health", "create", "ls",  "get", "kill", "timeout",
		"ps",     "files",  "exec", "run", "cp",
	};

	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(cmd, commands[i]) == 0) {
			return true;
		}
	}
	return false;
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"url", required_argument, NULL, 'u'},
		{"events-url", required_argument, NULL, 'e'},
		{"token", required_argument, NULL, 't'},
		{"ca-file", required_argument, NULL, 'a'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{0, 0, 0, 0},
	};
	struct globals g = {0};
	const char *cmd;
	sbx_client *c;
	sbx_err err;
	int opt, rc;

	signal(SIGPIPE, SIG_IGN);
	while ((opt = getopt_long(argc, argv, "+h", lo, NULL)) != -1) {
		switch (opt) {
		case 'u':
			g.opts.url = optarg;
			break;
		case 'e':
			g.opts.events_url = optarg;
			break;
		case 't':
			g.opts.token = optarg;
			break;
		case 'a':
			g.opts.tls_ca_file = optarg;
			break;
		case 'j':
			g.json = true;
			break;
		default:
			return usage();
		}
	}
	if (optind >= argc) {
		return usage();
	}
	cmd = argv[optind];
	argc -= optind;
	argv += optind;
	/* --json may also follow the command. */
	for (int i = 1, j = 1; i <= argc; i++) {
		if (i < argc && strcmp(argv[i], "--json") == 0) {
			g.json = true;
			continue;
		}
		if (i < argc && strcmp(argv[i], "--") == 0) {
			/* Leave everything after "--" alone. */
			while (i < argc) {
				argv[j++] = argv[i++];
			}
		}
		if (i == argc) {
			argc = j;
			argv[j] = NULL;
			break;
		}
		argv[j++] = argv[i];
	}
	/* GNU getopt re-reads the optstring (and its '+') only from 0. */
	optind = 0;
	/* A mistyped command is a usage error whether or not sbxd is up:
	 * say so before connecting, not "connect: UNAVAILABLE". */
	if (!command_known(cmd)) {
		fprintf(stderr, "sbx: unknown command '%s'\n", cmd);
		return usage();
	}
	if ((err = sbx_client_open(&c, &g.opts)) != SBX_OK) {
		return die("connect", err);
	}
	if (strcmp(cmd, "health") == 0) {
		rc = cmd_health(c, &g);
	} else if (strcmp(cmd, "create") == 0) {
		rc = cmd_create(c, &g, argc, argv);
	} else if (strcmp(cmd, "ls") == 0) {
		rc = cmd_ls(c, &g, argc, argv);
	} else if (strcmp(cmd, "get") == 0) {
		rc = cmd_get(c, &g, argc, argv);
	} else if (strcmp(cmd, "kill") == 0) {
		rc = cmd_kill(c, argc, argv);
	} else if (strcmp(cmd, "timeout") == 0) {
		rc = cmd_timeout(c, &g, argc, argv);
	} else if (strcmp(cmd, "ps") == 0) {
		rc = cmd_ps(c, &g, argc, argv);
	} else if (strcmp(cmd, "files") == 0) {
		rc = cmd_files(c, &g, argc, argv);
	} else if (strcmp(cmd, "exec") == 0) {
		rc = cmd_exec(c, argc, argv);
	} else if (strcmp(cmd, "run") == 0) {
		rc = cmd_run(c, argc, argv);
	} else if (strcmp(cmd, "cp") == 0) {
		rc = cmd_cp(c, argc, argv);
	} else {
		rc = usage();
	}
	sbx_client_close(c);
	return rc;
}
