/* ghostswap: policy: the background thread (writeback above the high
 * watermark, wiping freed backing slots, compaction past
 * compact-threshold) and a writer's own
 * reclaim when the pool is full.  The watermarks themselves are in
 * core.h, where the movers read them too. */
#include <errno.h>
#include <time.h>
#include <unistd.h>

#include "background.h"
#include "backing_list.h"
#include "compact.h"
#include "recompress.h"
#include "writeback.h"

/* A pass starts when garbage in sealed segments is both this share of the
 * pool (compact-threshold) and at least this many bytes. */
#define COMPACT_MIN_GARBAGE (256u * 1024)
#define BACKGROUND_PERIOD_MS 500

/* A writer short of RAM writes back this many pages at a time, and sleeps
 * at most this long between tries while others reclaim. */
#define RECLAIM_PAGES 64
#define RECLAIM_MAX_SLEEP_US 100000u

/* Compact when the garbage in the pool passes the configured threshold. */
static void
compact_if_fragmented (struct gs_device *dev)
{
  struct gs_pool_stats ps;
  unsigned threshold = dev->cfg.compact_threshold;

  gs_pool_get_stats (dev->pool, &ps);
  if (ps.garbage_bytes < COMPACT_MIN_GARBAGE
      || ps.garbage_bytes * 100 < ps.segment_bytes * threshold)
    return;
  /* Empty the segments that are mostly garbage: below (100 - threshold)
   * percent live. */
  gs_compact_segments (dev, 100 - threshold);
}

static void *
background (void *arg)
{
  struct gs_device *dev = arg;
  struct timespec ts;

  pthread_setname_np (pthread_self (), "gs-background");
  pthread_mutex_lock (&dev->bg_lock);
  while (!dev->bg_stop) {
    clock_gettime (CLOCK_REALTIME, &ts);
    ts.tv_nsec += BACKGROUND_PERIOD_MS * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait (&dev->bg_cond, &dev->bg_lock, &ts);
    if (dev->bg_stop)
      break;
    __atomic_store_n (&dev->bg_kicked, false, __ATOMIC_RELEASE);
    pthread_mutex_unlock (&dev->bg_lock);
    if (gs_pool_above_high (dev) && gs_backing_any_room (dev))
      gs_writeback_run (dev, 0, false);
    gs_backings_scrub (dev);
    compact_if_fragmented (dev);
    pthread_mutex_lock (&dev->bg_lock);
  }
  pthread_mutex_unlock (&dev->bg_lock);
  return NULL;
}

/* gs_background_kick - see background.h. */
void
gs_background_kick (struct gs_device *dev)
{
  if (__atomic_exchange_n (&dev->bg_kicked, true, __ATOMIC_ACQ_REL))
    return;
  pthread_mutex_lock (&dev->bg_lock);
  pthread_cond_signal (&dev->bg_cond);
  pthread_mutex_unlock (&dev->bg_lock);
}

/* gs_reclaim_for_write - see background.h. */
bool
gs_reclaim_for_write (struct gs_device *dev, unsigned tries)
{
  bool room = gs_backing_any_room (dev);
  bool last = tries + 1 >= GS_RECLAIM_TRIES;

  if (room && gs_writeback_run (dev, RECLAIM_PAGES, true) > 0)
    return !last;
  if (gs_compact (dev) > 0)
    return !last;
  if (!room) {
    /* A backing that cannot be reached for now (a remote reconnecting)
     * may take pages again soon: wait for it, up to remote-timeout. */
    if (!gs_backing_any_offline (dev)
        || (uint64_t) tries * RECLAIM_MAX_SLEEP_US
           >= (uint64_t) dev->cfg.remote_timeout * 1000000u)
      return false;
    usleep (RECLAIM_MAX_SLEEP_US);
    return true;
  }
  if (last)
    return false;
  gs_background_kick (dev);
  usleep (tries < 7 ? 1000u << tries : RECLAIM_MAX_SLEEP_US);
  return true;
}

/* gs_after_write - see background.h. */
void
gs_after_write (struct gs_device *dev)
{
  if (__atomic_load_n (&dev->backing_count, __ATOMIC_RELAXED) > 0
      && gs_pool_above_high (dev))
    gs_background_kick (dev);
}

/* gs_device_start - see device.h. */
int
gs_device_start (struct gs_device *dev)
{
  int r;

  pthread_mutex_lock (&dev->bg_lock);
  if (dev->bg_running) {
    pthread_mutex_unlock (&dev->bg_lock);
    return 0;
  }
  dev->bg_stop = false;
  r = pthread_create (&dev->bg_thread, NULL, background, dev);
  if (r == 0)
    dev->bg_running = true;
  pthread_mutex_unlock (&dev->bg_lock);
  if (r == 0)
    return gs_recompress_start (dev);
  return -r;
}

/* gs_background_stop - see background.h. */
void
gs_background_stop (struct gs_device *dev)
{
  pthread_mutex_lock (&dev->bg_lock);
  if (!dev->bg_running) {
    pthread_mutex_unlock (&dev->bg_lock);
    return;
  }
  dev->bg_stop = true;
  pthread_cond_signal (&dev->bg_cond);
  pthread_mutex_unlock (&dev->bg_lock);
  pthread_join (dev->bg_thread, NULL);
  dev->bg_running = false;
}
