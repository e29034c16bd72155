/* ghostswap: the background thread: pool compaction. */
#include <errno.h>
#include <time.h>

#include "device_impl.h"

/* A pass starts when garbage in sealed segments is both this share of the
 * pool (compact-threshold) and at least this many bytes. */
#define COMPACT_MIN_GARBAGE (256u * 1024)
#define BACKGROUND_PERIOD_MS 500

/* gs_compact_if_fragmented - see device_impl.h. */
uint64_t
gs_compact_if_fragmented (struct gs_device *dev)
{
  struct gs_pool_stats ps;
  unsigned threshold = dev->cfg.compact_threshold;
  uint64_t moved;

  gs_pool_get_stats (dev->pool, &ps);
  if (ps.garbage_bytes < COMPACT_MIN_GARBAGE
      || ps.garbage_bytes * 100 < ps.segment_bytes * threshold)
    return 0;
  /* Empty the segments that are mostly garbage: below (100 - threshold)
   * percent live. */
  moved = gs_compact_segments (dev, 100 - threshold);
  return moved;
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
    dev->bg_kicked = false;
    pthread_mutex_unlock (&dev->bg_lock);
    if (gs_over_high_watermark (dev) && gs_backing_any_room (dev))
      gs_writeback_run (dev, 0, false);
    gs_compact_if_fragmented (dev);
    pthread_mutex_lock (&dev->bg_lock);
  }
  pthread_mutex_unlock (&dev->bg_lock);
  return NULL;
}

/* gs_over_high_watermark - see device_impl.h. */
bool
gs_over_high_watermark (struct gs_device *dev)
{
  return gs_pool_bytes (dev->pool)
    > gs_pool_limit (dev->pool) / 100 * dev->cfg.writeback_high;
}

/* gs_background_kick - see device_impl.h. */
void
gs_background_kick (struct gs_device *dev)
{
  if (__atomic_exchange_n (&dev->bg_kicked, true, __ATOMIC_ACQ_REL))
    return;
  pthread_mutex_lock (&dev->bg_lock);
  pthread_cond_signal (&dev->bg_cond);
  pthread_mutex_unlock (&dev->bg_lock);
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
  return -r;
}

/* gs_background_stop - see device_impl.h. */
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
