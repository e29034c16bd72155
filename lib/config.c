/* ghostswap: configuration keys, their defaults and their parser. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <zstd.h>

#include "errmsg.h"
#include "ghostswap/config.h"

#define GIB (1024ull * 1024 * 1024)
#define MIB (1024ull * 1024)

const char gs_config_help[] =
  "size=SIZE                  Device size (magic key; default twice physical RAM).\n"
  "                           A multiple of 4096, at most 2^63-4096.\n"
  "ram-limit=SIZE             Cap on RAM used by compressed pages\n"
  "                           (default half of physical RAM).\n"
  "metadata-limit=SIZE        Cap on the cluster table's metadata (default\n"
  "                           ram-limit/16, at least 64M; 0: no cap).\n"
  "compression-level=N        zstd level (default 1).\n"
  "compact-threshold=PERCENT  Pool fragmentation that starts compaction\n"
  "                           (1..99, default 25).\n"
  "recompress-level=N         Recompress cold RAM pages in the background at\n"
  "                           zstd level N (1..22; default 0: off).\n"
  "recompress-cpu=PERCENT     CPU share of one core recompression may use\n"
  "                           (1..100, default 10).\n"
  "backing=PATH|URI           Backing file or block device, or a remote NBD\n"
  "                           export: nbd://HOST[:PORT]/EXPORT, nbds://...\n"
  "                           (TLS), nbd+unix:///EXPORT?socket=PATH\n"
  "                           (repeatable).\n"
  "backing-size=SIZE          Size of backing files created when missing\n"
  "                           (not with a URI: a remote has its export's).\n"
  "tls-psk=FILE               PSK file for nbds:// backings.\n"
  "tls-username=NAME          PSK user name (default: libnbd's, the login).\n"
  "tls-certificates=DIR       X.509 certificates for nbds:// backings.\n"
  "remote-timeout=SECONDS     How long a remote backing may be unreachable\n"
  "                           before reads of its pages fail with EIO and\n"
  "                           writers wait for room (1..3600, default 30).\n"
  "punch-holes=BOOL           Give trimmed backing space back (default true).\n"
  "encrypt=BOOL               Encrypt pages on backings, AES-256-XTS with a\n"
  "                           random key per backing (default true).\n"
  "writeback-high=PERCENT     RAM use (of ram-limit) that starts writeback\n"
  "                           (default 90).\n"
  "writeback-low=PERCENT      RAM use where writeback stops (default 75).\n"
  "name=NAME                  The device's name: its metrics' name label and\n"
  "                           its default control socket (default: from\n"
  "                           control=, else the mount point or ghostswap-PID).\n"
  "control=PATH               Control socket (default\n"
  "                           /run/ghostswap/NAME.sock; 'none': off).\n"
  "metrics-listen=ADDR:PORT   Serve Prometheus metrics over HTTP at\n"
  "                           http://ADDR:PORT/metrics (default: off).\n"
  "fault-injection=BOOL       Allow injected I/O faults (tests only).";

/* The keys, for gs_config.given (bit i: key_names[i]). */
static const char *const key_names[] = {
  "size", "ram-limit", "compression-level", "compact-threshold", "backing",
  "backing-size", "punch-holes", "writeback-high", "writeback-low",
  "control", "fault-injection", "metadata-limit", "encrypt", "name",
  "metrics-listen", "recompress-level", "recompress-cpu", "tls-psk",
  "tls-username", "tls-certificates", "remote-timeout",
};
#define NKEYS (sizeof key_names / sizeof key_names[0])
_Static_assert (NKEYS <= 32, "gs_config.given has 32 bits");

static uint32_t
key_bit (const char *key)
{
  size_t i;

  for (i = 0; i < NKEYS; i++)
    if (strcmp (key, key_names[i]) == 0)
      return UINT32_C (1) << i;
  return 0;
}

static uint64_t
physical_ram (void)
{
  long pages = sysconf (_SC_PHYS_PAGES);
  long psize = sysconf (_SC_PAGESIZE);

  if (pages <= 0 || psize <= 0)
    return 4 * GIB;
  return (uint64_t) pages * (uint64_t) psize;
}

static uint64_t
round_up (uint64_t v, uint64_t unit)
{
  return (v + unit - 1) / unit * unit;
}

/* gs_config_init - see config.h. */
void
gs_config_init (struct gs_config *cfg)
{
  uint64_t ram = physical_ram ();

  cfg->size = round_up (2 * ram, GIB);
  cfg->ram_limit = round_up (ram / 2, MIB);
  cfg->metadata_limit = GS_METADATA_LIMIT_AUTO;
  cfg->compression_level = 1;
  cfg->compact_threshold = 25;
  cfg->recompress_level = GS_RECOMPRESS_LEVEL_DEFAULT;
  cfg->recompress_cpu = GS_RECOMPRESS_CPU_DEFAULT;
  cfg->nbacking = 0;
  cfg->backing_size = 0;
  cfg->punch_holes = true;
  cfg->encrypt = true;
  cfg->writeback_high = 90;
  cfg->writeback_low = 75;
  cfg->control = NULL;
  cfg->name = NULL;
  cfg->metrics_listen = NULL;
  cfg->fault_injection = false;
  cfg->tls_psk = cfg->tls_username = cfg->tls_certificates = NULL;
  cfg->remote_timeout = GS_REMOTE_TIMEOUT_DEFAULT;
  cfg->given = cfg->given_twice = 0;
}

/* gs_config_free - see config.h. */
void
gs_config_free (struct gs_config *cfg)
{
  unsigned i;

  for (i = 0; i < cfg->nbacking; i++)
    free (cfg->backing[i]);
  cfg->nbacking = 0;
  free (cfg->control);
  cfg->control = NULL;
  free (cfg->name);
  cfg->name = NULL;
  free (cfg->metrics_listen);
  cfg->metrics_listen = NULL;
  free (cfg->tls_psk);
  free (cfg->tls_username);
  free (cfg->tls_certificates);
  cfg->tls_psk = cfg->tls_username = cfg->tls_certificates = NULL;
}

/* set_string - replace the string *@slot with a copy of @value. */
static int
set_string (char **slot, const char *key, const char *value,
            char *err, size_t errlen)
{
  char *copy = strdup (value);

  if (!copy)
    return gs_errmsg (err, errlen, -ENOMEM, "%s: out of memory", key);
  free (*slot);
  *slot = copy;
  return 0;
}

/* name_ok - a device name: 1 to GS_NAME_MAX letters, digits, '_', '.',
 * '-', not starting with '.' or '-' (it names a socket and a file). */
static bool
name_ok (const char *s)
{
  size_t i, n = strlen (s);

  if (n == 0 || n > GS_NAME_MAX || s[0] == '.' || s[0] == '-')
    return false;
  for (i = 0; i < n; i++)
    if (!isalnum ((unsigned char) s[i]) && !strchr ("_.-", s[i]))
      return false;
  return true;
}

static int
parse_bool (const char *value, bool *out)
{
  static const char *const yes[] = { "1", "true", "yes", "on" };
  static const char *const no[] = { "0", "false", "no", "off" };
  size_t i;

  for (i = 0; i < sizeof yes / sizeof yes[0]; i++) {
    if (strcasecmp (value, yes[i]) == 0) {
      *out = true;
      return 0;
    }
    if (strcasecmp (value, no[i]) == 0) {
      *out = false;
      return 0;
    }
  }
  return -EINVAL;
}

/* gs_parse_size - see config.h. */
int
gs_parse_size (const char *str, uint64_t *out)
{
  const char *p = str;
  uint64_t v = 0, mult = 1;
  unsigned shift = 0;
  bool overflow = false;

  while (isspace ((unsigned char) *p))
    p++;
  if (!isdigit ((unsigned char) *p))
    return -EINVAL;
  /* Too many digits is -ERANGE only for a string that is a size at all:
   * the syntax is checked to the end first. */
  for (; isdigit ((unsigned char) *p); p++) {
    unsigned d = (unsigned) (*p - '0');
    if (v > (UINT64_MAX - d) / 10)
      overflow = true;
    else
      v = v * 10 + d;
  }
  switch (*p) {
  case '\0': break;
  case 'b': case 'B': p++; break;
  case 'k': case 'K': shift = 10; p++; break;
  case 'm': case 'M': shift = 20; p++; break;
  case 'g': case 'G': shift = 30; p++; break;
  case 't': case 'T': shift = 40; p++; break;
  case 'p': case 'P': shift = 50; p++; break;
  case 'e': case 'E': shift = 60; p++; break;
  default:
    if (!isspace ((unsigned char) *p))     /* blanks may follow, as below */
      return -EINVAL;
  }
  if (shift > 0) {
    /* Accept "K", "KB" and "KiB" alike: all mean 1024. */
    if (*p == 'i' && (p[1] == 'B' || p[1] == 'b'))
      p += 2;
    else if (*p == 'B' || *p == 'b')
      p++;
  }
  while (isspace ((unsigned char) *p))
    p++;
  if (*p != '\0')
    return -EINVAL;
  mult = UINT64_C (1) << shift;
  if (overflow || v > (uint64_t) INT64_MAX / mult)
    return -ERANGE;
  *out = v * mult;
  return 0;
}

/* gs_format_size - see config.h. */
char *
gs_format_size (uint64_t bytes, char *buf, size_t buflen)
{
  static const char units[] = "KMGTPE";
  int u = -1;

  while (bytes != 0 && bytes % 1024 == 0 && u < 5) {
    bytes /= 1024;
    u++;
  }
  if (u < 0)
    snprintf (buf, buflen, "%" PRIu64, bytes);
  else
    snprintf (buf, buflen, "%" PRIu64 "%c", bytes, units[u]);
  return buf;
}

static int
parse_int (const char *value, long min, long max, long *out)
{
  char *end;
  long v;

  errno = 0;
  v = strtol (value, &end, 10);
  if (errno != 0 || end == value || *end != '\0' || v < min || v > max)
    return -EINVAL;
  *out = v;
  return 0;
}

static int
set_key (struct gs_config *cfg, const char *key, const char *value,
         char *err, size_t errlen)
{
  uint64_t bytes;
  long n;
  int r;

  if (strcmp (key, "size") == 0) {
    r = gs_parse_size (value, &bytes);
    if (r == -ERANGE || (r == 0 && bytes > GS_MAX_SIZE))
      return gs_errmsg (err, errlen, -EINVAL,
                   "size: '%s' is too large (at most %" PRIu64 " bytes, "
                   "2^63-4096)", value, (uint64_t) GS_MAX_SIZE);
    if (r < 0)
      return gs_errmsg (err, errlen, -EINVAL,
                   "size: '%s' is not a size (use e.g. 64G)", value);
    if (bytes == 0 || bytes % GS_SLOT_SIZE != 0)
      return gs_errmsg (err, errlen, -EINVAL,
                   "size: %" PRIu64 " is not a positive multiple of the "
                   "%u-byte slot size (sizes are refused, not rounded)",
                   bytes, GS_SLOT_SIZE);
    cfg->size = bytes;
    return 0;
  }
  if (strcmp (key, "ram-limit") == 0) {
    r = gs_parse_size (value, &bytes);
    if (r < 0)
      return gs_errmsg (err, errlen, -EINVAL,
                   "ram-limit: '%s' is not a size (use e.g. 2G)", value);
    if (bytes < GS_MIN_RAM_LIMIT)
      return gs_errmsg (err, errlen, -EINVAL,
                   "ram-limit: %" PRIu64 " is below the minimum of 256K "
                   "(0 is not allowed either)", bytes);
    cfg->ram_limit = bytes;
    return 0;
  }
  if (strcmp (key, "metadata-limit") == 0) {
    r = gs_parse_size (value, &bytes);
    if (r < 0)
      return gs_errmsg (err, errlen, -EINVAL,
                   "metadata-limit: '%s' is not a size (use e.g. 256M, or 0 "
                   "for no cap)", value);
    if (bytes != 0 && bytes < 64 * 1024)
      return gs_errmsg (err, errlen, -EINVAL,
                   "metadata-limit: %" PRIu64 " is below the minimum of 64K "
                   "(0 means no cap)", bytes);
    cfg->metadata_limit = bytes;
    return 0;
  }
  if (strcmp (key, "compression-level") == 0) {
    if (parse_int (value, ZSTD_minCLevel (), ZSTD_maxCLevel (), &n) < 0)
      return gs_errmsg (err, errlen, -EINVAL,
                   "compression-level: '%s' is not a zstd level (%d..%d)",
                   value, ZSTD_minCLevel (), ZSTD_maxCLevel ());
    cfg->compression_level = (int) n;
    return 0;
  }
  if (strcmp (key, "compact-threshold") == 0) {
    if (parse_int (value, 1, 99, &n) < 0)
      return gs_errmsg (err, errlen, -EINVAL,
                   "compact-threshold: '%s' is not a percentage from 1 to 99",
                   value);
    cfg->compact_threshold = (unsigned) n;
    return 0;
  }
  if (strcmp (key, "recompress-level") == 0) {
    if (parse_int (value, 0, ZSTD_maxCLevel (), &n) < 0)
      return gs_errmsg (err, errlen, -EINVAL,
                   "recompress-level: '%s' is not 0 (off) or a zstd level "
                   "(1..%d)", value, ZSTD_maxCLevel ());
    cfg->recompress_level = (int) n;
    return 0;
  }
  if (strcmp (key, "recompress-cpu") == 0) {
    if (parse_int (value, 1, 100, &n) < 0)
      return gs_errmsg (err, errlen, -EINVAL,
                   "recompress-cpu: '%s' is not a percentage from 1 to 100",
                   value);
    cfg->recompress_cpu = (unsigned) n;
    return 0;
  }
  if (strcmp (key, "backing") == 0) {
    char *copy;
    if (value[0] == '\0')
      return gs_errmsg (err, errlen, -EINVAL, "backing: empty path");
    if (cfg->nbacking == GS_CONFIG_MAX_BACKINGS)
      return gs_errmsg (err, errlen, -EINVAL, "backing: at most %d backings",
                   GS_CONFIG_MAX_BACKINGS);
    copy = strdup (value);
    if (!copy)
      return gs_errmsg (err, errlen, -ENOMEM, "backing: out of memory");
    cfg->backing[cfg->nbacking++] = copy;
    return 0;
  }
  if (strcmp (key, "backing-size") == 0) {
    r = gs_parse_size (value, &bytes);
    if (r < 0 || bytes < GS_SLOT_SIZE)
      return gs_errmsg (err, errlen, -EINVAL,
                   "backing-size: '%s' is not a size of at least 4096 bytes",
                   value);
    cfg->backing_size = bytes - bytes % GS_SLOT_SIZE;
    return 0;
  }
  if (strcmp (key, "punch-holes") == 0 || strcmp (key, "fault-injection") == 0
      || strcmp (key, "encrypt") == 0) {
    bool b;
    if (parse_bool (value, &b) < 0)
      return gs_errmsg (err, errlen, -EINVAL,
                   "%s: '%s' is not a boolean (true or false)", key, value);
    if (key[0] == 'p')
      cfg->punch_holes = b;
    else if (key[0] == 'e')
      cfg->encrypt = b;
    else
      cfg->fault_injection = b;
    return 0;
  }
  if (strcmp (key, "writeback-high") == 0 || strcmp (key, "writeback-low") == 0) {
    if (parse_int (value, 1, 100, &n) < 0)
      return gs_errmsg (err, errlen, -EINVAL,
                   "%s: '%s' is not a percentage from 1 to 100", key, value);
    if (strcmp (key, "writeback-high") == 0)
      cfg->writeback_high = (unsigned) n;
    else
      cfg->writeback_low = (unsigned) n;
    return 0;
  }
  if (strcmp (key, "control") == 0) {
    char *copy;
    if (value[0] == '\0')
      return gs_errmsg (err, errlen, -EINVAL, "control: empty path");
    copy = strdup (value);
    if (!copy)
      return gs_errmsg (err, errlen, -ENOMEM, "control: out of memory");
    free (cfg->control);
    cfg->control = copy;
    return 0;
  }
  if (strcmp (key, "name") == 0) {
    if (!name_ok (value))
      return gs_errmsg (err, errlen, -EINVAL,
                        "name: '%s' is not a name (1 to %d letters, digits, "
                        "'_', '.', '-'; not starting with '.' or '-')",
                        value, GS_NAME_MAX);
    return set_string (&cfg->name, key, value, err, errlen);
  }
  if (strcmp (key, "metrics-listen") == 0) {
    const char *colon = strrchr (value, ':');

    if (colon == NULL || colon == value || colon[1] == '\0')
      return gs_errmsg (err, errlen, -EINVAL,
                        "metrics-listen: '%s' is not ADDR:PORT (as "
                        "127.0.0.1:9101 or [::1]:9101)", value);
    return set_string (&cfg->metrics_listen, key, value, err, errlen);
  }
  if (strcmp (key, "tls-psk") == 0 || strcmp (key, "tls-username") == 0
      || strcmp (key, "tls-certificates") == 0) {
    if (value[0] == '\0')
      return gs_errmsg (err, errlen, -EINVAL, "%s: empty value", key);
    return set_string (key[4] == 'p' ? &cfg->tls_psk
                       : key[4] == 'u' ? &cfg->tls_username
                       : &cfg->tls_certificates, key, value, err, errlen);
  }
  if (strcmp (key, "remote-timeout") == 0) {
    if (parse_int (value, 1, GS_REMOTE_TIMEOUT_MAX, &n) < 0)
      return gs_errmsg (err, errlen, -EINVAL,
                        "remote-timeout: '%s' is not a number of seconds "
                        "from 1 to %d", value, GS_REMOTE_TIMEOUT_MAX);
    cfg->remote_timeout = (unsigned) n;
    return 0;
  }
  return gs_errmsg (err, errlen, -ENOENT,
               "%s: unknown key (see --help for the keys)", key);
}

/* gs_config_metadata_limit - see config.h. */
uint64_t
gs_config_metadata_limit (const struct gs_config *cfg)
{
  uint64_t v;

  if (cfg->metadata_limit != GS_METADATA_LIMIT_AUTO)
    return cfg->metadata_limit;
  v = cfg->ram_limit / 16;
  return v < GS_MIN_METADATA_LIMIT_AUTO ? GS_MIN_METADATA_LIMIT_AUTO : v;
}

/* gs_config_set - see config.h. */
int
gs_config_set (struct gs_config *cfg, const char *key, const char *value,
               char *err, size_t errlen)
{
  int r = set_key (cfg, key, value, err, errlen);
  uint32_t bit = key_bit (key);

  if (r < 0)
    return r;
  if ((cfg->given & bit) && bit != key_bit ("backing"))
    cfg->given_twice |= bit;
  cfg->given |= bit;
  return 0;
}

/* gs_config_warnings - see config.h. */
int
gs_config_warnings (const struct gs_config *cfg, char *buf, size_t buflen)
{
  char a[32];
  size_t used = 0;
  int n = 0;
  size_t i;

#define WARN(...)                                                       \
  do {                                                                  \
    n++;                                                                \
    if (used < buflen)                                                  \
      used += (size_t) snprintf (buf + used, buflen - used, __VA_ARGS__); \
  } while (0)

  if (buflen > 0)
    buf[0] = '\0';
  for (i = 0; i < NKEYS; i++)
    if (cfg->given_twice & (UINT32_C (1) << i))
      WARN ("%s: given more than once: the last value counts\n",
            key_names[i]);
  if (cfg->ram_limit > physical_ram ())
    WARN ("ram-limit: %s is more than this machine's memory (%.1f GiB): "
          "the RAM tier could take all of it\n",
          gs_format_size (cfg->ram_limit, a, sizeof a),
          (double) physical_ram () / GIB);
  if ((cfg->given & key_bit ("backing-size")) && cfg->nbacking == 0)
    WARN ("backing-size: given without backing=: it has no effect\n");
  if (cfg->recompress_level != 0
      && cfg->recompress_level <= cfg->compression_level)
    WARN ("recompress-level: %d is not above compression-level (%d): cold "
          "pages will rarely shrink\n", cfg->recompress_level,
          cfg->compression_level);
  if ((cfg->given & key_bit ("recompress-cpu")) && cfg->recompress_level == 0)
    WARN ("recompress-cpu: given without recompress-level=: it has no "
          "effect\n");
#undef WARN
  return n;
}

/* gs_config_check - see config.h. */
int
gs_config_check (const struct gs_config *cfg, char *err, size_t errlen)
{
  if (cfg->size == 0 || cfg->size % GS_SLOT_SIZE != 0 || cfg->size > GS_MAX_SIZE)
    return gs_errmsg (err, errlen, -EINVAL, "size: %" PRIu64 " is not valid",
                 cfg->size);
  if (cfg->ram_limit < GS_MIN_RAM_LIMIT)
    return gs_errmsg (err, errlen, -EINVAL, "ram-limit: %" PRIu64 " is below the "
                 "minimum of 256K", cfg->ram_limit);
  if (cfg->writeback_low >= cfg->writeback_high)
    return gs_errmsg (err, errlen, -EINVAL,
                 "writeback-low: %u%% must be below writeback-high (%u%%)",
                 cfg->writeback_low, cfg->writeback_high);
  return 0;
}
