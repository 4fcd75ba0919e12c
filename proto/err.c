/*
 * Status names and errno mapping. Pure; any thread.
 */
#include <errno.h>

#include "err.h"
#include "sbx.pb-c.h"

_Static_assert((int) SBX_OK == (int) SBX__V1__STATUS__OK, "status values");
_Static_assert((int) SBX_EINVAL == (int) SBX__V1__STATUS__INVALID_ARGUMENT, "status");
_Static_assert((int) SBX_ENOTFOUND == (int) SBX__V1__STATUS__NOT_FOUND, "status");
_Static_assert((int) SBX_ELIMIT == (int) SBX__V1__STATUS__RESOURCE_EXHAUSTED, "status");
_Static_assert((int) SBX_ESTATE == (int) SBX__V1__STATUS__FAILED_PRECONDITION, "status");
_Static_assert((int) SBX_EINTERNAL == (int) SBX__V1__STATUS__INTERNAL, "status");
_Static_assert((int) SBX_EDATALOSS == (int) SBX__V1__STATUS__DATA_LOSS, "status");
_Static_assert((int) SBX_EAUTH == (int) SBX__V1__STATUS__UNAUTHENTICATED, "status");

static const char *const names[] = {
	[SBX_OK] = "OK",
	[SBX_ECANCELED] = "CANCELLED",
	[SBX_EUNKNOWN] = "UNKNOWN",
	[SBX_EINVAL] = "INVALID_ARGUMENT",
	[SBX_ETIMEDOUT] = "DEADLINE_EXCEEDED",
	[SBX_ENOTFOUND] = "NOT_FOUND",
	[SBX_EEXIST] = "ALREADY_EXISTS",
	[SBX_EPERM] = "PERMISSION_DENIED",
	[SBX_ELIMIT] = "RESOURCE_EXHAUSTED",
	[SBX_ESTATE] = "FAILED_PRECONDITION",
	[SBX_EABORTED] = "ABORTED",
	[SBX_ERANGE] = "OUT_OF_RANGE",
	[SBX_ENOTSUP] = "UNIMPLEMENTED",
	[SBX_EINTERNAL] = "INTERNAL",
	[SBX_EUNAVAIL] = "UNAVAILABLE",
	[SBX_EDATALOSS] = "DATA_LOSS",
	[SBX_EAUTH] = "UNAUTHENTICATED",
};

int
sbx_err_valid(int v)
{
	return v >= 0 && v < (int) (sizeof(names) / sizeof(names[0]));
}

const char *
sbx_strerror(sbx_err err)
{
	if (!sbx_err_valid((int) err)) {
		return "UNKNOWN_STATUS";
	}
	return names[err];
}

sbx_err
sbx_err_from_errno(int errnum)
{
	switch (errnum) {
	case 0:
		return SBX_OK;
	case ENOENT:
	case ESRCH:
		return SBX_ENOTFOUND;
	case EEXIST:
		return SBX_EEXIST;
	case EACCES:
	case EPERM:
	case EROFS:
		return SBX_EPERM;
	case ENOMEM:
	case ENOSPC:
	case EDQUOT:
	case EMFILE:
	case ENFILE:
	case EAGAIN:
		return SBX_ELIMIT;
	case EINVAL:
	case ENAMETOOLONG:
	case ELOOP:
	case EXDEV:
		return SBX_EINVAL;
	case ENOTDIR:
	case EISDIR:
	case EBUSY:
	case ENOTEMPTY:
		return SBX_ESTATE;
	case EFBIG:
	case EOVERFLOW:
		return SBX_ERANGE;
	case ETIMEDOUT:
		return SBX_ETIMEDOUT;
	case ECANCELED:
		return SBX_ECANCELED;
	case ENOSYS:
	case EOPNOTSUPP:
		return SBX_ENOTSUP;
	case ECONNREFUSED:
	case ECONNRESET:
	case EPIPE:
		return SBX_EUNAVAIL;
	default:
		return SBX_EINTERNAL;
	}
}
