/*
 * Internal side of sbx_err: errno mapping and static checks that the C enum
 * and the proto enum agree.
 */
#ifndef SBX_PROTO_ERR_H
#define SBX_PROTO_ERR_H

#include "sbx_err.h"

/* Map an errno value to the closest status (ENOENT -> SBX_ENOTFOUND, ...). */
sbx_err sbx_err_from_errno(int errnum);

/* True when v is one of the wire Status values. */
int sbx_err_valid(int v);

#endif
