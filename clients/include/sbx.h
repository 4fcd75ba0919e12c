/*
 * libsbx: the C client of sbxd.
 *
 * Calls are synchronous and thread-safe: any number of threads may call
 * through one sbx_client, each call on its own NNG context. The request and
 * reply types are the protoc-c messages of sbx.proto (package sbx.v1); free
 * replies with protobuf_c_message_free_unpacked(reply, NULL).
 *
 * Streams deliver a process's output in order, without gaps: libsbx repairs
 * what the event socket dropped (NNG PUB drops for slow readers) by fetching
 * from sbxd's backlog, and ends the stream with a clear error when that is
 * impossible. Stream callbacks run on libsbx's I/O thread; they must not
 * block for long and must not close their own stream.
 *
 * libsbx never aborts its host process. Errors are sbx_err values (the wire
 * Status); sbx_last_error() describes the last failure of this thread.
 */
#ifndef SBX_H
#define SBX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "sbx.pb-c.h"
#include "sbx_err.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SBX_API __attribute__((visibility("default")))

#define SBX_DEFAULT_URL "ipc:///run/sbx/rpc"
#define SBX_DEFAULT_EVENTS_URL "ipc:///run/sbx/events"

typedef struct sbx_client sbx_client;
typedef struct sbx_stream sbx_stream;

struct sbx_client_opts {
	const char *url;        /* default SBX_DEFAULT_URL or $SBX_URL */
	const char *events_url; /* default SBX_DEFAULT_EVENTS_URL or
	                           $SBX_EVENTS_URL */
	const char *token;      /* default $SBX_TOKEN; needed off ipc */
	const char *tls_ca_file;     /* tls+tcp: CA to verify sbxd with */
	const char *tls_cert_file;   /* tls+tcp events: our certificate */
	const char *tls_key_file;
	const char *tls_server_name; /* default: the URL's host */
	uint32_t timeout_ms;    /* per call; default 60000 */
	uint32_t event_queue;   /* events buffered for the I/O thread;
	                           default 8192 messages */
};

/*
 * Connect to sbxd. OPTS may be NULL for the defaults. Returns SBX_EUNAVAIL
 * if sbxd does not answer at the URL, SBX_EINVAL for a bad URL or TLS file.
 */
SBX_API SBX_NODISCARD sbx_err sbx_client_open(sbx_client **out,
                                              const struct sbx_client_opts *o);

/* Close every stream and the connection. Accepts NULL. */
SBX_API void sbx_client_close(sbx_client *c);

/* What the last failing sbx_ call of this thread reported. Never NULL. */
SBX_API const char *sbx_last_error(void);

/*
 * Call METHOD (an rpc name of service Sandboxes, e.g. "Get") with REQ, whose
 * type must be the method's input. On SBX_OK *REPLY is the method's output
 * message (caller frees). Other statuses are sbxd's answer or a transport
 * failure (SBX_EUNAVAIL, SBX_ETIMEDOUT).
 */
SBX_API SBX_NODISCARD sbx_err sbx_call(sbx_client *c, const char *method,
                                       const ProtobufCMessage *req,
                                       ProtobufCMessage **reply);

/* The same with an explicit timeout (0: the client's default). */
SBX_API SBX_NODISCARD sbx_err sbx_call_timeout(sbx_client *c,
                                               const char *method,
                                               const ProtobufCMessage *req,
                                               ProtobufCMessage **reply,
                                               uint32_t timeout_ms);

/*
 * A ProtobufCService for protoc-c's generated stubs, e.g.
 *   sbx__v1__sandboxes__get(sbx_client_service(c), &req, closure, arg);
 * The closure runs before the stub returns, with NULL on failure (then
 * sbx_last_error() says why). Borrowed from C.
 */
SBX_API ProtobufCService *sbx_client_service(sbx_client *c);

struct sbx_stream_cbs {
	void *arg;
	/* sbx_process_run only: the process started (calling thread). */
	void (*on_start)(void *arg, const Sbx__V1__ProcessInfo *info);
	/* Output: KIND is SBX__V1__EVENT__BODY_STDOUT, _STDERR or _PTY. */
	void (*on_data)(void *arg, Sbx__V1__Event__BodyCase kind,
	                const uint8_t *data, size_t len);
	/* The last event. */
	void (*on_exit)(void *arg, const Sbx__V1__ProcessExit *exit);
};

/*
 * Follow the events of STREAM in SANDBOX, from its first event on. Open it
 * before starting the process (streams ids are chosen by the caller), and
 * nothing is missed: until its first event, a stream sbxd does not know yet
 * is waited for while its sandbox exists. CBS is copied.
 */
SBX_API SBX_NODISCARD sbx_err sbx_stream_open(sbx_client *c,
                                              const char *sandbox,
                                              const char *stream,
                                              const struct sbx_stream_cbs *cbs,
                                              sbx_stream **out);

/*
 * Wait up to TIMEOUT_MS (0: forever) for the stream's end. SBX_OK when its
 * exit event was delivered (*EXIT_CODE, *SIGNAL filled, may be NULL),
 * SBX_ETIMEDOUT if still running, or the error that ended it: SBX_EDATALOSS
 * (events were dropped from sbxd's backlog before they could be fetched),
 * SBX_ENOTFOUND (the sandbox or stream is gone).
 */
SBX_API SBX_NODISCARD sbx_err sbx_stream_wait(sbx_stream *s,
                                              uint32_t timeout_ms,
                                              int32_t *exit_code,
                                              int32_t *signal);

/* How many of the stream's events were fetched from sbxd's backlog to
 * repair gaps (the rest arrived on the event socket). */
SBX_API uint64_t sbx_stream_fetched(sbx_stream *s);

/* Stop following and free. No callback runs after it returns. */
SBX_API void sbx_stream_close(sbx_stream *s);

/* A fresh random stream id ("c" + 16 hex digits) into OUT[24]. */
SBX_API void sbx_stream_id(char out[24]);

/*
 * Start REQ's process (REQ->stream is set to a fresh id if empty), stream
 * its output to CBS, and wait up to TIMEOUT_MS (0: forever) for its end.
 * The stream is held for this client (StreamHold): a slow reader slows the
 * process down instead of losing output, so every byte arrives. *INFO (may
 * be NULL) receives the start reply (caller frees).
 */
SBX_API SBX_NODISCARD sbx_err sbx_process_run(
        sbx_client *c, Sbx__V1__ProcessStartRequest *req,
        const struct sbx_stream_cbs *cbs, uint32_t timeout_ms,
        Sbx__V1__ProcessInfo **info, int32_t *exit_code, int32_t *signal);

/* Write LEN bytes to PATH in SANDBOX as USER (NULL: "user"), in chunks,
 * replacing the file; MODE 0 means 0644. Parents are created. */
SBX_API SBX_NODISCARD sbx_err sbx_file_write(sbx_client *c,
                                             const char *sandbox,
                                             const char *path,
                                             const char *user,
                                             const void *data, size_t len,
                                             uint32_t mode);

/* The same, reading FD to its end. */
SBX_API SBX_NODISCARD sbx_err sbx_file_upload(sbx_client *c,
                                              const char *sandbox,
                                              const char *path,
                                              const char *user, int fd,
                                              uint32_t mode);

/* Read all of PATH into FD. */
SBX_API SBX_NODISCARD sbx_err sbx_file_download(sbx_client *c,
                                                const char *sandbox,
                                                const char *path,
                                                const char *user, int fd);

/* Read all of PATH (at most MAX bytes; SBX_ELIMIT beyond) into a heap
 * buffer *DATA of *LEN bytes (caller frees; NUL-terminated for convenience). */
SBX_API SBX_NODISCARD sbx_err sbx_file_read(sbx_client *c, const char *sandbox,
                                            const char *path, const char *user,
                                            void **data, size_t *len,
                                            size_t max);

#ifdef __cplusplus
}
#endif
#endif
