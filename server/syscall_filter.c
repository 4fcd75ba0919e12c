/*
 * The jail's seccomp policy (see seccomp.h). Start-up only.
 */
#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "syscall_filter.h"

/* Denied outright with EPERM. Names not known to this libseccomp or arch are
 * skipped (they cannot be called then either). */
static const char *const denied[] = {
	"unshare", "setns", "mount", "umount", "umount2", "pivot_root",
	"chroot", "move_mount", "open_tree", "fsopen", "fsconfig", "fsmount",
	"fspick", "mount_setattr", "keyctl", "add_key", "request_key", "bpf",
	"perf_event_open", "userfaultfd", "kexec_load", "kexec_file_load",
	"init_module", "finit_module", "delete_module", "reboot", "swapon",
	"swapoff", "acct", "quotactl", "quotactl_fd", "lookup_dcookie",
	"open_by_handle_at", "name_to_handle_at", "syslog", "vhangup", "iopl",
	"ioperm", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
	"io_uring_setup", "io_uring_enter", "io_uring_register", "nfsservctl",
	"uselib", "ustat", "sysfs", "_sysctl", "create_module",
	"get_kernel_syms", "query_module", "vm86", "vm86old",
};

static const unsigned long ns_flags[] = {
	CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWNET,
	CLONE_NEWIPC, CLONE_NEWUTS, CLONE_NEWCGROUP, CLONE_NEWTIME,
};

static int
seccomp_rules(scmp_filter_ctx ctx)
{
	int rc = 0;

	for (size_t i = 0; i < sizeof(denied) / sizeof(denied[0]); i++) {
		int nr = seccomp_syscall_resolve_name(denied[i]);

		if (nr == __NR_SCMP_ERROR) {
			continue;
		}
		if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0)) !=
		    0) {
			return rc;
		}
	}
	for (size_t i = 0; i < sizeof(ns_flags) / sizeof(ns_flags[0]); i++) {
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM),
		                      SCMP_SYS(clone), 1,
		                      SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags[i],
		                              ns_flags[i]));
		if (rc != 0) {
			return rc;
		}
	}
	if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS),
	                           SCMP_SYS(clone3), 0)) != 0 ||
	    (rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl),
	                           1, SCMP_A1(SCMP_CMP_EQ, TIOCSTI, 0))) != 0 ||
	    (rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl),
	                           1, SCMP_A1(SCMP_CMP_EQ, TIOCLINUX, 0))) != 0) {
		return rc;
	}
	return 0;
}

sbx_err
syscall_filter_fd(int *out, char *why, size_t whylen)
{
	scmp_filter_ctx ctx;
	int fd = -1, rc;

	if ((ctx = seccomp_init(SCMP_ACT_ALLOW)) == NULL) {
		snprintf(why, whylen, "seccomp_init failed");
		return SBX_EINTERNAL;
	}
	if ((rc = seccomp_rules(ctx)) != 0) {
		snprintf(why, whylen, "seccomp rule: %s", strerror(-rc));
		goto fail;
	}
	if ((fd = memfd_create("sbx-seccomp", MFD_CLOEXEC)) < 0 ||
	    (rc = seccomp_export_bpf(ctx, fd)) != 0) {
		snprintf(why, whylen, "seccomp export: %s",
		         strerror(fd < 0 ? errno : -rc));
		goto fail;
	}
	seccomp_release(ctx);
	*out = fd;
	return SBX_OK;
fail:
	if (fd >= 0) {
		close(fd);
	}
	seccomp_release(ctx);
	return SBX_EINTERNAL;
}
