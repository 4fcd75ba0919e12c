/*
 * sbx_err: the one error type of sbx. The values are the wire Status enum
 * (gRPC numbering), so a code means the same in C, on the wire and in the
 * gateway's HTTP table. This header is public: libsbx installs it.
 */
#ifndef SBX_ERR_H
#define SBX_ERR_H

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define SBX_NODISCARD __attribute__((warn_unused_result))
#else
#define SBX_NODISCARD
#endif

typedef enum sbx_err {
	SBX_OK = 0,
	SBX_ECANCELED = 1,  /* CANCELLED */
	SBX_EUNKNOWN = 2,   /* UNKNOWN */
	SBX_EINVAL = 3,     /* INVALID_ARGUMENT */
	SBX_ETIMEDOUT = 4,  /* DEADLINE_EXCEEDED */
	SBX_ENOTFOUND = 5,  /* NOT_FOUND */
	SBX_EEXIST = 6,     /* ALREADY_EXISTS */
	SBX_EPERM = 7,      /* PERMISSION_DENIED */
	SBX_ELIMIT = 8,     /* RESOURCE_EXHAUSTED */
	SBX_ESTATE = 9,     /* FAILED_PRECONDITION */
	SBX_EABORTED = 10,  /* ABORTED */
	SBX_ERANGE = 11,    /* OUT_OF_RANGE */
	SBX_ENOTSUP = 12,   /* UNIMPLEMENTED */
	SBX_EINTERNAL = 13, /* INTERNAL */
	SBX_EUNAVAIL = 14,  /* UNAVAILABLE */
	SBX_EDATALOSS = 15, /* DATA_LOSS */
	SBX_EAUTH = 16,     /* UNAUTHENTICATED */
} sbx_err;

/* Out of memory is a resource limit on the wire. */
#define SBX_ENOMEM SBX_ELIMIT

/* The status name as on the wire ("NOT_FOUND"), or "UNKNOWN_STATUS". */
const char *sbx_strerror(sbx_err err);

#ifdef __cplusplus
}
#endif
#endif
