/* ghostswap control tests: the stats answer's "info" (what serves the
 * device) and the metric ghostswap_info come from one source.
 *
 * With a fixed transport (the plugin's way, gs_service_set_transport's
 * field), and with a front end's transport_fn (ghostswapd's way) whose
 * answer changes between two requests: each time, info in the stats
 * answer holds the version, front end and transport the front end gave,
 * the reason only when one was given, and the ghostswap_info sample of
 * the metrics answer read right after carries the same labels.  Without
 * a metrics source (gs_control_handle with NULL), or with one whose front
 * end gave no names, info is there with empty labels.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ghostswap/device.h"
#include "ghostswap/service/control.h"
#include "ghostswap/service/metrics.h"
#include "jsonc_check.h"
#include "test.h"

static char answer_buf[1 << 20];

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

/* The front end's transport: what the test sets. */
static const char *ring_transport, *ring_reason;

static const char *
transport_now (void *arg, char *why, size_t len)
{
  CHECK (arg == &ring_transport);
  snprintf (why, len, "%s", ring_reason);
  return ring_transport;
}

/* expect - stats' info and then ghostswap_info show @frontend, @transport
 * and @reason (NULL: no transport_reason member). */
static void
expect (struct gs_device *dev, struct gs_metrics_source *src,
        const char *name, const char *frontend, const char *transport,
        const char *reason)
{
  struct json_object *v = ask (dev, src, "stats");
  struct json_object *info = jc_get (v, "info");
  const char *got_reason = jc_str (info, "transport_reason");
  char line[512];

  CHECKF (info != NULL && jc_is (info, json_type_object), "no info: %s",
          answer_buf);
  CHECKF (jc_str (info, "version") != NULL
          && strcmp (jc_str (info, "version"), PACKAGE_VERSION) == 0,
          "info.version: %s", answer_buf);
  CHECKF (jc_str (info, "frontend") != NULL
          && strcmp (jc_str (info, "frontend"), frontend) == 0,
          "info.frontend, expected %s: %s", frontend, answer_buf);
  CHECKF (jc_str (info, "transport") != NULL
          && strcmp (jc_str (info, "transport"), transport) == 0,
          "info.transport, expected %s: %s", transport, answer_buf);
  if (reason == NULL)
    CHECKF (got_reason == NULL, "info.transport_reason without a reason: %s",
            answer_buf);
  else
    CHECKF (got_reason != NULL && strcmp (got_reason, reason) == 0,
            "info.transport_reason, expected '%s': %s", reason, answer_buf);
  jc_free (v);

  v = ask (dev, src, "metrics");
  snprintf (line, sizeof line, "\nghostswap_info{name=\"%s\",version=\"%s\","
            "frontend=\"%s\",transport=\"%s\"} 1\n", name, PACKAGE_VERSION,
            frontend, transport);
  CHECKF (jc_str (v, "text") != NULL && strstr (jc_str (v, "text"), line),
          "no line '%s' in the metrics:\n%s", line + 1, jc_str (v, "text"));
  jc_free (v);
}

int
main (int argc, char **argv)
{
  struct gs_config cfg = test_config (64 << 20, 16 << 20);
  struct gs_device *dev;
  struct gs_metrics_source fixed = { .name = "nbd0", .frontend = "nbd",
                                     .transport = "none" };
  struct gs_metrics_source pulled = {
    .name = "fuse0", .frontend = "fuse", .transport = "ignored",
    .transport_fn = transport_now, .transport_arg = &ring_transport,
  };

  TEST_INIT (argc, argv);
  CHECK_OK (gs_device_create (&cfg, &dev));
  fixed.dev = pulled.dev = dev;

  expect (dev, NULL, "", "", "", NULL);
  /* A front end that said nothing: empty labels, not a crash. */
  {
    struct gs_metrics_source bare = { .dev = dev, .name = "bare" };
    expect (dev, &bare, "bare", "", "", NULL);
  }
  expect (dev, &fixed, "nbd0", "nbd", "none", NULL);
  __atomic_store_n (&fixed.transport, "unix", __ATOMIC_RELEASE);
  expect (dev, &fixed, "nbd0", "nbd", "unix", NULL);

  ring_transport = "dev";
  ring_reason = "transport=dev";
  expect (dev, &pulled, "fuse0", "fuse", "dev", "transport=dev");
  ring_transport = "uring";
  ring_reason = "";
  expect (dev, &pulled, "fuse0", "fuse", "uring", NULL);

  gs_device_destroy (dev);
  fprintf (stderr, "%s: ok\n", test_argv0);
  return 0;
}
