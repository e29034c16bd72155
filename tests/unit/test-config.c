/* Configuration parsing (lib/config.c): sizes with suffixes, errors that
 * name their key, limits of the size key, gs_format_size round trips. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ghostswap/config.h"
#include "ghostswap/device.h"
#include "test.h"

static void
size_is (const char *str, uint64_t want)
{
  uint64_t v = 12345;
  int r = gs_parse_size (str, &v);

  CHECKF (r == 0, "gs_parse_size (\"%s\") = %d", str, r);
  CHECKF (v == want, "gs_parse_size (\"%s\") = %" PRIu64 ", want %" PRIu64,
          str, v, want);
}

static void
size_fails (const char *str, int want)
{
  uint64_t v = 12345;
  int r = gs_parse_size (str, &v);

  CHECKF (r == want, "gs_parse_size (\"%s\") = %d, want %d", str, r, want);
  CHECKF (v == 12345, "gs_parse_size (\"%s\") changed its output on error", str);
}

/* gs_config_set fails with @want, names @key in the message, and leaves
 * the config unchanged. */
static void
set_fails (const char *key, const char *value, int want)
{
  struct gs_config cfg, copy;
  char err[256];
  int r;

  /* Zeroed first, so that padding compares equal too. */
  memset (&cfg, 0, sizeof cfg);
  gs_config_init (&cfg);
  memcpy (&copy, &cfg, sizeof cfg);
  memset (err, 0, sizeof err);
  r = gs_config_set (&cfg, key, value, err, sizeof err);
  CHECKF (r == want, "%s=%s: %d, want %d", key, value, r, want);
  CHECKF (strstr (err, key) != NULL, "%s=%s: message \"%s\" does not name the "
          "key", key, value, err);
  CHECKF (memcmp (&cfg, &copy, sizeof cfg) == 0, "%s=%s changed the config "
          "on error", key, value);
  gs_config_free (&cfg);
}

static struct gs_config
set_ok (const char *key, const char *value)
{
  struct gs_config cfg;
  char err[256] = "";
  int r;

  gs_config_init (&cfg);
  r = gs_config_set (&cfg, key, value, err, sizeof err);
  CHECKF (r == 0, "%s=%s: %d (%s)", key, value, r, err);
  return cfg;
}

int
main (int argc, char *argv[])
{
  static const struct { const char *suffix; unsigned shift; } units[] = {
    { "", 0 }, { "b", 0 }, { "B", 0 }, { "k", 10 }, { "K", 10 }, { "KiB", 10 },
    { "KB", 10 }, { "kb", 10 }, { "M", 20 }, { "m", 20 }, { "MiB", 20 },
    { "G", 30 }, { "g", 30 }, { "GiB", 30 }, { "T", 40 }, { "TiB", 40 },
    { "P", 50 }, { "PiB", 50 }, { "E", 60 }, { "EiB", 60 },
  };
  struct gs_config cfg;
  char buf[64], str[64];
  uint64_t seed, s, v;
  unsigned i, k;

  TEST_INIT (argc, argv);
  seed = test_seed ();
  s = seed;

  /* --- gs_parse_size --- */
  size_is ("0", 0);
  size_is ("4096", 4096);
  size_is ("1k", 1024);
  size_is ("1K", 1024);
  size_is ("1KiB", 1024);
  size_is ("2M", 2ull << 20);
  size_is ("3G", 3ull << 30);
  size_is ("4T", 4ull << 40);
  size_is ("5P", 5ull << 50);
  size_is ("7E", 7ull << 60);
  size_is ("64G", 64ull << 30);
  /* Blanks around, with or without a unit (found by fuzz-config). */
  size_is (" 16 ", 16);
  size_is ("\t4096\t", 4096);
  size_is (" 16K ", 16ull << 10);
  size_is ("9223372036854775807", (uint64_t) INT64_MAX);
  size_is ("9223372036854771712", GS_MAX_SIZE);
  for (i = 0; i < sizeof units / sizeof units[0]; i++)
    for (k = 0; k < 20; k++) {
      uint64_t n = rnd_below (&s, (uint64_t) INT64_MAX >> units[i].shift);
      if (k < 3)
        n = k;
      snprintf (str, sizeof str, "%" PRIu64 "%s", n, units[i].suffix);
      size_is (str, n << units[i].shift);
    }
  /* Out of range: 63 bits. */
  size_fails ("8E", -ERANGE);
  size_fails ("9223372036854775808", -ERANGE);
  size_fails ("18446744073709551615", -ERANGE);
  size_fails ("18446744073709551616", -ERANGE);
  size_fails ("99999999999999999999999", -ERANGE);
  size_fails ("8192P", -ERANGE);
  size_fails ("8388608T", -ERANGE);
  size_fails ("16E", -ERANGE);
  size_fails ("17179869184G", -ERANGE);
  /* Junk. */
  size_fails ("", -EINVAL);
  size_fails (" ", -EINVAL);
  size_fails ("abc", -EINVAL);
  size_fails ("-1", -EINVAL);
  size_fails ("-1G", -EINVAL);
  size_fails ("+1", -EINVAL);
  size_fails ("1X", -EINVAL);
  /* Junk after too many digits is junk, not a number out of range (found
   * by tests/fuzz/fuzz-config). */
  size_fails ("99999999999999999999999x", -EINVAL);
  size_fails ("77777777777777777777777777777on", -EINVAL);
  size_fails ("99999999999999999999999 G", -EINVAL);
  size_fails ("1Gx", -EINVAL);
  size_fails ("1GG", -EINVAL);
  size_fails ("1Ki", -EINVAL);
  size_fails ("1.5G", -EINVAL);
  size_fails ("0x1000", -EINVAL);
  size_fails ("G", -EINVAL);
  size_fails ("1bB", -EINVAL);
  size_fails ("1 2", -EINVAL);

  /* --- gs_format_size round trips --- */
  CHECK (strcmp (gs_format_size (0, buf, sizeof buf), "0") == 0);
  CHECK (strcmp (gs_format_size (4096, buf, sizeof buf), "4K") == 0);
  CHECK (strcmp (gs_format_size (2ull << 30, buf, sizeof buf), "2G") == 0);
  CHECK (strcmp (gs_format_size (1536ull << 20, buf, sizeof buf), "1536M") == 0);
  CHECK (strcmp (gs_format_size (1ull << 62, buf, sizeof buf), "4E") == 0);
  CHECK (strcmp (gs_format_size (1000, buf, sizeof buf), "1000") == 0);
  CHECK (strcmp (gs_format_size (GS_MAX_SIZE, buf, sizeof buf),
                 "9007199254740988K") == 0);
  CHECK (gs_format_size (123, buf, sizeof buf) == buf);
  for (k = 0; k < 20000; k++) {
    unsigned shift = (unsigned) rnd_below (&s, 63);
    v = rnd_next (&s) >> (1 + rnd_below (&s, 63));
    v <<= rnd_below (&s, 2) ? shift : 0;
    v &= (uint64_t) INT64_MAX;
    if (k < 64)
      v = 1ull << (k % 63);
    gs_format_size (v, buf, sizeof buf);
    {
      uint64_t back = 0;
      CHECKF (gs_parse_size (buf, &back) == 0 && back == v,
              "%" PRIu64 " -> \"%s\" -> %" PRIu64, v, buf, back);
    }
    /* The largest exact unit: the number part is not a multiple of 1024
     * unless the unit is E. */
    {
      char *end;
      uint64_t num = strtoull (buf, &end, 10);
      if (v != 0 && *end != 'E')
        CHECKF (num % 1024 != 0, "\"%s\" is not the largest unit", buf);
    }
  }

  /* --- gs_config_set --- */
  cfg = set_ok ("size", "64G");
  CHECK (cfg.size == 64ull << 30);
  cfg = set_ok ("size", "4096");
  CHECK (cfg.size == 4096);
  cfg = set_ok ("size", "9223372036854771712");
  CHECK (cfg.size == GS_MAX_SIZE);
  cfg = set_ok ("size", "4E");
  CHECK (cfg.size == 4ull << 60);
  set_fails ("size", "8E", -EINVAL);
  set_fails ("size", "9223372036854775807", -EINVAL);
  set_fails ("size", "9223372036854775808", -EINVAL);
  set_fails ("size", "4097", -EINVAL);
  set_fails ("size", "1000", -EINVAL);
  set_fails ("size", "6000", -EINVAL);
  set_fails ("size", "0", -EINVAL);
  set_fails ("size", "lots", -EINVAL);
  set_fails ("size", "", -EINVAL);
  for (k = 0; k < 1000; k++) {
    uint64_t n = 1 + rnd_below (&s, GS_MAX_SIZE - 1);
    int r;
    char err[128];
    snprintf (str, sizeof str, "%" PRIu64, n);
    gs_config_init (&cfg);
    r = gs_config_set (&cfg, "size", str, err, sizeof err);
    if (n % 4096 == 0)
      CHECKF (r == 0 && cfg.size == n, "size=%s", str);
    else
      CHECKF (r == -EINVAL && strstr (err, "size"), "size=%s: %d", str, r);
  }

  cfg = set_ok ("ram-limit", "1M");
  CHECK (cfg.ram_limit == 1 << 20);
  cfg = set_ok ("ram-limit", "256K");
  CHECK (cfg.ram_limit == GS_MIN_RAM_LIMIT);
  set_fails ("ram-limit", "1", -EINVAL);
  set_fails ("ram-limit", "262143", -EINVAL);
  set_fails ("ram-limit", "0", -EINVAL);
  set_fails ("ram-limit", "0G", -EINVAL);
  set_fails ("ram-limit", "x", -EINVAL);
  set_fails ("ram-limit", "8E", -EINVAL);

  cfg = set_ok ("compression-level", "1");
  CHECK (cfg.compression_level == 1);
  cfg = set_ok ("compression-level", "19");
  CHECK (cfg.compression_level == 19);
  cfg = set_ok ("compression-level", "22");
  CHECK (cfg.compression_level == 22);
  cfg = set_ok ("compression-level", "-5");
  CHECK (cfg.compression_level == -5);
  set_fails ("compression-level", "23", -EINVAL);
  set_fails ("compression-level", "1000", -EINVAL);
  set_fails ("compression-level", "-10000000", -EINVAL);
  set_fails ("compression-level", "99999999999999999999", -EINVAL);
  set_fails ("compression-level", "", -EINVAL);
  set_fails ("compression-level", "fast", -EINVAL);
  set_fails ("compression-level", "3x", -EINVAL);

  cfg = set_ok ("compact-threshold", "1");
  CHECK (cfg.compact_threshold == 1);
  cfg = set_ok ("compact-threshold", "99");
  CHECK (cfg.compact_threshold == 99);
  set_fails ("compact-threshold", "0", -EINVAL);
  set_fails ("compact-threshold", "100", -EINVAL);
  set_fails ("compact-threshold", "-1", -EINVAL);
  set_fails ("compact-threshold", "50%", -EINVAL);

  /* recompress-level=: 0 (off, the default) or a positive zstd level;
   * recompress-cpu=: a percentage of one core, default 10. */
  gs_config_init (&cfg);
  CHECK (cfg.recompress_level == 0 && cfg.recompress_cpu == 10);
  cfg = set_ok ("recompress-level", "0");
  CHECK (cfg.recompress_level == 0);
  cfg = set_ok ("recompress-level", "19");
  CHECK (cfg.recompress_level == 19);
  cfg = set_ok ("recompress-level", "22");
  CHECK (cfg.recompress_level == 22);
  set_fails ("recompress-level", "23", -EINVAL);
  set_fails ("recompress-level", "-1", -EINVAL);
  set_fails ("recompress-level", "", -EINVAL);
  set_fails ("recompress-level", "high", -EINVAL);
  set_fails ("recompress-level", "99999999999999999999", -EINVAL);
  cfg = set_ok ("recompress-cpu", "1");
  CHECK (cfg.recompress_cpu == 1);
  cfg = set_ok ("recompress-cpu", "100");
  CHECK (cfg.recompress_cpu == 100);
  set_fails ("recompress-cpu", "0", -EINVAL);
  set_fails ("recompress-cpu", "101", -EINVAL);
  set_fails ("recompress-cpu", "10%", -EINVAL);

  /* encrypt=: on unless turned off; booleans only. */
  gs_config_init (&cfg);
  CHECK (cfg.encrypt);
  cfg = set_ok ("encrypt", "false");
  CHECK (!cfg.encrypt);
  cfg = set_ok ("encrypt", "off");
  CHECK (!cfg.encrypt);
  cfg = set_ok ("encrypt", "0");
  CHECK (!cfg.encrypt);
  cfg = set_ok ("encrypt", "TRUE");
  CHECK (cfg.encrypt);
  cfg = set_ok ("encrypt", "yes");
  CHECK (cfg.encrypt);
  CHECK (cfg.punch_holes && !cfg.fault_injection);
  set_fails ("encrypt", "aes", -EINVAL);
  set_fails ("encrypt", "", -EINVAL);
  set_fails ("encrypt", "2", -EINVAL);

  /* Remote backings: remote-timeout (seconds, 1..3600, default 30) and
   * the TLS files (any non-empty string). */
  gs_config_init (&cfg);
  CHECK (cfg.remote_timeout == 30 && !cfg.tls_psk && !cfg.tls_username
         && !cfg.tls_certificates);
  cfg = set_ok ("remote-timeout", "1");
  CHECK (cfg.remote_timeout == 1);
  cfg = set_ok ("remote-timeout", "3600");
  CHECK (cfg.remote_timeout == 3600);
  set_fails ("remote-timeout", "0", -EINVAL);
  set_fails ("remote-timeout", "3601", -EINVAL);
  set_fails ("remote-timeout", "30s", -EINVAL);
  set_fails ("remote-timeout", "", -EINVAL);
  cfg = set_ok ("tls-psk", "/etc/ghostswap/keys.psk");
  CHECK (cfg.tls_psk && strcmp (cfg.tls_psk, "/etc/ghostswap/keys.psk") == 0);
  gs_config_free (&cfg);
  cfg = set_ok ("tls-username", "node7");
  CHECK (cfg.tls_username && strcmp (cfg.tls_username, "node7") == 0);
  gs_config_free (&cfg);
  cfg = set_ok ("tls-certificates", "/etc/pki/ghostswap");
  CHECK (cfg.tls_certificates
         && strcmp (cfg.tls_certificates, "/etc/pki/ghostswap") == 0);
  gs_config_free (&cfg);
  set_fails ("tls-psk", "", -EINVAL);
  set_fails ("tls-username", "", -EINVAL);
  set_fails ("tls-certificates", "", -EINVAL);
  /* A URI is a backing like a path (checked when it is attached). */
  cfg = set_ok ("backing", "nbd+unix:///e?socket=/run/remote.sock");
  CHECK (cfg.nbacking == 1
         && strcmp (cfg.backing[0], "nbd+unix:///e?socket=/run/remote.sock")
            == 0);
  gs_config_free (&cfg);

  set_fails ("sizes", "1G", -ENOENT);
  set_fails ("no-such-key", "1", -ENOENT);
  set_fails ("Size", "1G", -ENOENT);
  set_fails ("", "1", -ENOENT);

  /* A tiny error buffer is not overrun, and none at all is allowed. */
  {
    char tiny[4] = { 'x', 'x', 'x', 'x' };
    gs_config_init (&cfg);
    CHECK (gs_config_set (&cfg, "size", "1000", tiny, 3) == -EINVAL);
    CHECK (tiny[3] == 'x' && tiny[2] == '\0');
    CHECK (gs_config_set (&cfg, "size", "1000", NULL, 0) == -EINVAL);
  }

  /* Defaults pass the check and make a device. */
  gs_config_init (&cfg);
  {
    char err[128] = "";
    struct gs_device *dev;
    CHECKF (gs_config_check (&cfg, err, sizeof err) == 0, "%s", err);
    CHECK (cfg.size > 0 && cfg.size % 4096 == 0 && cfg.ram_limit > 0);
    CHECK (cfg.compact_threshold >= 1 && cfg.compact_threshold <= 99);
    CHECK_OK (gs_device_create (&cfg, &dev));
    CHECK (gs_device_size (dev) == cfg.size);
    gs_device_destroy (dev);
    /* Bad sizes are refused by the device too. */
    cfg.size = 4097;
    CHECK (gs_device_create (&cfg, &dev) == -EINVAL);
    CHECK (gs_config_check (&cfg, err, sizeof err) == -EINVAL);
    cfg.size = GS_MAX_SIZE + 4096;
    CHECK (gs_device_create (&cfg, &dev) == -EINVAL);
    cfg.size = 0;
    CHECK (gs_device_create (&cfg, &dev) == -EINVAL);
    cfg.size = 4096;
    cfg.ram_limit = 0;
    CHECK (gs_device_create (&cfg, &dev) == -EINVAL);
    CHECK (gs_config_check (&cfg, err, sizeof err) == -EINVAL);
    CHECK (strstr (err, "ram-limit") != NULL);
    /* The largest size makes a device whose empty table is small. */
    cfg = test_config (GS_MAX_SIZE, 1 << 20);
    CHECK_OK (gs_device_create (&cfg, &dev));
    {
      struct gs_stats st;
      gs_get_stats (dev, &st);
      CHECK (st.size == GS_MAX_SIZE && st.slots == GS_MAX_SIZE / 4096);
      CHECKF (st.metadata_bytes < 1024 * 1024, "empty max device: %" PRIu64
              " bytes of metadata", st.metadata_bytes);
    }
    gs_device_destroy (dev);
  }
  /* The help text mentions every key. */
  {
    static const char *const keys[] = { "size=", "ram-limit=",
      "compression-level=", "compact-threshold=", "recompress-level=",
      "recompress-cpu=" };
    for (i = 0; i < sizeof keys / sizeof keys[0]; i++)
      CHECKF (strstr (gs_config_help, keys[i]) != NULL, "%s", keys[i]);
  }
  return 0;
}
