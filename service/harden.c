/* ghostswap service: process hardening for serving swap (see harden.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/capability.h>

#include "ghostswap/service/harden.h"

/* Linux >= 5.6; older C libraries lack the numbers. */
#ifndef PR_SET_IO_FLUSHER
#define PR_SET_IO_FLUSHER 57
#endif
#ifndef PR_GET_IO_FLUSHER
#define PR_GET_IO_FLUSHER 58
#endif
/* Linux >= 4.4. */
#ifndef MCL_ONFAULT
#define MCL_ONFAULT 4
#endif

#define OOM_SCORE_ADJ_MIN -1000

/* has_cap_ipc_lock - is CAP_IPC_LOCK in our effective set? */
static bool
has_cap_ipc_lock (void)
{
  struct __user_cap_header_struct hdr = {
    .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0,
  };
  struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

  memset (data, 0, sizeof data);
  if (syscall (SYS_capget, &hdr, data) != 0)
    return false;
  return (data[CAP_TO_INDEX (CAP_IPC_LOCK)].effective
          & CAP_TO_MASK (CAP_IPC_LOCK)) != 0;
}

/* can_lock_unbounded - can this process lock as much memory as it will
 * ever use?  mlockall(MCL_FUTURE) under a finite RLIMIT_MEMLOCK makes
 * every mmap (thread stacks, pool memory) fail once the limit is reached,
 * which would break the server later instead of warning now. */
static bool
can_lock_unbounded (void)
{
  struct rlimit rl;

  if (getrlimit (RLIMIT_MEMLOCK, &rl) == 0 && rl.rlim_cur == RLIM_INFINITY)
    return true;
  return has_cap_ipc_lock ();
}

/* status_kib - the "@key:" figure of /proc/self/status in KiB, or -1. */
static long
status_kib (const char *key)
{
  FILE *fp = fopen ("/proc/self/status", "re");
  size_t klen = strlen (key);
  char line[256];
  long kib = -1;

  if (fp == NULL)
    return -1;
  while (fgets (line, sizeof line, fp) != NULL)
    if (strncmp (line, key, klen) == 0 && line[klen] == ':') {
      kib = strtol (line + klen + 1, NULL, 10);
      break;
    }
  fclose (fp);
  return kib;
}

/* prefault_code - fault in and lock what the process runs on now: every
 * file-backed mapping (the programs and libraries: no code path run for
 * the first time under memory pressure is then paged in from disk), the
 * heap and the main stack.  Large anonymous mappings are left to be
 * locked on fault: nbdkit's own executable reserves a 192 MiB .bss, and
 * sanitizers reserve terabytes of shadow memory, which MCL_CURRENT would
 * populate in full.  Failures only leave a range to be locked on fault.
 */
static void
prefault_code (void)
{
  FILE *fp = fopen ("/proc/self/maps", "re");
  char line[PATH_MAX + 128];

  if (fp == NULL)
    return;
  while (fgets (line, sizeof line, fp) != NULL) {
    unsigned long start, end;
    char perms[8], path[PATH_MAX] = "";

    if (sscanf (line, "%lx-%lx %7s %*s %*s %*s %4095s", &start, &end, perms,
                path) < 3 || perms[0] != 'r')
      continue;
    if (path[0] == '/' || strcmp (path, "[heap]") == 0
        || strcmp (path, "[stack]") == 0)
      mlock ((void *) start, end - start);
  }
  fclose (fp);
}

/* lock_memory - measure 1.
 *
 * First the code, libraries, heap and stack are faulted in and locked
 * (prefault_code).  Then MCL_CURRENT | MCL_FUTURE with MCL_ONFAULT: every
 * other mapping, current or future, is locked page by
 * page as they are first touched, not faulted in whole at mmap time.
 * Without MCL_ONFAULT every thread stack (8 MiB by default, one per FUSE
 * worker), every malloc arena reservation and every io_uring ring would
 * be populated and pinned in full at creation, costing tens of MiB of RAM
 * that is never used; with it we pin exactly what we use, which is
 * bounded by ram-limit plus the fixed overhead.  A page, once touched,
 * is never swapped out, which is what deadlock safety needs: a pool page
 * is locked when it is first written, before it holds anything.  Kernels before 4.4 lack MCL_ONFAULT (EINVAL): we
 * then lock future mappings in full. */
static struct gs_harden_result
lock_memory (bool *onfault)
{
  struct gs_harden_result res = { .ok = false, .err = 0 };

  *onfault = false;
  if (!can_lock_unbounded ()) {
    res.err = EPERM;
    return res;
  }
  prefault_code ();
  if (mlockall (MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) == 0)
    *onfault = true;
  else if (errno != EINVAL || mlockall (MCL_CURRENT | MCL_FUTURE) != 0) {
    res.err = errno;
    munlockall ();
    return res;
  }
  if (status_kib ("VmLck") == 0) {   /* the kernel locked nothing */
    res.err = EIO;
    munlockall ();
    return res;
  }
  res.ok = true;
  return res;
}

/* set_io_flusher - measure 2.
 *
 * PR_SET_IO_FLUSHER (Linux >= 5.6, CAP_SYS_RESOURCE) sets PF_MEMALLOC_NOIO
 * and PF_LOCAL_THROTTLE on the calling thread: its allocations do not
 * start I/O to reclaim memory (which could be swap I/O to ourselves), and
 * it is not throttled for other processes' dirty pages. */
static struct gs_harden_result
set_io_flusher (void)
{
  struct gs_harden_result res = { .ok = false, .err = 0 };
  int r;

  if (prctl (PR_SET_IO_FLUSHER, 1, 0, 0, 0) != 0) {
    res.err = errno;
    return res;
  }
  r = prctl (PR_GET_IO_FLUSHER, 0, 0, 0, 0);
  if (r < 0)
    res.err = errno;
  else if (r != 1)
    res.err = EIO;              /* accepted but not in effect */
  else
    res.ok = true;
  return res;
}

/* set_oom_score_adj - measure 3: -1000 exempts us from the OOM killer
 * (lowering it needs CAP_SYS_RESOURCE).  Written, then read back. */
static struct gs_harden_result
set_oom_score_adj (void)
{
  struct gs_harden_result res = { .ok = false, .err = 0 };
  char buf[32];
  ssize_t n;
  int fd;

  fd = open ("/proc/self/oom_score_adj", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    res.err = errno;
    return res;
  }
  n = snprintf (buf, sizeof buf, "%d\n", OOM_SCORE_ADJ_MIN);
  if (write (fd, buf, (size_t) n) != n) {
    res.err = errno != 0 ? errno : EIO;
    close (fd);
    return res;
  }
  n = pread (fd, buf, sizeof buf - 1, 0);
  if (n <= 0) {
    res.err = n < 0 ? errno : EIO;
    close (fd);
    return res;
  }
  buf[n] = '\0';
  close (fd);
  if (atoi (buf) != OOM_SCORE_ADJ_MIN)
    res.err = EIO;              /* written, but not in effect */
  else
    res.ok = true;
  return res;
}

/* gs_harden_process - see harden.h. */
int
gs_harden_process (struct gs_harden_report *rep)
{
  unsigned i;

  memset (rep, 0, sizeof *rep);
  rep->result[GS_HARDEN_MLOCK] = lock_memory (&rep->mlock_onfault);
  rep->result[GS_HARDEN_IO_FLUSHER] = set_io_flusher ();
  rep->result[GS_HARDEN_OOM_SCORE_ADJ] = set_oom_score_adj ();

  for (i = 0; i < GS_HARDEN_MEASURES; i++)
    if (!rep->result[i].ok)
      return -rep->result[i].err;
  return 0;
}

/* gs_harden_measure_name - see harden.h. */
const char *
gs_harden_measure_name (enum gs_harden_measure m)
{
  switch (m) {
  case GS_HARDEN_MLOCK: return "mlockall";
  case GS_HARDEN_IO_FLUSHER: return "PR_SET_IO_FLUSHER";
  case GS_HARDEN_OOM_SCORE_ADJ: return "oom_score_adj=-1000";
  case GS_HARDEN_MEASURES: break;
  }
  return "?";
}

/* gs_harden_measure_risk - see harden.h. */
const char *
gs_harden_measure_risk (enum gs_harden_measure m)
{
  switch (m) {
  case GS_HARDEN_MLOCK:
    return "the server's own memory, swapped pages included, can be swapped "
      "out, possibly to itself: deadlock under memory pressure (needs "
      "CAP_IPC_LOCK or an unlimited RLIMIT_MEMLOCK)";
  case GS_HARDEN_IO_FLUSHER:
    return "its allocations may wait for swap I/O that only it can serve: "
      "deadlock under memory pressure (needs CAP_SYS_RESOURCE, Linux >= 5.6)";
  case GS_HARDEN_OOM_SCORE_ADJ:
    return "the OOM killer may kill it, and every page swapped to it is "
      "lost with it (needs CAP_SYS_RESOURCE)";
  case GS_HARDEN_MEASURES: break;
  }
  return "?";
}
