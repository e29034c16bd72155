/* ghostswap control tests: `reset-peak` through gs_control_handle.
 *
 * Data at random offsets of a huge device (each page its own leaf and
 * path of nodes) raises the memory used; trimming all of it brings it
 * down, while memory_peak_bytes stays at the high figure, in the stats
 * answer and in the metric ghostswap_memory_peak_bytes.  After
 * `reset-peak` the peak is the memory used now: the independent
 * expectation is memory_bytes of the same answer and of a stats answer
 * read after (the device is idle), and the metric follows.  A
 * `reset-peak` with an argument is refused and changes nothing.
 * GS_TEST_SEED=N replays the offsets.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ghostswap/device.h"
#include "ghostswap/service/control.h"
#include "ghostswap/service/metrics.h"
#include "jsonc_check.h"
#include "test.h"

#define MIB (1024 * 1024)
#define DEV_SIZE (UINT64_C (1) << 50)          /* size=1P */
#define NDATA 2000

static char answer_buf[4 << 20];

/* ask - @line's answer, which must be ok. */
static struct json_object *
ask (struct gs_device *dev, struct gs_metrics_source *src, const char *line)
{
  struct json_object *v;
  char err[128];
  size_t n;

  n = gs_control_handle (dev, src, line, answer_buf, sizeof answer_buf);
  v = jc_parse (answer_buf, n, err, sizeof err);
  CHECKF (v != NULL, "'%s': invalid JSON (%s): %s", line, err, answer_buf);
  CHECKF (jc_bool (v, "ok", false), "'%s' failed: %s", line, answer_buf);
  return v;
}

/* stat - the figure @key of a stats answer now. */
static uint64_t
stat (struct gs_device *dev, struct gs_metrics_source *src, const char *key)
{
  struct json_object *v = ask (dev, src, "stats");
  uint64_t x;

  CHECKF (jc_get (jc_get (v, "stats"), key) != NULL, "stats lack %s", key);
  x = jc_u64 (jc_get (v, "stats"), key);
  jc_free (v);
  return x;
}

/* metric_peak - ghostswap_memory_peak_bytes in the metrics answer. */
static uint64_t
metric_peak (struct gs_device *dev, struct gs_metrics_source *src)
{
  static const char series[] = "\nghostswap_memory_peak_bytes{name=\"peak\"} ";
  struct json_object *v = ask (dev, src, "metrics");
  const char *text = jc_str (v, "text"), *p;
  uint64_t x;

  CHECK (text != NULL);
  p = strstr (text, series);
  CHECKF (p != NULL && sscanf (p + strlen (series), "%" SCNu64, &x) == 1,
          "no %s in the metrics", series + 1);
  jc_free (v);
  return x;
}

int
main (int argc, char **argv)
{
  static uint64_t slot[NDATA];
  static unsigned char page[PAGE];
  struct gs_config cfg;
  struct gs_device *dev;
  struct gs_metrics_source src = { .name = "peak", .frontend = "test",
                                   .transport = "none" };
  struct json_object *v;
  uint64_t seed, s, i, high, low, peak, now;

  TEST_INIT (argc, argv);
  seed = test_seed ();
  s = seed;
  cfg = test_config (DEV_SIZE, 64 * MIB);
  CHECK_OK (gs_device_create (&cfg, &dev));
  src.dev = dev;

  for (i = 0; i < NDATA; i++) {
    slot[i] = rnd_below (&s, DEV_SIZE / PAGE);
    fill_text (page, PAGE, &s);
    CHECK_OK (gs_pwrite (dev, page, PAGE, slot[i] * PAGE));
  }
  high = stat (dev, &src, "memory_bytes");
  for (i = 0; i < NDATA; i++)
    CHECK_OK (gs_trim (dev, PAGE, slot[i] * PAGE));
  low = stat (dev, &src, "memory_bytes");
  CHECKF (low < high, "trimming everything left memory_bytes at %" PRIu64
          " (was %" PRIu64 ")", low, high);
  peak = stat (dev, &src, "memory_peak_bytes");
  CHECKF (peak >= high, "peak %" PRIu64 " below the %" PRIu64 " used before",
          peak, high);
  CHECKF (metric_peak (dev, &src) == peak, "metric %" PRIu64 ", stats %"
          PRIu64, metric_peak (dev, &src), peak);

  /* Refused with an argument: the peak stays. */
  gs_control_handle (dev, &src, "reset-peak now", answer_buf,
                     sizeof answer_buf);
  CHECKF (strstr (answer_buf, "\"ok\":false") != NULL
          && strstr (answer_buf, "usage: reset-peak") != NULL,
          "'reset-peak now': %s", answer_buf);
  CHECK (stat (dev, &src, "memory_peak_bytes") == peak);

  v = ask (dev, &src, "reset-peak");
  CHECKF (jc_u64 (v, "memory_peak_bytes") == jc_u64 (v, "memory_bytes")
          && jc_u64 (v, "memory_bytes") == low,
          "reset-peak answered peak %" PRIu64 ", memory %" PRIu64
          " (memory before: %" PRIu64 ")", jc_u64 (v, "memory_peak_bytes"),
          jc_u64 (v, "memory_bytes"), low);
  jc_free (v);
  now = stat (dev, &src, "memory_bytes");
  CHECKF (stat (dev, &src, "memory_peak_bytes") == now,
          "after reset-peak: peak %" PRIu64 ", memory %" PRIu64,
          stat (dev, &src, "memory_peak_bytes"), now);
  CHECKF (metric_peak (dev, &src) == now, "after reset-peak: metric %"
          PRIu64 ", memory %" PRIu64, metric_peak (dev, &src), now);

  /* The peak rises again from there. */
  fill_text (page, PAGE, &s);
  CHECK_OK (gs_pwrite (dev, page, PAGE, slot[0] * PAGE));
  CHECK (stat (dev, &src, "memory_peak_bytes") >= stat (dev, &src,
                                                        "memory_bytes"));
  CHECK (stat (dev, &src, "memory_peak_bytes") > now);

  gs_device_destroy (dev);
  fprintf (stderr, "%s: seed %" PRIu64 " ok (peak %" PRIu64 " -> %" PRIu64
           ")\n", test_argv0, seed, peak, now);
  return 0;
}
