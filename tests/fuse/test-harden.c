/* Test gs_harden_process on this very process, one measure per run:
 *
 *   test-harden mlock | io-flusher | oom-score-adj
 *
 * With the privilege a measure needs, its effect is checked from outside
 * the report: VmLck and the smaps of a fresh mapping (locked on fault,
 * not populated); PR_GET_IO_FLUSHER and the task flags it stands for,
 * also in a thread created afterwards; /proc/self/oom_score_adj.  Without
 * it, the test checks that the failure is reported (never silently
 * skipped) and exits 77 saying what it could not check.  Not root: 77.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
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

#ifndef PR_GET_IO_FLUSHER
#define PR_GET_IO_FLUSHER 58
#endif

/* include/linux/sched.h: the task flags PR_SET_IO_FLUSHER sets (and
 * PR_GET_IO_FLUSHER tests), PF_MEMALLOC_NOIO | PF_LOCAL_THROTTLE, shown
 * in field 9 of /proc/PID/task/TID/stat. */
#define PR_IO_FLUSHER_FLAGS (0x00080000u | 0x00100000u)

#define SKIP 77

/* Built with a sanitizer (gcc defines these; clang has __has_feature). */
#if defined (__SANITIZE_ADDRESS__) || defined (__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined (__has_feature)
#if __has_feature (address_sanitizer) || __has_feature (thread_sanitizer) \
  || __has_feature (memory_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

static int failures;

#define CHECK(cond, ...)                                        \
  do {                                                          \
    if (!(cond)) {                                              \
      fprintf (stderr, "FAIL: %s:%d: ", __FILE__, __LINE__);    \
      fprintf (stderr, __VA_ARGS__);                            \
      fputc ('\n', stderr);                                     \
      failures++;                                               \
    }                                                           \
  } while (0)

static bool
has_cap (int cap)
{
  struct __user_cap_header_struct hdr = {
    .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0,
  };
  struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

  memset (data, 0, sizeof data);
  if (syscall (SYS_capget, &hdr, data) != 0)
    return false;
  return (data[CAP_TO_INDEX (cap)].effective & CAP_TO_MASK (cap)) != 0;
}

static bool
memlock_unlimited (void)
{
  struct rlimit rl;

  return getrlimit (RLIMIT_MEMLOCK, &rl) == 0 && rl.rlim_cur == RLIM_INFINITY;
}

/* status_kib - the "@key: N kB" line of /proc/self/status, or -1. */
static long
status_kib (const char *key)
{
  FILE *fp = fopen ("/proc/self/status", "r");
  char line[256];
  size_t klen = strlen (key);
  long v = -1;

  if (fp == NULL)
    return -1;
  while (fgets (line, sizeof line, fp) != NULL)
    if (strncmp (line, key, klen) == 0 && line[klen] == ':') {
      v = strtol (line + klen + 1, NULL, 10);
      break;
    }
  fclose (fp);
  return v;
}

/* smaps_field - for the mapping that starts at @addr, the value of
 * "@key:" in kB, or for key "VmFlags" whether flag @flag is set (1/0);
 * -1 if not found. */
static long
smaps_field (void *addr, const char *key, const char *flag)
{
  FILE *fp = fopen ("/proc/self/smaps", "r");
  char line[512];
  size_t klen = strlen (key);
  bool in = false;
  long v = -1;

  if (fp == NULL)
    return -1;
  while (fgets (line, sizeof line, fp) != NULL) {
    unsigned long lo, hi;

    if (sscanf (line, "%lx-%lx ", &lo, &hi) == 2) {   /* a mapping's header */
      in = lo == (uintptr_t) addr;
      continue;
    }
    if (!in || strncmp (line, key, klen) != 0 || line[klen] != ':')
      continue;
    if (flag != NULL) {
      const char *q = line + klen + 1;
      size_t flen = strlen (flag);

      v = 0;
      while ((q = strstr (q, flag)) != NULL) {
        if (q[-1] == ' ' && (q[flen] == ' ' || q[flen] == '\n')) {
          v = 1;
          break;
        }
        q += flen;
      }
    }
    else
      v = strtol (line + klen + 1, NULL, 10);
    break;
  }
  fclose (fp);
  return v;
}

/* task_flags - this thread's flags from /proc/thread-self/stat. */
static unsigned long
task_flags (void)
{
  FILE *fp = fopen ("/proc/thread-self/stat", "r");
  char buf[1024], *p;
  unsigned long flags = 0;
  size_t n;

  if (fp == NULL)
    return 0;
  n = fread (buf, 1, sizeof buf - 1, fp);
  fclose (fp);
  buf[n] = '\0';
  p = strrchr (buf, ')');       /* the name may hold spaces */
  if (p == NULL
      || sscanf (p + 1, " %*c %*d %*d %*d %*d %*d %lu", &flags) != 1)
    return 0;
  return flags;
}

static void *
io_flusher_thread (void *arg)
{
  int *get = arg;

  get[0] = prctl (PR_GET_IO_FLUSHER, 0, 0, 0, 0);
  get[1] = (task_flags () & PR_IO_FLUSHER_FLAGS) == PR_IO_FLUSHER_FLAGS;
  return NULL;
}

/* unprivileged - the measure failed for want of @cap: check that the
 * report says so, then skip. */
static int
unprivileged (const struct gs_harden_result *r, const char *what,
              const char *cap)
{
  CHECK (!r->ok, "%s: reported as applied without %s", what, cap);
  CHECK (r->err == EPERM || r->err == EACCES,
         "%s: failure reported with errno %d, expected EPERM or EACCES",
         what, r->err);
  if (failures)
    return EXIT_FAILURE;
  printf ("SKIP: no %s here: checked that the failure of %s is reported "
          "(%s), but cannot check its effect\n", cap, what, strerror (r->err));
  return SKIP;
}

static int
test_mlock (const struct gs_harden_report *rep)
{
  const struct gs_harden_result *r = &rep->result[GS_HARDEN_MLOCK];
  const size_t len = 16u << 20;
  const size_t page = (size_t) sysconf (_SC_PAGESIZE);
  char *base, *p;

  if (!has_cap (CAP_IPC_LOCK) && !memlock_unlimited ())
    return unprivileged (r, "mlockall",
                         "CAP_IPC_LOCK (nor an unlimited RLIMIT_MEMLOCK)");
  if (SANITIZED) {
    /* The sanitizers intercept mlockall and do nothing: the check of
     * VmLck must catch it. */
    CHECK (!r->ok && r->err == EIO,
           "under a sanitizer mlockall cannot lock, yet the report says "
           "%s (errno %d)", r->ok ? "ok" : "failed", r->err);
    if (failures)
      return EXIT_FAILURE;
    printf ("SKIP: built with a sanitizer, whose mlockall is a no-op: "
            "checked that this is reported (EIO), cannot check locking\n");
    return SKIP;
  }
  CHECK (r->ok, "mlockall failed: %s", strerror (r->err));
  CHECK (status_kib ("VmLck") > 0, "VmLck is %ld kB", status_kib ("VmLck"));

  /* MCL_FUTURE: a new mapping is locked; with MCL_ONFAULT, only the
   * pages touched are resident.  PROT_NONE guard pages on both sides
   * keep the kernel from merging it with a neighbour. */
  base = mmap (NULL, len + 2 * page, PROT_NONE,
               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK (base != MAP_FAILED, "mmap: %s", strerror (errno));
  if (base == MAP_FAILED)
    return EXIT_FAILURE;
  p = base + page;
  CHECK (mprotect (p, len, PROT_READ | PROT_WRITE) == 0, "mprotect: %s",
         strerror (errno));
  p[0] = 1;
  CHECK (smaps_field (p, "VmFlags", "lo") == 1,
         "a new mapping is not locked (MCL_FUTURE)");
  CHECK (smaps_field (p, "Locked", NULL) >= 4,
         "the touched page is not locked (Locked: %ld kB)",
         smaps_field (p, "Locked", NULL));
  if (rep->mlock_onfault) {
    CHECK (smaps_field (p, "Rss", NULL) < 1024,
           "MCL_ONFAULT: a 16 MiB mapping was populated (Rss %ld kB)",
           smaps_field (p, "Rss", NULL));
    CHECK (smaps_field (p, "VmFlags", "lf") == 1,
           "MCL_ONFAULT reported but the mapping lacks the lf flag");
  }
  else
    printf ("note: this kernel has no MCL_ONFAULT\n");
  munmap (base, len + 2 * page);
  printf ("mlockall: VmLck %ld kB%s\n", status_kib ("VmLck"),
          rep->mlock_onfault ? ", future pages locked on fault" : "");
  return failures ? EXIT_FAILURE : EXIT_SUCCESS;
}

static int
test_io_flusher (const struct gs_harden_report *rep)
{
  const struct gs_harden_result *r = &rep->result[GS_HARDEN_IO_FLUSHER];
  int get[2] = { -1, -1 };
  pthread_t t;

  if (!has_cap (CAP_SYS_RESOURCE))
    return unprivileged (r, "PR_SET_IO_FLUSHER", "CAP_SYS_RESOURCE");
  CHECK (r->ok, "PR_SET_IO_FLUSHER failed: %s", strerror (r->err));
  CHECK (prctl (PR_GET_IO_FLUSHER, 0, 0, 0, 0) == 1,
         "PR_GET_IO_FLUSHER is not 1");
  CHECK ((task_flags () & PR_IO_FLUSHER_FLAGS) == PR_IO_FLUSHER_FLAGS,
         "PF_MEMALLOC_NOIO | PF_LOCAL_THROTTLE not in this thread's flags");
  /* Threads created afterwards (the FUSE workers) inherit it. */
  CHECK (pthread_create (&t, NULL, io_flusher_thread, get) == 0,
         "pthread_create");
  pthread_join (t, NULL);
  CHECK (get[0] == 1, "a new thread's PR_GET_IO_FLUSHER is %d", get[0]);
  CHECK (get[1] == 1,
         "a new thread lacks PF_MEMALLOC_NOIO | PF_LOCAL_THROTTLE");
  return failures ? EXIT_FAILURE : EXIT_SUCCESS;
}

static int
test_oom_score_adj (const struct gs_harden_report *rep)
{
  const struct gs_harden_result *r = &rep->result[GS_HARDEN_OOM_SCORE_ADJ];
  FILE *fp;
  int v = 0;

  if (!has_cap (CAP_SYS_RESOURCE))
    return unprivileged (r, "oom_score_adj=-1000", "CAP_SYS_RESOURCE");
  CHECK (r->ok, "oom_score_adj failed: %s", strerror (r->err));
  fp = fopen ("/proc/self/oom_score_adj", "r");
  CHECK (fp != NULL && fscanf (fp, "%d", &v) == 1,
         "cannot read /proc/self/oom_score_adj");
  if (fp)
    fclose (fp);
  CHECK (v == -1000, "oom_score_adj is %d", v);
  return failures ? EXIT_FAILURE : EXIT_SUCCESS;
}

int
main (int argc, char **argv)
{
  struct gs_harden_report rep;
  int r;

  if (argc != 2) {
    fprintf (stderr, "usage: test-harden mlock|io-flusher|oom-score-adj\n");
    return EXIT_FAILURE;
  }
  if (geteuid () != 0) {
    printf ("SKIP: not root: the measures need privileges\n");
    return SKIP;
  }

  r = gs_harden_process (&rep);
  printf ("gs_harden_process: %d (mlockall %s, PR_SET_IO_FLUSHER %s, "
          "oom_score_adj %s)\n", r,
          rep.result[GS_HARDEN_MLOCK].ok ? "ok" : "failed",
          rep.result[GS_HARDEN_IO_FLUSHER].ok ? "ok" : "failed",
          rep.result[GS_HARDEN_OOM_SCORE_ADJ].ok ? "ok" : "failed");
  CHECK ((r == 0) == (rep.result[0].ok && rep.result[1].ok
                      && rep.result[2].ok),
         "return value %d does not match the report", r);

  if (strcmp (argv[1], "mlock") == 0)
    return test_mlock (&rep);
  if (strcmp (argv[1], "io-flusher") == 0)
    return test_io_flusher (&rep);
  if (strcmp (argv[1], "oom-score-adj") == 0)
    return test_oom_score_adj (&rep);
  fprintf (stderr, "test-harden: unknown measure '%s'\n", argv[1]);
  return EXIT_FAILURE;
}
