/* ghostswap: recompression: cold RAM pages encoded anew at a higher zstd
 * level (recompress-level=), in the background, at bounded CPU.
 *
 * Cold.  The pool keeps a generation number; each pass advances it, and
 * each segment records the generation of its last append (pool.h).  A
 * pass takes only segments whose last append is two generations old: no
 * page in them was written during the whole period before the previous
 * pass, at least RECOMPRESS_PERIOD_MS.  Open segments that old are sealed
 * first, so the last pages written before a pause are reached too.  A
 * page rewritten since has left its object dead, and dead objects are
 * skipped.
 *
 * The work.  A pass claims such a segment (gs_pool_take_cold), so, as for
 * every mover, the entries that point into it cannot repeat while it is
 * walked.  For each live object: under the owner's cluster lock, copy the
 * frame (or raw page) out; without any lock, decompress it and compress
 * the page at recompress-level with this thread's context; then, under
 * the lock again and only if the entry is still exactly the one copied
 * (gs_slot_lock_expect: not rewritten, trimmed, zeroed, written back or
 * moved meanwhile), store the new frame through the recompression stream
 * and let the slot module switch the entry and free the old object
 * (__gs_slot_recompressed).  A page that does not come out smaller moves
 * as it is: either way it leaves the walked segment, which ends up empty
 * and is freed (no compaction needed), and its new object is marked final
 * so that no pass tries it again.  A walked segment is marked cold.
 * Frames of any level decode with the same decompressor: reads do not
 * change.
 *
 * The bound.  The thread runs under SCHED_IDLE (it only gets a CPU no
 * foreground thread wants) and, whatever the load, sleeps after each slice
 * of RECOMPRESS_SLICE_NS of its own CPU time long enough to keep to
 * recompress-cpu percent of one core.  No lock is held while it
 * compresses or sleeps.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "recompress.h"
#include "slot.h"

#define RECOMPRESS_PERIOD_MS 5000
#define RECOMPRESS_SLICE_NS 20000000ull      /* 20 ms of CPU, then a sleep */

struct gs_recompress {
  struct gs_codec codec;      /* at recompress-level */
  pthread_mutex_t lock;       /* one pass at a time; protects page, frame */
  unsigned char page[GS_SLOT_SIZE];
  unsigned char frame[GS_SLOT_SIZE];

  /* The thread: tlock protects running; stop is atomic, and cond wakes
   * the thread's waits (period, throttle) when it is set. */
  pthread_mutex_t tlock;
  pthread_cond_t cond;
  bool running, stop;
  pthread_t thread;
};

/* One pass (on the stack of whoever runs it). */
struct pass {
  struct gs_device *dev;
  struct gs_recompress *rc;
  bool bounded;               /* keep to recompress-cpu */
  uint64_t slice_cpu;         /* this thread's CPU time at the slice start */
  int err;                    /* stop: -ENOSPC, -ENOMEM, -EINTR (stopped) */
  int64_t smaller;
};

static uint64_t
thread_cpu_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_THREAD_CPUTIME_ID, &ts);
  return (uint64_t) ts.tv_sec * 1000000000ull + (uint64_t) ts.tv_nsec;
}

static bool
stopping (struct gs_recompress *rc)
{
  return __atomic_load_n (&rc->stop, __ATOMIC_ACQUIRE);
}

/* Wait @ns (or until stopped).  Context: tlock held. */
static void
wait_ns (struct gs_recompress *rc, uint64_t ns)
{
  struct timespec ts;

  clock_gettime (CLOCK_REALTIME, &ts);
  ns += (uint64_t) ts.tv_nsec;
  ts.tv_sec += (time_t) (ns / 1000000000ull);
  ts.tv_nsec = (long) (ns % 1000000000ull);
  if (!stopping (rc))
    pthread_cond_timedwait (&rc->cond, &rc->tlock, &ts);
}

/* Count this thread's CPU time since the slice started, and start
 * another.  Return: that time. */
static uint64_t
account (struct pass *p)
{
  uint64_t now = thread_cpu_ns (), used = now - p->slice_cpu;

  gs_ctr_add (&p->dev->ctr.recompress_cpu_ns, (int64_t) used);
  p->slice_cpu = now;
  return used;
}

/* The CPU bound: after each slice, sleep (100 - p) / p times as long as
 * the slice took.  Unbounded passes only count their time. */
static void
throttle (struct pass *p)
{
  unsigned pct = p->dev->cfg.recompress_cpu;
  uint64_t used;

  if (thread_cpu_ns () - p->slice_cpu < RECOMPRESS_SLICE_NS)
    return;
  used = account (p);
  if (p->bounded && pct < 100) {
    pthread_mutex_lock (&p->rc->tlock);
    wait_ns (p->rc, used * (100 - pct) / pct);
    pthread_mutex_unlock (&p->rc->tlock);
    p->slice_cpu = thread_cpu_ns ();   /* the sleep is not ours to count */
  }
}

/* Recompress one object of the claimed segment. */
static void
visit (void *opaque, uint64_t owner, gs_entry entry)
{
  struct pass *p = opaque;
  struct gs_device *dev = p->dev;
  struct gs_recompress *rc = p->rc;
  struct gs_slot s;
  const void *obj, *out, *data;
  gs_entry e, fresh;
  size_t cap, len, newlen;
  bool raw, newraw;
  int n, r;

  if (p->err)
    return;
  if (stopping (rc)) {
    p->err = -EINTR;
    return;
  }
  if (gs_slot_lock_expect (dev, owner, entry, &s) < 0)
    return;                     /* dead object */
  e = __gs_slot_entry (&s);
  if (entry_is_writeback (e) || gs_pool_object_final (e)) {
    gs_slot_unlock (&s);
    return;
  }
  obj = gs_pool_object (e, &cap, &raw);
  len = raw ? GS_SLOT_SIZE : gs_frame_size (obj, cap);
  if (len == 0) {
    gs_slot_unlock (&s);        /* corrupt frame: leave it where it is */
    return;
  }
  memcpy (raw ? rc->page : rc->frame, obj, len);
  gs_slot_unlock (&s);

  /* The slow part, with no lock held. */
  if (!raw && gs_decompress (&dev->codec, rc->page, rc->frame, len) < 0)
    return;                     /* cannot happen for a live frame */
  n = gs_compress (&rc->codec, rc->page, &out);
  throttle (p);
  if (n < 0) {
    p->err = n;
    return;
  }
  if (n > 0 && (size_t) n < len) {
    data = out;
    newlen = (size_t) n;
    newraw = false;
  }
  else {
    data = raw ? rc->page : rc->frame;
    newlen = len;
    newraw = raw;
  }

  /* Still the page that was encoded? */
  if (gs_slot_lock_expect (dev, owner, e, &s) < 0)
    return;
  r = gs_pool_alloc_final (dev->pool, owner, newraw, data, newlen, &fresh);
  if (r < 0) {
    gs_slot_unlock (&s);
    p->err = r;                 /* the pool is full: stop here */
    return;
  }
  __gs_slot_recompressed (dev, &s, fresh);
  gs_slot_unlock (&s);
  if (newlen < len) {
    p->smaller++;
    gs_ctr_add (&dev->ctr.recompress_pages, 1);
    gs_ctr_add (&dev->ctr.recompress_saved_bytes, (int64_t) (len - newlen));
  }
  else
    gs_ctr_add (&dev->ctr.recompress_kept, 1);
}

/* Recompress every live object in segments last appended to in
 * generation @max_gen or before. */
static int64_t
run_pass (struct gs_device *dev, uint32_t max_gen, bool bounded)
{
  struct gs_recompress *rc = dev->rc;
  struct pass p = { .dev = dev, .rc = rc, .bounded = bounded };
  struct gs_segment *seg;

  pthread_mutex_lock (&rc->lock);
  p.slice_cpu = thread_cpu_ns ();
  gs_pool_seal_idle (dev->pool, max_gen);
  while (p.err == 0 && gs_pool_take_cold (dev->pool, max_gen, &seg, 1) == 1) {
    gs_pool_walk (dev->pool, seg, visit, &p);
    if (p.err == 0)
      gs_pool_mark_cold (seg);
    gs_pool_give_back (dev->pool, seg);
  }
  account (&p);
  /* Between passes the contexts would be held for nothing: 270 KiB at
   * level 19, most of one copy of the corpus's gain. */
  gs_codec_release_thread (&rc->codec);
  pthread_mutex_unlock (&rc->lock);
  if (p.err == -ENOMEM)
    return p.err;
  return p.smaller;
}

static void *
recompress_thread (void *arg)
{
  struct gs_device *dev = arg;
  struct gs_recompress *rc = dev->rc;
  struct sched_param sp = { .sched_priority = 0 };

  pthread_setname_np (pthread_self (), "gs-recompress");
  /* Only idle CPU: failure (a seccomp filter, say) leaves the duty cycle
   * as the bound. */
  pthread_setschedparam (pthread_self (), SCHED_IDLE, &sp);
  pthread_mutex_lock (&rc->tlock);
  while (!stopping (rc)) {
    uint32_t gen;

    wait_ns (rc, RECOMPRESS_PERIOD_MS * 1000000ull);
    if (stopping (rc))
      break;
    pthread_mutex_unlock (&rc->tlock);
    gen = gs_pool_next_generation (dev->pool);
    if (gen >= 2) {
      run_pass (dev, gen - 2, true);
      gs_codec_release_thread (&dev->codec);  /* this thread's own */
    }
    pthread_mutex_lock (&rc->tlock);
  }
  pthread_mutex_unlock (&rc->tlock);
  return NULL;
}

/* gs_recompress_init - see recompress.h. */
int
gs_recompress_init (struct gs_device *dev)
{
  struct gs_recompress *rc;
  int r;

  if (dev->cfg.recompress_level == 0)
    return 0;
  rc = calloc (1, sizeof *rc);
  if (!rc)
    return -ENOMEM;
  r = gs_codec_init (&rc->codec, dev->cfg.recompress_level);
  if (r < 0) {
    free (rc);
    return r;
  }
  gs_codec_set_account (&rc->codec, &dev->table.mem);
  pthread_mutex_init (&rc->lock, NULL);
  pthread_mutex_init (&rc->tlock, NULL);
  pthread_cond_init (&rc->cond, NULL);
  dev->rc = rc;
  return 0;
}

/* gs_recompress_start - see recompress.h. */
int
gs_recompress_start (struct gs_device *dev)
{
  struct gs_recompress *rc = dev->rc;
  int r = 0;

  if (!rc)
    return 0;
  pthread_mutex_lock (&rc->tlock);
  if (!rc->running) {
    __atomic_store_n (&rc->stop, false, __ATOMIC_RELEASE);
    r = pthread_create (&rc->thread, NULL, recompress_thread, dev);
    rc->running = r == 0;
  }
  pthread_mutex_unlock (&rc->tlock);
  return -r;
}

/* gs_recompress_stop - see recompress.h. */
void
gs_recompress_stop (struct gs_device *dev)
{
  struct gs_recompress *rc = dev->rc;

  if (!rc)
    return;
  pthread_mutex_lock (&rc->tlock);
  if (!rc->running) {
    pthread_mutex_unlock (&rc->tlock);
    return;
  }
  __atomic_store_n (&rc->stop, true, __ATOMIC_RELEASE);
  pthread_cond_broadcast (&rc->cond);
  pthread_mutex_unlock (&rc->tlock);
  pthread_join (rc->thread, NULL);
  rc->running = false;
}

/* gs_recompress_free - see recompress.h. */
void
gs_recompress_free (struct gs_device *dev)
{
  struct gs_recompress *rc = dev->rc;

  if (!rc)
    return;
  gs_codec_destroy (&rc->codec);
  pthread_cond_destroy (&rc->cond);
  pthread_mutex_destroy (&rc->tlock);
  pthread_mutex_destroy (&rc->lock);
  free (rc);
  dev->rc = NULL;
}

/* gs_recompress_codec_bytes - see recompress.h. */
uint64_t
gs_recompress_codec_bytes (struct gs_device *dev)
{
  return dev->rc ? gs_codec_bytes (&dev->rc->codec) : 0;
}

/* gs_recompress_fixed_bytes - see recompress.h. */
uint64_t
gs_recompress_fixed_bytes (struct gs_device *dev)
{
  return dev->rc ? sizeof *dev->rc : 0;
}

/* gs_recompress - see device.h. */
int64_t
gs_recompress (struct gs_device *dev)
{
  if (!dev->rc)
    return -EINVAL;
  /* Segments last appended to before this call (not those writers fill
   * meanwhile, or a pass under constant writes would never end). */
  return run_pass (dev, gs_pool_next_generation (dev->pool) - 1, false);
}
