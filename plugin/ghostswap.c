/* ghostswap: the nbdkit plugin.
 *
 * A thin adapter from nbdkit's plugin API to the engine's public API
 * (include/ghostswap/) and the service library's start-up path
 * (include/ghostswap/service/service.h), which it shares with ghostswapd.  One device is created in .get_ready and shared by
 * every connection; the engine does its own locking, so the plugin runs in
 * the PARALLEL thread model and advertises multi-conn.
 *
 * The engine returns 0 or -errno and never logs; this file turns its
 * errors into nbdkit_error messages with errno set (errno_is_preserved).
 *
 * See docs/nbdkit-ghostswap-plugin.pod for the user's view.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <zstd.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "ghostswap/config.h"
#include "ghostswap/device.h"
#include "ghostswap/service/latency.h"
#include "ghostswap/service/service.h"
#include "ghostswap/stats.h"

#ifndef PACKAGE_VERSION
#error "PACKAGE_VERSION must be defined by the build (plugin/meson.build)"
#endif

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

/* Engine extent types are NBD's bits, so they pass through unchanged. */
_Static_assert (GS_EXTENT_HOLE == NBDKIT_EXTENT_HOLE,
                "GS_EXTENT_HOLE must equal NBDKIT_EXTENT_HOLE");
_Static_assert (GS_EXTENT_ZERO == NBDKIT_EXTENT_ZERO,
                "GS_EXTENT_ZERO must equal NBDKIT_EXTENT_ZERO");

/* Most runs reported by one .extents call (1 with NBDKIT_FLAG_REQ_ONE). */
#define GS_PLUGIN_MAX_RUNS 1024u

/* The configuration, filled by .load (defaults) and .config. */
static struct gs_config cfg;

/* The device, created in .get_ready, shared by all connections. */
static struct gs_device *dev;

/* The service (control socket, metrics), started in .after_fork (the
 * default name holds the server's PID, which the fork changes). */
static struct gs_service *service;

/* Request latency, recorded around every engine call. */
static struct gs_latency latency;

/* Whether the transport has been told to the service (first .open). */
static bool transport_known;

/* Room for one engine error message. */
#define GS_ERRLEN 1024

/* Room for a formatted size such as "9223372036854771712". */
#define GS_SIZELEN 32

/* log_stats - write the device's statistics at debug level (nbdkit -v),
 * one nbdkit_debug line per line of gs_stats_format's text.
 *
 * Context: no request may be running (called at shutdown).
 * Return: nothing.
 */
static void
log_stats (void)
{
  struct gs_stats st;
  char buf[4096];
  char *big = NULL;
  char *text = buf;
  char *line, *next;
  int n;

  gs_get_stats (dev, &st);
  n = gs_stats_format (&st, buf, sizeof buf);
  if (n < 0)
    return;
  if ((size_t) n >= sizeof buf) {
    big = malloc ((size_t) n + 1);
    if (big == NULL)
      return;
    gs_stats_format (&st, big, (size_t) n + 1);
    text = big;
  }

  nbdkit_debug ("ghostswap: statistics:");
  for (line = text; *line != '\0'; line = next) {
    next = strchr (line, '\n');
    if (next != NULL)
      *next++ = '\0';
    else
      next = line + strlen (line);
    if (*line != '\0')
      nbdkit_debug ("ghostswap: %s", line);
  }

  free (big);
}

/* close_device - log statistics and destroy the device, if there is one.
 * Context: at shutdown, no request running.  Return: nothing.
 */
static void
close_device (void)
{
  gs_service_stop (service);
  service = NULL;
  if (dev == NULL)
    return;
  log_stats ();
  gs_device_destroy (dev);
  dev = NULL;
}

/* engine_error - report a failed engine call @what that returned @r < 0:
 * log it, set errno and return -1 for the callback to pass on.
 *
 * ENOSPC from a call that stores data (pwrite, zero, trim) means the RAM
 * tier reached ram-limit; say what to do about it.
 *
 * Context: a data-serving callback.
 * Return: -1.
 */
static int
engine_error (const char *what, int r)
{
  if (r == -ENOSPC) {
    char limit[GS_SIZELEN];
    struct gs_stats st;

    gs_get_stats (dev, &st);
    gs_format_size (st.ram_limit, limit, sizeof limit);
    errno = ENOSPC;
    if (st.backings == 0)
      nbdkit_error ("ghostswap: %s: RAM tier full (ram-limit=%s reached): "
                    "raise ram-limit= or add backing storage", what, limit);
    else
      nbdkit_error ("ghostswap: %s: RAM tier (ram-limit=%s) and every "
                    "healthy backing are full: add a backing "
                    "(ghostswapctl backing add) or raise ram-limit", what,
                    limit);
  }
  else {
    errno = -r;
    nbdkit_error ("ghostswap: %s: %m", what);
  }
  return -1;
}

/* plugin_log - the service's messages: errors through nbdkit_error,
 * warnings on stderr (nbdkit has no call for those), the rest at debug
 * level (nbdkit -v).
 * Context: any.  Return: nothing.
 */
static void
plugin_log (enum gs_log_level level, const char *msg)
{
  switch (level) {
  case GS_LOG_ERROR:
    nbdkit_error ("ghostswap: %s", msg);
    break;
  case GS_LOG_WARNING:
    fprintf (stderr, "nbdkit: ghostswap: warning: %s\n", msg);
    break;
  default:
    nbdkit_debug ("ghostswap: %s", msg);
  }
}

static void
ghostswap_load (void)
{
  gs_config_init (&cfg);
}

static void
ghostswap_unload (void)
{
  /* Reached without .cleanup when nbdkit exits before .after_fork. */
  close_device ();
  gs_config_free (&cfg);
}

static int
ghostswap_config (const char *key, const char *value)
{
  char err[GS_ERRLEN];
  int r;

  r = gs_config_set (&cfg, key, value, err, sizeof err);
  if (r < 0) {
    errno = -r;
    nbdkit_error ("ghostswap: %s", err);
    return -1;
  }
  return 0;
}

static int
ghostswap_config_complete (void)
{
  char err[GS_ERRLEN];
  int r;

  r = gs_config_check (&cfg, err, sizeof err);
  if (r < 0) {
    errno = -r;
    nbdkit_error ("ghostswap: %s", err);
    return -1;
  }
  return 0;
}

/* print_keys - print the keys gs_config_help describes, comma-separated:
 * each line that does not start with a blank names one key before its '='.
 * Context: .dump_plugin.  Return: nothing.
 */
static void
print_keys (void)
{
  const char *line = gs_config_help;
  const char *sep = "";

  while (*line != '\0') {
    size_t len = strcspn (line, "=\n");

    if (line[len] == '=' && len > 0 && line[0] != ' ' && line[0] != '\t') {
      printf ("%s%.*s", sep, (int) len, line);
      sep = ",";
    }
    line += strcspn (line, "\n");
    if (*line == '\n')
      line++;
  }
  putchar ('\n');
}

static void
ghostswap_dump_plugin (void)
{
  struct gs_config def;
  char size[GS_SIZELEN], ram[GS_SIZELEN];

  gs_config_init (&def);
  printf ("ghostswap_slot_size=%u\n", GS_SLOT_SIZE);
  printf ("ghostswap_cluster_slots=512\n");
  printf ("ghostswap_max_size=%" PRIu64 "\n", (uint64_t) GS_MAX_SIZE);
  printf ("ghostswap_default_size=%s\n",
          gs_format_size (def.size, size, sizeof size));
  printf ("ghostswap_default_ram_limit=%s\n",
          gs_format_size (def.ram_limit, ram, sizeof ram));
  printf ("ghostswap_default_compression_level=%d\n", def.compression_level);
  printf ("ghostswap_default_compact_threshold=%u\n", def.compact_threshold);
  printf ("ghostswap_keys=");
  print_keys ();
  printf ("ghostswap_zstd_version=%s\n", ZSTD_versionString ());
  gs_config_free (&def);
}

static int
ghostswap_get_ready (void)
{
  int r;

  r = gs_service_create_device (&cfg, plugin_log, &dev);
  if (r < 0) {
    dev = NULL;
    errno = -r;
    return -1;
  }
  return 0;
}

static int
ghostswap_after_fork (void)
{
  char name[32];
  struct gs_service_params params = {
    .frontend = "nbd", .default_name = name, .latency = &latency,
    .log = plugin_log,
  };
  int r;

  /* Before nbdkit starts connection threads (they inherit the I/O
   * flusher flag); nbdkit --swap alone only locks memory. */
  gs_service_harden (plugin_log);

  /* Background threads do not survive nbdkit's fork: start them here. */
  r = gs_device_start (dev);
  if (r < 0) {
    errno = -r;
    nbdkit_error ("ghostswap: cannot start the background thread: %m");
    return -1;
  }
  snprintf (name, sizeof name, "ghostswap-%ld", (long) getpid ());
  r = gs_service_start (dev, &cfg, &params, &service);
  if (r < 0) {
    errno = -r;
    return -1;
  }
  return 0;
}

static void
ghostswap_cleanup (void)
{
  close_device ();
}

/* peer_transport - how the client on this connection reached us. */
static const char *
peer_transport (void)
{
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;

  if (nbdkit_peer_name ((struct sockaddr *) &ss, &len) == -1)
    return "unknown";
  switch (ss.ss_family) {
  case AF_UNIX: return "unix";
  case AF_INET: case AF_INET6: return "tcp";
  case AF_VSOCK: return "vsock";
  default: return "unknown";
  }
}

static void *
ghostswap_open (int readonly)
{
  /* The first client tells the metrics the transport (nbdkit serves one
   * kind of socket at a time). */
  if (service != NULL && !__atomic_exchange_n (&transport_known, true,
                                               __ATOMIC_RELAXED))
    gs_service_set_transport (service, peer_transport ());
  /* All state is in the global device. */
  return NBDKIT_HANDLE_NOT_NEEDED;
}

static int64_t
ghostswap_get_size (void *handle)
{
  return (int64_t) gs_device_size (dev);
}

/* The largest read or write payload nbdkit takes: above it nbdkit
 * answers ENOMEM before calling the plugin (MAX_REQUEST_SIZE in its
 * server/internal.h, 64 MiB in every release so far).  It is also more
 * than the NBD protocol's portable 2^25 bytes. */
#define GS_PLUGIN_MAX_PAYLOAD (64u * 1024 * 1024)

static int
ghostswap_block_size (void *handle, uint32_t *minimum, uint32_t *preferred,
                      uint32_t *maximum)
{
  /* Any offset and length works; whole slots avoid read-modify-write.
   * The maximum is the payload nbdkit really accepts, not 4 GiB - 1: a
   * client that trusts the advertisement must never meet nbdkit's
   * ENOMEM.  Trims, zeroes and block status may still be longer (the
   * protocol allows effect lengths above the maximum payload). */
  *minimum = 1;
  *preferred = GS_SLOT_SIZE;
  *maximum = GS_PLUGIN_MAX_PAYLOAD;
  return 0;
}

/* All connections see the same device. */
static int
ghostswap_can_multi_conn (void *handle)
{
  return 1;
}

static int
ghostswap_can_trim (void *handle)
{
  return 1;
}

static int
ghostswap_can_zero (void *handle)
{
  return 1;
}

/* Zeroing never compresses or copies whole slots: it is always fast. */
static int
ghostswap_can_fast_zero (void *handle)
{
  return 1;
}

static int
ghostswap_can_extents (void *handle)
{
  return 1;
}

static int
ghostswap_can_flush (void *handle)
{
  return 1;
}

/* FUA is done by calling gs_flush after the request. */
static int
ghostswap_can_fua (void *handle)
{
  return NBDKIT_FUA_NATIVE;
}

/* .cache is a hint the engine checks and counts. */
static int
ghostswap_can_cache (void *handle)
{
  return NBDKIT_CACHE_NATIVE;
}

static int
ghostswap_thread_model (void)
{
  return NBDKIT_THREAD_MODEL_PARALLEL;
}

/* fua - honour NBDKIT_FLAG_FUA in @flags after a successful @what.
 * Context: a data-serving callback.  Return: 0 or -1 with errno set.
 */
static int
fua (const char *what, uint32_t flags)
{
  int r;

  if ((flags & NBDKIT_FLAG_FUA) == 0)
    return 0;
  r = gs_flush (dev);
  if (r < 0)
    return engine_error (what, r);
  return 0;
}

static int
ghostswap_pread (void *handle, void *buf, uint32_t count, uint64_t offset,
                 uint32_t flags)
{
  uint64_t t0;
  int r;

  t0 = gs_latency_now ();
  r = gs_pread (dev, buf, count, offset);
  gs_latency_record (&latency, GS_OP_READ, t0);
  if (r < 0)
    return engine_error ("pread", r);
  return 0;
}

static int
ghostswap_pwrite (void *handle, const void *buf, uint32_t count,
                  uint64_t offset, uint32_t flags)
{
  uint64_t t0;
  int r;

  t0 = gs_latency_now ();
  r = gs_pwrite (dev, buf, count, offset);
  gs_latency_record (&latency, GS_OP_WRITE, t0);
  if (r < 0)
    return engine_error ("pwrite", r);
  return fua ("pwrite", flags);
}

static int
ghostswap_flush (void *handle, uint32_t flags)
{
  uint64_t t0 = gs_latency_now ();
  int r;

  r = gs_flush (dev);
  gs_latency_record (&latency, GS_OP_FLUSH, t0);
  if (r < 0)
    return engine_error ("flush", r);
  return 0;
}

static int
ghostswap_trim (void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
  uint64_t t0;
  int r;

  t0 = gs_latency_now ();
  r = gs_trim (dev, count, offset);
  gs_latency_record (&latency, GS_OP_TRIM, t0);
  if (r < 0)
    return engine_error ("trim", r);
  return fua ("trim", flags);
}

static int
ghostswap_zero (void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
  unsigned zflags = 0;
  uint64_t t0;
  int r;

  /* NBDKIT_FLAG_FAST_ZERO needs nothing: zeroing whole slots does no data
   * work, and only the partial slots at either end are rewritten. */
  if (flags & NBDKIT_FLAG_MAY_TRIM)
    zflags |= GS_ZERO_MAY_TRIM;
  t0 = gs_latency_now ();
  r = gs_zero (dev, count, offset, zflags);
  gs_latency_record (&latency, GS_OP_ZERO, t0);
  if (r < 0)
    return engine_error ("zero", r);
  return fua ("zero", flags);
}

/* State of one .extents call, passed through gs_extents to add_extent. */
struct extents_ctx {
  struct nbdkit_extents *extents;
  int failed_errno;             /* errno from nbdkit_add_extent, or 0 */
};

/* add_extent - gs_extent_fn that hands a run to nbdkit.
 * Context: inside gs_extents.
 * Return: 0 to go on, 1 when nbdkit_add_extent failed (it has logged).
 */
static int
add_extent (void *opaque, uint64_t offset, uint64_t length, uint32_t type)
{
  struct extents_ctx *ctx = opaque;

  if (nbdkit_add_extent (ctx->extents, offset, length, type) == -1) {
    ctx->failed_errno = errno ? errno : EIO;
    return 1;
  }
  return 0;
}

static int
ghostswap_extents (void *handle, uint32_t count, uint64_t offset,
                   uint32_t flags, struct nbdkit_extents *extents)
{
  struct extents_ctx ctx = { .extents = extents, .failed_errno = 0 };
  unsigned max_runs = (flags & NBDKIT_FLAG_REQ_ONE) ? 1 : GS_PLUGIN_MAX_RUNS;
  uint64_t t0;
  int r;

  t0 = gs_latency_now ();
  r = gs_extents (dev, count, offset, max_runs, add_extent, &ctx);
  gs_latency_record (&latency, GS_OP_EXTENTS, t0);
  if (r > 0) {
    /* nbdkit_add_extent has already called nbdkit_error. */
    errno = ctx.failed_errno;
    return -1;
  }
  if (r < 0)
    return engine_error ("extents", r);
  return 0;
}

static int
ghostswap_cache (void *handle, uint32_t count, uint64_t offset,
                 uint32_t flags)
{
  uint64_t t0;
  int r;

  /* No flag is defined for NBD_CMD_CACHE; refuse any that appears. */
  if (flags != 0) {
    errno = EINVAL;
    nbdkit_error ("ghostswap: cache: unknown flags 0x%" PRIx32, flags);
    return -1;
  }
  /* The engine checks and counts the hint; backing pages are read on demand. */
  t0 = gs_latency_now ();
  r = gs_cache (dev, count, offset);
  gs_latency_record (&latency, GS_OP_CACHE, t0);
  if (r < 0)
    return engine_error ("cache", r);
  return 0;
}

static struct nbdkit_plugin plugin = {
  .name               = "ghostswap",
  .longname           = "ghostswap thin-provisioned compressed swap device",
  .version            = PACKAGE_VERSION,
  .description        =
    "A ghost swap device: a large, thin-provisioned block device for swap\n"
    "whose 4 KiB slots are stored empty, same-filled or zstd-compressed\n"
    "in RAM, allocated on first write and freed by trim.",
  .load               = ghostswap_load,
  .unload             = ghostswap_unload,
  .config             = ghostswap_config,
  .config_complete    = ghostswap_config_complete,
  .config_help        = gs_config_help,
  .magic_config_key   = "size",
  .dump_plugin        = ghostswap_dump_plugin,
  .get_ready          = ghostswap_get_ready,
  .after_fork         = ghostswap_after_fork,
  .cleanup            = ghostswap_cleanup,
  .open               = ghostswap_open,
  .get_size           = ghostswap_get_size,
  .block_size         = ghostswap_block_size,
  .can_multi_conn     = ghostswap_can_multi_conn,
  .can_trim           = ghostswap_can_trim,
  .can_zero           = ghostswap_can_zero,
  .can_fast_zero      = ghostswap_can_fast_zero,
  .can_extents        = ghostswap_can_extents,
  .can_flush          = ghostswap_can_flush,
  .can_fua            = ghostswap_can_fua,
  .can_cache          = ghostswap_can_cache,
  .thread_model       = ghostswap_thread_model,
  .pread              = ghostswap_pread,
  .pwrite             = ghostswap_pwrite,
  .flush              = ghostswap_flush,
  .trim               = ghostswap_trim,
  .zero               = ghostswap_zero,
  .extents            = ghostswap_extents,
  .cache              = ghostswap_cache,
  .errno_is_preserved = 1,
};

/* NBDKIT_REGISTER_PLUGIN defines this exported entry point; declare it
 * first for -Wmissing-prototypes. */
struct nbdkit_plugin *plugin_init (void);

NBDKIT_REGISTER_PLUGIN (plugin)
