/*
 * The envelope codec: Call and Result around every rpc payload, and the
 * topic framing of events. Pure: bytes in, message or sbx_err out, no I/O.
 * The only code besides protoc-c's output that packs or unpacks.
 */
#ifndef SBX_WIRE_H
#define SBX_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "err.h"
#include "sbx.pb-c.h"

#define SBX_WIRE_VERSION 1
#define SBX_WIRE_METHOD_MAX 64
#define SBX_WIRE_TOKEN_MAX 512
#define SBX_WIRE_ID_MAX 64     /* sandbox ids */
#define SBX_WIRE_STREAM_MAX 64 /* stream ids */

/*
 * Decode a Call envelope of LEN bytes at P. On success *OUT is the call
 * (free with sbx__v1__call__free_unpacked); on error WHY says what is wrong.
 * Returns SBX_EINVAL (malformed, wrong version, oversized fields) or
 * SBX_ENOMEM.
 */
SBX_NODISCARD sbx_err sbx_wire_call_decode(const uint8_t *p, size_t len,
                                           Sbx__V1__Call **out,
                                           const char **why);

/*
 * The id (field 3) of the Call envelope of LEN bytes at P, read without
 * unpacking anything else, so that a call refused before or while decoding
 * (over the size cap, wrong version, bad method name) is still answered
 * with its own id. 0 when P is not well-formed protobuf or has no id.
 */
uint64_t sbx_wire_call_peek_id(const uint8_t *p, size_t len);

/* Decode a Result envelope; SBX_EINVAL if malformed. */
SBX_NODISCARD sbx_err sbx_wire_result_decode(const uint8_t *p, size_t len,
                                             Sbx__V1__Result **out);

/*
 * Unpack a message of type D from (P, LEN). *OUT is freed with
 * protobuf_c_message_free_unpacked. SBX_EINVAL if malformed.
 */
SBX_NODISCARD sbx_err sbx_wire_unpack(const ProtobufCMessageDescriptor *d,
                                      const uint8_t *p, size_t len,
                                      ProtobufCMessage **out);

/*
 * Append a packed Call to BUF. PAYLOAD (may be NULL) is packed in place, not
 * copied through an intermediate buffer. TOKEN may be NULL.
 */
void sbx_wire_call_encode(ProtobufCBuffer *buf, const char *method,
                          uint64_t id, uint32_t timeout_ms, const char *token,
                          const ProtobufCMessage *payload);

/* The packed size sbx_wire_call_encode will append. */
size_t sbx_wire_call_size(const char *method, uint64_t id, uint32_t timeout_ms,
                          const char *token, const ProtobufCMessage *payload);

/*
 * Append a packed Result to BUF: PAYLOAD when ST is SBX_OK, else MESSAGE.
 */
void sbx_wire_result_encode(ProtobufCBuffer *buf, uint64_t id, sbx_err st,
                            const char *message,
                            const ProtobufCMessage *payload);

/*
 * Append an event with its topic "<sandbox id> <stream>\n" to BUF.
 * EV's sandbox_id and stream must be valid ids.
 */
void sbx_wire_event_encode(ProtobufCBuffer *buf, const Sbx__V1__Event *ev);

/* Write the topic of (SANDBOX, STREAM) to OUT (NUL-terminated). STREAM may
 * be NULL for the prefix of every stream of the sandbox. Returns its length,
 * or 0 if it does not fit in CAP or an id is invalid. */
size_t sbx_wire_topic(char *out, size_t cap, const char *sandbox,
                      const char *stream);

/*
 * Decode an event with topic. The topic must match the event's ids.
 * SBX_EINVAL if malformed.
 */
SBX_NODISCARD sbx_err sbx_wire_event_decode(const uint8_t *p, size_t len,
                                            Sbx__V1__Event **out);

/* Sandbox ids: [0-9a-z-], 1..SBX_WIRE_ID_MAX bytes. */
bool sbx_wire_id_valid(const char *s);

/* Stream ids: [A-Za-z0-9._-], 1..SBX_WIRE_STREAM_MAX bytes. */
bool sbx_wire_stream_valid(const char *s);

/* A ProtobufCBuffer that grows on the heap. Check .failed after packing. */
struct sbx_wire_buf {
	ProtobufCBuffer base;
	uint8_t *data;
	size_t len;
	size_t cap;
	bool failed;
};

void sbx_wire_buf_init(struct sbx_wire_buf *b);
void sbx_wire_buf_fini(struct sbx_wire_buf *b);

#endif
