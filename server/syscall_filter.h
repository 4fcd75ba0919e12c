/*
 * syscall_filter: the seccomp filter every jail runs under, compiled once with libseccomp
 * into BPF in a memfd that bwrap reads (--seccomp). It denies the syscalls a
 * sandbox has no use for and that widen the kernel's attack surface: new
 * namespaces, mounts, keyrings, BPF, perf, io_uring, module and kexec calls,
 * terminal injection. Denied calls fail with EPERM (clone3 with ENOSYS so
 * that libc falls back to clone, whose flags the filter can inspect).
 */
#ifndef SBX_SYSCALL_FILTER_H
#define SBX_SYSCALL_FILTER_H

#include "err.h"

/* Build the filter; *FD is a CLOEXEC memfd holding the BPF program. A child
 * must open its own description (/proc/self/fd/N) to read it from offset 0. */
SBX_NODISCARD sbx_err syscall_filter_fd(int *fd, char *why, size_t whylen);

#endif
