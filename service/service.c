/* ghostswap service: the one start-up path of every front end (see
 * ghostswap/service/service.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "cleanup.h"
#include "ghostswap/backing.h"
#include "ghostswap/control.h"
#include "ghostswap/service/control.h"
#include "ghostswap/service/harden.h"
#include "ghostswap/service/metrics.h"
#include "ghostswap/service/service.h"
#include "metrics_http.h"
#include "remote_warn.h"

struct gs_service {
  gs_log_fn log;
  char name[GS_NAME_MAX + 1];   /* a derived name is cut to GS_NAME_MAX */
  char control_path[sizeof ((struct sockaddr_un *) NULL)->sun_path];
  struct gs_metrics_source metrics;
  struct gs_control *ctl;       /* NULL: none */
  struct gs_metrics_http *http; /* NULL: none */
};

static void __attribute__ ((format (printf, 3, 4)))
say (gs_log_fn log, enum gs_log_level level, const char *fmt, ...)
{
  char msg[2048];
  va_list ap;

  if (log == NULL)
    return;
  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  log (level, msg);
}

/* Say once, at start, whether backing I/O can use io_uring: a warning if
 * the kernel refuses it (a seccomp profile, kernel.io_uring_disabled, no
 * memory), since every backing read and write then goes through
 * pread/pwrite.  Later failures are counted in the statistics
 * (io_uring_failures, io_uring_fallback_batches). */
static void
report_io_uring (gs_log_fn log)
{
  int r = gs_backing_io_check ();

  if (r == 0)
    say (log, GS_LOG_DEBUG, "backing I/O: io_uring");
  else if (r == -ENOTSUP)
    say (log, GS_LOG_DEBUG, "backing I/O: pread/pwrite "
         "(GHOSTSWAP_IO_URING=0 turns io_uring off)");
  else
    say (log, GS_LOG_WARNING, "io_uring unavailable (%s): backing I/O falls "
         "back to pread/pwrite, slower; io_uring is tried again now and "
         "then", strerrordesc_np (-r));
}

/* Where integrity errors are reported: the front end's log (one device
 * per process). */
static gs_log_fn integrity_log;

/* The engine found a corrupt page on a backing (once per page). */
static void
report_integrity (void *opaque, uint64_t slot, const char *backing,
                  uint64_t pslot)
{
  say (integrity_log, GS_LOG_ERROR, "integrity error: ghost slot %" PRIu64
       " (byte offset %" PRIu64 ") on backing %s, physical slot %" PRIu64
       ", failed its checksum: reads of it fail with EIO until it is "
       "rewritten or trimmed", slot, slot * GS_SLOT_SIZE, backing, pslot);
}

/* gs_service_harden - see service.h. */
void
gs_service_harden (gs_log_fn log)
{
  struct gs_harden_report rep;
  unsigned m;

  gs_harden_process (&rep);
  for (m = 0; m < GS_HARDEN_MEASURES; m++) {
    if (rep.result[m].ok)
      say (log, GS_LOG_DEBUG, "%s: applied%s", gs_harden_measure_name (m),
           m == GS_HARDEN_MLOCK && rep.mlock_onfault
           ? " (MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT)" : "");
    else
      /* Not strerror: see common/errmsg.h. */
      say (log, GS_LOG_WARNING, "%s failed (%s): %s",
           gs_harden_measure_name (m), strerrordesc_np (rep.result[m].err),
           gs_harden_measure_risk (m));
  }
  report_io_uring (log);
}

/* Detach the first @n backings of @cfg, removing the files this start
 * created. */
static void
withdraw (struct gs_device *dev, const struct gs_config *cfg, unsigned n)
{
  char ignored[1024];
  unsigned i;

  for (i = 0; i < n; i++)
    gs_backing_withdraw (dev, cfg->backing[i], ignored, sizeof ignored);
}

/* gs_service_withdraw_backings - see service.h. */
void
gs_service_withdraw_backings (struct gs_device *dev,
                              const struct gs_config *cfg)
{
  withdraw (dev, cfg, cfg->nbacking);
}

/* gs_service_create_device - see service.h. */
int
gs_service_create_device (const struct gs_config *cfg, gs_log_fn log,
                          struct gs_device **devp)
{
  struct gs_device *dev;
  char err[1024], sz[32], rl[32];
  unsigned i;
  int r;

  r = gs_device_create (cfg, &dev);
  if (r < 0) {
    say (log, GS_LOG_ERROR, "cannot create the device: %s",
         strerrordesc_np (-r));
    return r;
  }
  integrity_log = log;
  gs_device_set_integrity_report (dev, report_integrity, NULL);
  for (i = 0; i < cfg->nbacking; i++) {
    r = gs_backing_add (dev, cfg->backing[i], cfg->backing_size, err,
                        sizeof err);
    if (r < 0) {
      say (log, GS_LOG_ERROR, "%s", err);
      withdraw (dev, cfg, i);
      gs_device_destroy (dev);
      return r;
    }
    say (log, GS_LOG_DEBUG, "backing %s attached", cfg->backing[i]);
    if (gs_service_insecure_warning (dev, cfg->backing[i], err, sizeof err))
      say (log, GS_LOG_WARNING, "%s", err);
  }
  say (log, GS_LOG_DEBUG, "device size=%s ram-limit=%s compression-level=%d "
       "compact-threshold=%u, %u backing(s)",
       gs_format_size (cfg->size, sz, sizeof sz),
       gs_format_size (cfg->ram_limit, rl, sizeof rl),
       cfg->compression_level, cfg->compact_threshold, cfg->nbacking);
  *devp = dev;
  return 0;
}

/* pick_name - name=, else control=PATH's base name without ".sock",
 * else @dflt. */
static void
pick_name (const struct gs_config *cfg, const char *dflt, char *buf,
           size_t len)
{
  const char *base;
  size_t n;

  if (cfg->name != NULL) {
    snprintf (buf, len, "%s", cfg->name);
    return;
  }
  if (cfg->control != NULL && strcmp (cfg->control, "none") != 0) {
    base = strrchr (cfg->control, '/');
    base = base ? base + 1 : cfg->control;
    n = strlen (base);
    if (n > 5 && strcmp (base + n - 5, ".sock") == 0)
      n -= 5;
    if (n > 0) {
      snprintf (buf, len, "%.*s", (int) n, base);
      return;
    }
  }
  snprintf (buf, len, "%s", dflt && dflt[0] ? dflt : "ghostswap");
}

/* start_control - the control socket, as service.h says. */
static int
start_control (struct gs_service *svc, struct gs_device *dev,
               const struct gs_config *cfg)
{
  bool dflt = cfg->control == NULL;
  char err[1024];
  int r;

  if (!dflt && strcmp (cfg->control, "none") == 0)
    return 0;
  if (dflt)
    snprintf (svc->control_path, sizeof svc->control_path, "%s/%s.sock",
              GS_CONTROL_DEFAULT_DIR, svc->name);
  else
    snprintf (svc->control_path, sizeof svc->control_path, "%s",
              cfg->control);
  r = gs_control_start (dev, svc->control_path, &svc->metrics, &svc->ctl,
                        err, sizeof err);
  if (r < 0) {
    svc->control_path[0] = '\0';
    if (dflt) {
      /* Not asked for: serve without it, but say so. */
      say (svc->log, GS_LOG_WARNING, "%s; running without a control socket "
           "(set control=PATH or control=none)", err);
      return 0;
    }
    say (svc->log, GS_LOG_ERROR, "%s", err);
    return r;
  }
  say (svc->log, GS_LOG_INFO, "control socket %s", svc->control_path);
  return 0;
}

/* gs_service_start - see service.h. */
int
gs_service_start (struct gs_device *dev, const struct gs_config *cfg,
                  const struct gs_service_params *params,
                  struct gs_service **svcp)
{
  struct gs_service *svc;
  char err[1024];
  int r;

  svc = calloc (1, sizeof *svc);
  if (svc == NULL) {
    say (params->log, GS_LOG_ERROR, "out of memory");
    return -ENOMEM;
  }
  svc->log = params->log;
  pick_name (cfg, params->default_name, svc->name, sizeof svc->name);
  svc->metrics.dev = dev;
  svc->metrics.name = svc->name;
  svc->metrics.frontend = params->frontend;
  svc->metrics.transport = params->transport ? params->transport : "none";
  svc->metrics.transport_fn = params->transport_fn;
  svc->metrics.transport_arg = params->transport_arg;
  svc->metrics.latency = params->latency;

  r = start_control (svc, dev, cfg);
  if (r == 0 && cfg->metrics_listen != NULL) {
    r = gs_metrics_http_start (cfg->metrics_listen, &svc->metrics,
                               &svc->http, err, sizeof err);
    if (r < 0)
      say (svc->log, GS_LOG_ERROR, "%s", err);
    else
      say (svc->log, GS_LOG_INFO, "metrics on http://%s/metrics",
           gs_metrics_http_address (svc->http));
  }
  if (r < 0) {
    gs_service_stop (svc);
    return r;
  }
  say (svc->log, GS_LOG_DEBUG, "device name %s", svc->name);
  *svcp = svc;
  return 0;
}

/* gs_service_stop - see service.h. */
void
gs_service_stop (struct gs_service *svc)
{
  if (svc == NULL)
    return;
  gs_metrics_http_stop (svc->http);
  gs_control_stop (svc->ctl);
  free (svc);
}

/* gs_service_set_transport - see service.h. */
void
gs_service_set_transport (struct gs_service *svc, const char *transport)
{
  __atomic_store_n (&svc->metrics.transport, transport, __ATOMIC_RELEASE);
}
