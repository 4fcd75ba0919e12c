/*
 * Envelope codec. Pure; any thread.
 *
 * Payloads are not packed into a temporary buffer and then copied into the
 * envelope: the envelope's other fields are packed by protobuf-c and the
 * payload field (tag, length, bytes) is appended after them. Protobuf allows
 * fields in any order, so the result is an ordinary Call or Result.
 */
#include <stdlib.h>
#include <string.h>

#include "wire.h"

/* Field numbers of the payload bytes in Call and Result. */
#define CALL_PAYLOAD_FIELD 6
#define RESULT_PAYLOAD_FIELD 4
#define WIRE_LEN_DELIMITED 2

static size_t
varint_size(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static void
append_varint(ProtobufCBuffer *buf, uint64_t v)
{
	uint8_t tmp[10];
	size_t n = 0;

	while (v >= 0x80) {
		tmp[n++] = (uint8_t) (v | 0x80);
		v >>= 7;
	}
	tmp[n++] = (uint8_t) v;
	buf->append(buf, n, tmp);
}

static size_t
payload_field_size(const ProtobufCMessage *payload)
{
	size_t len;

	if (payload == NULL) {
		return 0;
	}
	len = protobuf_c_message_get_packed_size(payload);
	return 1 + varint_size(len) + len;
}

static void
append_payload_field(ProtobufCBuffer *buf, unsigned field,
                     const ProtobufCMessage *payload)
{
	if (payload == NULL) {
		return;
	}
	append_varint(buf, (field << 3) | WIRE_LEN_DELIMITED);
	append_varint(buf, protobuf_c_message_get_packed_size(payload));
	protobuf_c_message_pack_to_buffer(payload, buf);
}

static void
call_fill(Sbx__V1__Call *c, const char *method, uint64_t id,
          uint32_t timeout_ms, const char *token)
{
	sbx__v1__call__init(c);
	c->version = SBX_WIRE_VERSION;
	c->method = (char *) method;
	c->id = id;
	c->timeout_ms = timeout_ms;
	c->token = (char *) (token != NULL ? token : "");
}

size_t
sbx_wire_call_size(const char *method, uint64_t id, uint32_t timeout_ms,
                   const char *token, const ProtobufCMessage *payload)
{
	Sbx__V1__Call c;

	call_fill(&c, method, id, timeout_ms, token);
	return sbx__v1__call__get_packed_size(&c) + payload_field_size(payload);
}

void
sbx_wire_call_encode(ProtobufCBuffer *buf, const char *method, uint64_t id,
                     uint32_t timeout_ms, const char *token,
                     const ProtobufCMessage *payload)
{
	Sbx__V1__Call c;

	call_fill(&c, method, id, timeout_ms, token);
	sbx__v1__call__pack_to_buffer(&c, buf);
	append_payload_field(buf, CALL_PAYLOAD_FIELD, payload);
}

void
sbx_wire_result_encode(ProtobufCBuffer *buf, uint64_t id, sbx_err st,
                       const char *message, const ProtobufCMessage *payload)
{
	Sbx__V1__Result r;

	sbx__v1__result__init(&r);
	r.id = id;
	r.status = (Sbx__V1__Status) st;
	if (st != SBX_OK) {
		r.message = (char *) (message != NULL ? message
		                                      : sbx_strerror(st));
		payload = NULL;
	}
	sbx__v1__result__pack_to_buffer(&r, buf);
	append_payload_field(buf, RESULT_PAYLOAD_FIELD, payload);
}

sbx_err
sbx_wire_call_decode(const uint8_t *p, size_t len, Sbx__V1__Call **out,
                     const char **why)
{
	Sbx__V1__Call *c;

	if ((c = sbx__v1__call__unpack(NULL, len, p)) == NULL) {
		*why = "malformed Call envelope";
		return SBX_EINVAL;
	}
	if (c->version != SBX_WIRE_VERSION) {
		*why = "unsupported wire version (this daemon speaks 1)";
	} else if (c->method[0] == '\0' ||
	           strlen(c->method) > SBX_WIRE_METHOD_MAX) {
		*why = "missing or oversized method name";
	} else if (strlen(c->token) > SBX_WIRE_TOKEN_MAX) {
		*why = "oversized token";
	} else {
		*out = c;
		return SBX_OK;
	}
	sbx__v1__call__free_unpacked(c, NULL);
	return SBX_EINVAL;
}

/* Read a varint at *P (below END); false if truncated or over 10 bytes. */
static bool
read_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
	uint64_t v = 0;

	for (unsigned shift = 0; shift < 70 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;

		v |= (uint64_t) (b & 0x7f) << shift;
		if ((b & 0x80) == 0) {
			*out = v;
			return true;
		}
	}
	return false;
}

uint64_t
sbx_wire_call_peek_id(const uint8_t *p, size_t len)
{
	const uint8_t *end = p + len;
	uint64_t tag, v, id = 0;

	/* Walk the top-level fields, skipping their bodies; the last id
	 * wins, as protobuf's merge rule has it. */
	while (p < end) {
		if (!read_varint(&p, end, &tag)) {
			return 0;
		}
		switch (tag & 7) {
		case 0: /* varint */
			if (!read_varint(&p, end, &v)) {
				return 0;
			}
			if (tag >> 3 == 3) {
				id = v;
			}
			break;
		case 1: /* 64-bit */
			if ((size_t) (end - p) < 8) {
				return 0;
			}
			p += 8;
			break;
		case 2: /* length-delimited */
			if (!read_varint(&p, end, &v) ||
			    v > (uint64_t) (end - p)) {
				return 0;
			}
			p += v;
			break;
		case 5: /* 32-bit */
			if ((size_t) (end - p) < 4) {
				return 0;
			}
			p += 4;
			break;
		default: /* groups or invalid: not a Call */
			return 0;
		}
	}
	return id;
}

sbx_err
sbx_wire_result_decode(const uint8_t *p, size_t len, Sbx__V1__Result **out)
{
	Sbx__V1__Result *r;

	if ((r = sbx__v1__result__unpack(NULL, len, p)) == NULL) {
		return SBX_EINVAL;
	}
	if (!sbx_err_valid((int) r->status)) {
		r->status = SBX__V1__STATUS__UNKNOWN;
	}
	*out = r;
	return SBX_OK;
}

sbx_err
sbx_wire_unpack(const ProtobufCMessageDescriptor *d, const uint8_t *p,
                size_t len, ProtobufCMessage **out)
{
	ProtobufCMessage *m;

	if ((m = protobuf_c_message_unpack(d, NULL, len, p)) == NULL) {
		return SBX_EINVAL;
	}
	*out = m;
	return SBX_OK;
}

static bool
chars_valid(const char *s, size_t max, const char *extra, bool upper)
{
	size_t n = 0;

	for (; s[n] != '\0'; n++) {
		char ch = s[n];

		if (n >= max) {
			return false;
		}
		if ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
		    (upper && ch >= 'A' && ch <= 'Z') ||
		    strchr(extra, ch) != NULL) {
			continue;
		}
		return false;
	}
	return n > 0;
}

bool
sbx_wire_id_valid(const char *s)
{
	return s != NULL && chars_valid(s, SBX_WIRE_ID_MAX, "-", false);
}

bool
sbx_wire_stream_valid(const char *s)
{
	return s != NULL && chars_valid(s, SBX_WIRE_STREAM_MAX, "._-", true);
}

size_t
sbx_wire_topic(char *out, size_t cap, const char *sandbox, const char *stream)
{
	size_t a, b;

	if (!sbx_wire_id_valid(sandbox) ||
	    (stream != NULL && !sbx_wire_stream_valid(stream))) {
		return 0;
	}
	a = strlen(sandbox);
	b = stream != NULL ? strlen(stream) + 1 : 0;
	if (a + 1 + b + 1 > cap) {
		return 0;
	}
	memcpy(out, sandbox, a);
	out[a] = ' ';
	if (stream != NULL) {
		memcpy(out + a + 1, stream, b - 1);
		out[a + b] = '\n';
	}
	out[a + 1 + b] = '\0';
	return a + 1 + b;
}

void
sbx_wire_event_encode(ProtobufCBuffer *buf, const Sbx__V1__Event *ev)
{
	char topic[SBX_WIRE_ID_MAX + SBX_WIRE_STREAM_MAX + 4];
	size_t n;

	n = sbx_wire_topic(topic, sizeof(topic), ev->sandbox_id, ev->stream);
	buf->append(buf, n, (const uint8_t *) topic);
	sbx__v1__event__pack_to_buffer(ev, buf);
}

sbx_err
sbx_wire_event_decode(const uint8_t *p, size_t len, Sbx__V1__Event **out)
{
	char topic[SBX_WIRE_ID_MAX + SBX_WIRE_STREAM_MAX + 4];
	const uint8_t *nl;
	Sbx__V1__Event *ev;
	size_t tlen;

	nl = memchr(p, '\n', len < sizeof(topic) ? len : sizeof(topic));
	if (nl == NULL) {
		return SBX_EINVAL;
	}
	tlen = (size_t) (nl - p) + 1;
	ev = sbx__v1__event__unpack(NULL, len - tlen, p + tlen);
	if (ev == NULL) {
		return SBX_EINVAL;
	}
	if (sbx_wire_topic(topic, sizeof(topic), ev->sandbox_id, ev->stream) !=
	            tlen ||
	    memcmp(topic, p, tlen) != 0) {
		sbx__v1__event__free_unpacked(ev, NULL);
		return SBX_EINVAL;
	}
	*out = ev;
	return SBX_OK;
}

static void
wire_buf_append(ProtobufCBuffer *base, size_t len, const uint8_t *data)
{
	struct sbx_wire_buf *b = (struct sbx_wire_buf *) base;
	size_t cap;
	uint8_t *p;

	if (b->failed) {
		return;
	}
	if (b->len + len > b->cap) {
		cap = b->cap != 0 ? b->cap : 256;
		while (cap < b->len + len) {
			cap *= 2;
		}
		if ((p = realloc(b->data, cap)) == NULL) {
			b->failed = true;
			return;
		}
		b->data = p;
		b->cap = cap;
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
}

void
sbx_wire_buf_init(struct sbx_wire_buf *b)
{
	memset(b, 0, sizeof(*b));
	b->base.append = wire_buf_append;
}

void
sbx_wire_buf_fini(struct sbx_wire_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}
