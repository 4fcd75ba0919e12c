/*
 * msgbuf: a ProtobufCBuffer that appends to an nng_msg, so packers write
 * straight into the message NNG sends. Header-only: the proto library does
 * not link NNG; its users do. Any thread (one buffer per thread).
 */
#ifndef SBX_MSGBUF_H
#define SBX_MSGBUF_H

#include <nng/nng.h>
#include <protobuf-c/protobuf-c.h>

struct sbx_msgbuf {
	ProtobufCBuffer base;
	nng_msg *msg;
	int err; /* the first NNG error, then appends stop */
};

static inline void
sbx_msgbuf_append(ProtobufCBuffer *base, size_t len, const uint8_t *data)
{
	struct sbx_msgbuf *b = (struct sbx_msgbuf *) base;

	if (b->err == 0) {
		b->err = nng_msg_append(b->msg, data, len);
	}
}

/* Start a message with room for RESERVE bytes. Returns 0 or an NNG error;
 * on error B->msg is NULL. */
static inline int
sbx_msgbuf_init(struct sbx_msgbuf *b, size_t reserve)
{
	int rv;

	b->base.append = sbx_msgbuf_append;
	b->err = 0;
	if ((rv = nng_msg_alloc(&b->msg, 0)) != 0) {
		b->msg = NULL;
		return rv;
	}
	if ((rv = nng_msg_reserve(b->msg, reserve)) != 0) {
		nng_msg_free(b->msg);
		b->msg = NULL;
	}
	return rv;
}

#endif
