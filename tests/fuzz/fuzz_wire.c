/*
 * Fuzz target: everything sbxd decodes from the network before a handler
 * sees it (the Call envelope, the method lookup, the payload of that method,
 * and the Result and Event framing libsbx decodes). Built as a libFuzzer
 * target with SBX_BUILD_FUZZERS=ON; otherwise replay.c runs it over the
 * committed corpus under ctest (label fuzz).
 */
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const ProtobufCServiceDescriptor *sd = &sbx__v1__sandboxes__descriptor;
	const ProtobufCMethodDescriptor *m;
	Sbx__V1__Call *call = NULL;
	Sbx__V1__Result *res = NULL;
	Sbx__V1__Event *ev = NULL;
	ProtobufCMessage *req = NULL;
	const char *why = NULL;

	if (sbx_wire_call_decode(data, size, &call, &why) == SBX_OK) {
		m = protobuf_c_service_descriptor_get_method_by_name(
		        sd, call->method);
		if (m != NULL &&
		    sbx_wire_unpack(m->input, call->payload.data,
		                    call->payload.len, &req) == SBX_OK) {
			protobuf_c_message_free_unpacked(req, NULL);
		}
		sbx__v1__call__free_unpacked(call, NULL);
	}
	(void) sbx_wire_call_peek_id(data, size);
	if (sbx_wire_result_decode(data, size, &res) == SBX_OK) {
		sbx__v1__result__free_unpacked(res, NULL);
	}
	if (sbx_wire_event_decode(data, size, &ev) == SBX_OK) {
		sbx__v1__event__free_unpacked(ev, NULL);
	}
	return 0;
}
