/* ghostswap: a device's memory account: the bytes the engine holds in
 * memory it mapped or allocated for itself (pool segments, metadata,
 * per-thread codec contexts), and the highest that figure has been since
 * it was last reset (zram's mem_used_max).
 *
 * Every allocation that can grow with the data or with the number of
 * threads is added here when it is made and subtracted when it is given
 * back, so that the account can be compared with the process's RSS.
 */
#ifndef GHOSTSWAP_MEMACCT_H
#define GHOSTSWAP_MEMACCT_H

#include <stdint.h>

struct gs_memacct {
  uint64_t bytes;             /* atomic: held now */
  uint64_t peak;              /* atomic: most held since the last reset */
};

/* gs_mem_add - add @delta bytes (negative: given back) to @m, which may
 * be NULL (nothing is accounted).
 * Context: any (lock-free).  Return: nothing.
 */
static inline void
gs_mem_add (struct gs_memacct *m, int64_t delta)
{
  uint64_t now, peak;

  if (!m)
    return;
  now = __atomic_add_fetch (&m->bytes, (uint64_t) delta, __ATOMIC_RELAXED);
  if (delta <= 0)
    return;
  peak = __atomic_load_n (&m->peak, __ATOMIC_RELAXED);
  while (now > peak
         && !__atomic_compare_exchange_n (&m->peak, &peak, now, true,
                                          __ATOMIC_RELAXED, __ATOMIC_RELAXED))
    ;
}

/* gs_mem_reset_peak - make the peak the current figure.
 * Context: any.  Return: nothing.
 */
static inline void
gs_mem_reset_peak (struct gs_memacct *m)
{
  __atomic_store_n (&m->peak, __atomic_load_n (&m->bytes, __ATOMIC_RELAXED),
                    __ATOMIC_RELAXED);
}

#endif /* GHOSTSWAP_MEMACCT_H */
