/* ghostswap tests: a seccomp filter that makes the kernel refuse
 * io_uring, as container runtimes' default profiles (ENOSYS) and
 * kernel.io_uring_disabled (EPERM) do.  A raw BPF program: no libseccomp.
 *
 * Used by tests/unit/test-uring-*.c (in the test process itself) and
 * tests/backing/uring-blocked-exec.c (a wrapper that starts nbdkit under
 * it).  Header only: one static function.
 */
#ifndef GHOSTSWAP_TEST_URING_SECCOMP_H
#define GHOSTSWAP_TEST_URING_SECCOMP_H

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define URING_SECCOMP_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define URING_SECCOMP_ARCH AUDIT_ARCH_AARCH64
#endif

/* uring_seccomp_block - from now on io_uring_setup (and io_uring_enter
 * with @enter_too) fail with @err in this thread and its children, or in
 * every thread of the process with @all_threads
 * (SECCOMP_FILTER_FLAG_TSYNC); inherited across execve.  Checks that
 * io_uring_setup is refused afterwards.
 * Return: 0; -ENOTSUP on an architecture this filter does not know;
 * -errno from prctl or seccomp; -EPROTO if io_uring_setup still works.
 */
static inline int
uring_seccomp_block (int err, bool enter_too, bool all_threads)
{
#ifndef URING_SECCOMP_ARCH
  return -ENOTSUP;
#else
  struct sock_filter f[] = {
    BPF_STMT (BPF_LD | BPF_W | BPF_ABS, offsetof (struct seccomp_data, arch)),
    BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, URING_SECCOMP_ARCH, 1, 0),
    BPF_STMT (BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    BPF_STMT (BPF_LD | BPF_W | BPF_ABS, offsetof (struct seccomp_data, nr)),
    BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 2, 0),
    BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K,
              enter_too ? __NR_io_uring_enter : __NR_io_uring_setup, 1, 0),
    BPF_STMT (BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    BPF_STMT (BPF_RET | BPF_K,
              SECCOMP_RET_ERRNO | ((unsigned) err & SECCOMP_RET_DATA)),
  };
  struct sock_fprog prog = { .len = sizeof f / sizeof f[0], .filter = f };
  unsigned char params[120];            /* struct io_uring_params */
  long r;

  if (prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    return -errno;
  if (syscall (__NR_seccomp, SECCOMP_SET_MODE_FILTER,
               all_threads ? SECCOMP_FILTER_FLAG_TSYNC : 0, &prog) != 0)
    return -errno;
  memset (params, 0, sizeof params);
  r = syscall (__NR_io_uring_setup, 1, params);
  if (r >= 0) {
    close ((int) r);
    return -EPROTO;
  }
  return errno == err ? 0 : -EPROTO;
#endif
}

#endif /* GHOSTSWAP_TEST_URING_SECCOMP_H */
