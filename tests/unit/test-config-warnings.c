/* Configuration warnings (gs_config_warnings, lib/config.c): a key given
 * twice, ram-limit above physical memory (read independently from
 * /proc/meminfo), backing-size without a backing; none for a plain
 * configuration or for backing= given several times. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ghostswap/config.h"
#include "test.h"

static void
set (struct gs_config *cfg, const char *key, const char *value)
{
  char err[256];

  CHECKF (gs_config_set (cfg, key, value, err, sizeof err) == 0,
          "%s=%s: %s", key, value, err);
}

/* warnings - the warnings of @cfg, in a static buffer, and their count. */
static const char *
warnings (const struct gs_config *cfg, int *n)
{
  static char buf[4096];

  *n = gs_config_warnings (cfg, buf, sizeof buf);
  return buf;
}

static unsigned long long
meminfo_total (void)
{
  FILE *fp = fopen ("/proc/meminfo", "r");
  unsigned long long kib = 0;
  char line[256];

  if (fp == NULL)
    return 0;
  while (fgets (line, sizeof line, fp))
    if (sscanf (line, "MemTotal: %llu kB", &kib) == 1)
      break;
  fclose (fp);
  return kib * 1024;
}

int
main (int argc, char **argv)
{
  struct gs_config cfg;
  unsigned long long ram = meminfo_total ();
  char big[64];
  const char *w;
  int n;

  TEST_INIT (argc, argv);

  /* Nothing to say. */
  gs_config_init (&cfg);
  w = warnings (&cfg, &n);
  CHECKF (n == 0 && w[0] == '\0', "defaults: %s", w);
  set (&cfg, "size", "1G");
  set (&cfg, "ram-limit", "64M");
  set (&cfg, "backing", "/var/tmp/a");
  set (&cfg, "backing", "/var/tmp/b");
  set (&cfg, "backing-size", "1G");
  w = warnings (&cfg, &n);
  CHECKF (n == 0, "plain configuration: %s", w);
  gs_config_free (&cfg);

  /* A key given twice: named, once however often. */
  gs_config_init (&cfg);
  set (&cfg, "size", "1G");
  set (&cfg, "size", "2G");
  set (&cfg, "size", "4G");
  set (&cfg, "compression-level", "3");
  w = warnings (&cfg, &n);
  CHECKF (n == 1 && strstr (w, "size: given more than once") != NULL
          && strchr (w, '\n') == w + strlen (w) - 1, "size twice: %s", w);
  CHECK (cfg.size == 4ull << 30);
  gs_config_free (&cfg);

  /* backing-size without a backing. */
  gs_config_init (&cfg);
  set (&cfg, "backing-size", "8G");
  w = warnings (&cfg, &n);
  CHECKF (n == 1 && strncmp (w, "backing-size: ", 14) == 0,
          "backing-size alone: %s", w);
  gs_config_free (&cfg);

  /* recompress-level not above compression-level; recompress-cpu with
   * recompression off.  Above it, with it on: no warning. */
  gs_config_init (&cfg);
  set (&cfg, "compression-level", "3");
  set (&cfg, "recompress-level", "3");
  w = warnings (&cfg, &n);
  CHECKF (n == 1 && strncmp (w, "recompress-level: ", 18) == 0,
          "recompress-level=3 at level 3: %s", w);
  set (&cfg, "recompress-level", "19");
  set (&cfg, "recompress-cpu", "50");
  w = warnings (&cfg, &n);
  CHECKF (n == 1 && strstr (w, "recompress-level: given more than once"),
          "recompress-level=19: %s", w);
  gs_config_free (&cfg);
  gs_config_init (&cfg);
  set (&cfg, "recompress-cpu", "50");
  w = warnings (&cfg, &n);
  CHECKF (n == 1 && strncmp (w, "recompress-cpu: ", 16) == 0,
          "recompress-cpu alone: %s", w);
  gs_config_free (&cfg);

  /* ram-limit above the machine's memory; just below it is fine. */
  if (ram == 0)
    SKIP ("no MemTotal in /proc/meminfo");
  gs_config_init (&cfg);
  snprintf (big, sizeof big, "%lluK", ram / 1024 * 2);
  set (&cfg, "ram-limit", big);
  w = warnings (&cfg, &n);
  CHECKF (n == 1 && strncmp (w, "ram-limit: ", 11) == 0
          && strstr (w, "more than this machine's memory") != NULL,
          "ram-limit=%s: %s", big, w);
  snprintf (big, sizeof big, "%lluK", ram / 1024 / 2);
  set (&cfg, "ram-limit", big);
  w = warnings (&cfg, &n);
  CHECKF (n == 1 && strstr (w, "ram-limit: given more than once") != NULL,
          "ram-limit=%s (second): %s", big, w);
  gs_config_free (&cfg);

  /* Several warnings: several lines, counted. */
  gs_config_init (&cfg);
  set (&cfg, "backing-size", "8G");
  set (&cfg, "writeback-low", "10");
  set (&cfg, "writeback-low", "20");
  w = warnings (&cfg, &n);
  CHECKF (n == 2, "two warnings: %s", w);
  /* A short buffer: still counted, still terminated. */
  {
    char small[8];
    CHECK (gs_config_warnings (&cfg, small, sizeof small) == 2);
    CHECK (strlen (small) < sizeof small);
  }
  gs_config_free (&cfg);

  printf ("%s: ok\n", test_argv0);
  return 0;
}
