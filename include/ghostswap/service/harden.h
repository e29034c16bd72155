/* ghostswap: process hardening for a server that the kernel swaps to.
 *
 * A swap server runs when the machine is short of memory, and the kernel
 * waits on it to free memory.  It must not need the very thing it is asked
 * to provide: its own pages must never be swapped out (to itself), its
 * allocations must not recurse into I/O reclaim, and the OOM killer must
 * not pick it.  gs_harden_process applies each measure and reports each
 * result, so that a front end can warn loudly about every one that failed
 * (usually for want of privilege) instead of skipping it silently.
 * docs/architecture.md explains the measures and what can still go wrong.
 */
#ifndef GHOSTSWAP_HARDEN_H
#define GHOSTSWAP_HARDEN_H

#include <stdbool.h>
#include <stddef.h>

/* The measures, in the order gs_harden_process applies them. */
enum gs_harden_measure {
  GS_HARDEN_MLOCK,              /* mlockall: none of our pages is swapped */
  GS_HARDEN_IO_FLUSHER,         /* PR_SET_IO_FLUSHER: no reclaim recursion */
  GS_HARDEN_OOM_SCORE_ADJ,      /* oom_score_adj -1000: never OOM-killed */
  GS_HARDEN_MEASURES
};

struct gs_harden_result {
  bool ok;                      /* applied and verified */
  int err;                      /* errno when !ok: EPERM/EACCES no privilege,
                                 * EIO accepted but not in effect (as
                                 * mlockall under a sanitizer) */
};

struct gs_harden_report {
  struct gs_harden_result result[GS_HARDEN_MEASURES];
  bool mlock_onfault;           /* future pages locked on fault (MCL_ONFAULT) */
};

/* gs_harden_process - harden the calling process for serving swap, in this
 * order: fault in and lock the code, libraries, heap and stack, then lock
 * every other current and future page as it is first touched (mlockall
 * MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT: large untouched reservations are
 * not populated); mark it an I/O flusher (PR_SET_IO_FLUSHER, checked with
 * PR_GET_IO_FLUSHER); set /proc/self/oom_score_adj to -1000 (read back).
 * Every measure is tried even if an earlier one failed; each result goes
 * into @rep.  Memory is not locked at all unless it can be locked without
 * bound (RLIMIT_MEMLOCK unlimited or CAP_IPC_LOCK): a capped MCL_FUTURE
 * would make later allocations fail.
 *
 * Context: call early, before any thread is created: the I/O flusher flag
 * belongs to the calling thread and is inherited only by threads (and
 * children) created after it.  Memory locks are not inherited across
 * fork, so call it after daemonizing.
 * Return: 0 if every measure was applied, else the -errno of the first
 * that failed (details in @rep).
 */
int gs_harden_process (struct gs_harden_report *rep);

/* gs_harden_measure_name - a short name of measure @m for messages
 * ("mlockall", "PR_SET_IO_FLUSHER", "oom_score_adj=-1000").
 * Context: any.  Return: a static string.
 */
const char *gs_harden_measure_name (enum gs_harden_measure m);

/* gs_harden_measure_risk - what can go wrong while measure @m is missing,
 * one phrase for a warning line.
 * Context: any.  Return: a static string.
 */
const char *gs_harden_measure_risk (enum gs_harden_measure m);

#endif /* GHOSTSWAP_HARDEN_H */
