/* ghostswap control tests: the Prometheus exposition (lib/metrics.c).
 *
 * Checks the figures land in the right samples, that label values are
 * escaped, and that the text follows the format: every sample belongs to
 * a family announced by # HELP and # TYPE, and every line parses. */
#include <ctype.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "test.h"

static bool
contains_line (const char *text, const char *line)
{
  size_t n = strlen (line);
  const char *p = text;

  while ((p = strstr (p, line)) != NULL) {
    if ((p == text || p[-1] == '\n') && p[n] == '\n')
      return true;
    p++;
  }
  return false;
}

#define CHECK_LINE(text, line) \
  CHECKF (contains_line (text, line), "no line '%s' in:\n%s", line, text)

/* check_format - every line is a comment (# HELP / # TYPE) or a sample
 * name{label="value",...} number, whose family was typed before it. */
static void
check_format (const char *text)
{
  char typed[200][80];
  unsigned ntyped = 0, i;
  const char *p = text, *nl;

  CHECK (text[strlen (text) - 1] == '\n');
  for (; *p; p = nl + 1) {
    char name[80];
    size_t n = 0;
    bool found = false;
    char *end;

    nl = strchr (p, '\n');
    CHECK (nl != NULL);
    if (strncmp (p, "# HELP ", 7) == 0)
      continue;
    if (strncmp (p, "# TYPE ", 7) == 0) {
      CHECK (sscanf (p + 7, "%79s", typed[ntyped]) == 1);
      CHECK (strncmp (typed[ntyped], "ghostswap_", 10) == 0);
      CHECK (strncmp (p + 7 + strlen (typed[ntyped]), " gauge\n", 7) == 0
             || strncmp (p + 7 + strlen (typed[ntyped]), " counter\n", 9) == 0);
      ntyped++;
      CHECK (ntyped < 200);
      continue;
    }
    CHECKF (*p != '#', "unknown comment: %.*s", (int) (nl - p), p);
    while (isalnum ((unsigned char) p[n]) || p[n] == '_')
      n++;
    CHECK (n > 0 && n < sizeof name);
    memcpy (name, p, n);
    name[n] = '\0';
    for (i = 0; i < ntyped; i++)
      if (strcmp (typed[i], name) == 0)
        found = true;
    CHECKF (found, "sample %s before its # TYPE", name);
    p += n;
    if (*p == '{') {
      /* label="value" pairs; a value may hold \\ \" \n escapes only. */
      p++;
      for (;;) {
        while (isalnum ((unsigned char) *p) || *p == '_')
          p++;
        CHECK (p[0] == '=' && p[1] == '"');
        p += 2;
        while (*p != '"') {
          CHECK (*p != '\n' && *p != '\0');
          if (*p == '\\') {
            CHECK (p[1] == '\\' || p[1] == '"' || p[1] == 'n');
            p++;
          }
          p++;
        }
        p++;
        if (*p == ',') {
          p++;
          continue;
        }
        CHECK (*p == '}');
        p++;
        break;
      }
    }
    CHECK (*p == ' ');
    p++;
    if (strncmp (p, "NaN\n", 4) != 0 && strncmp (p, "+Inf\n", 5) != 0
        && strncmp (p, "-Inf\n", 5) != 0) {
      strtod (p, &end);
      CHECKF (end == nl, "bad value: %.*s", (int) (nl - p), p);
    }
  }
}

int
main (int argc, char **argv)
{
  struct gs_stats st;
  struct gs_backing_info b[2];
  struct gs_drain_status d;
  char *text;
  size_t len;

  TEST_INIT (argc, argv);

  memset (&st, 0, sizeof st);
  st.size = 1 << 30;
  st.slots = 262144;
  st.slots_empty = 262000;
  st.slots_same = 100;
  st.slots_ram = 7;
  st.slots_backing = 11;
  st.backing_write_errors = 3;
  st.pool_bytes = 12345;
  st.compression_ratio = 3.5;
  st.pool_fragmentation = NAN;
  st.reads = 11;
  st.extents = UINT64_MAX;

  memset (b, 0, sizeof b);
  snprintf (b[0].path, sizeof b[0].path, "/a\"b\\c\nd");
  b[0].used = 5;
  b[0].healthy = true;
  snprintf (b[1].path, sizeof b[1].path, "/plain");
  b[1].used = 6;
  b[1].write_errors = 2;

  memset (&d, 0, sizeof d);
  d.running = true;
  d.total = 10;
  d.done = 4;
  d.bytes_per_sec = 1.5e9;

  CHECK_OK (gs_metrics_format (&st, b, 2, &d, &text, &len));
  CHECK (strlen (text) == len);
  check_format (text);
  CHECK_LINE (text, "# TYPE ghostswap_slots gauge");
  CHECK_LINE (text, "ghostswap_slots{state=\"ram\"} 7");
  CHECK_LINE (text, "ghostswap_slots{state=\"empty\"} 262000");
  CHECK_LINE (text, "ghostswap_slots{state=\"backing\"} 11");
  CHECK_LINE (text, "ghostswap_pool_bytes 12345");
  CHECK_LINE (text, "ghostswap_backing_errors_total{op=\"write\"} 3");
  CHECK_LINE (text, "ghostswap_size_bytes 1073741824");
  CHECK_LINE (text, "ghostswap_compression_ratio 3.5");
  CHECK_LINE (text, "ghostswap_pool_fragmentation_ratio NaN");
  CHECK_LINE (text, "# TYPE ghostswap_requests_total counter");
  CHECK_LINE (text, "ghostswap_requests_total{op=\"read\"} 11");
  CHECK_LINE (text, "ghostswap_requests_total{op=\"extents\"} "
              "18446744073709551615");
  CHECK_LINE (text, "ghostswap_backings 2");
  CHECK_LINE (text, "ghostswap_backing_used_slots{path=\"/a\\\"b\\\\c\\nd\"} 5");
  CHECK_LINE (text, "ghostswap_backing_used_slots{path=\"/plain\"} 6");
  CHECK_LINE (text, "ghostswap_backing_healthy{path=\"/plain\"} 0");
  CHECK_LINE (text, "ghostswap_backing_write_errors_total{path=\"/plain\"} 2");
  CHECK_LINE (text, "ghostswap_drain_running 1");
  CHECK_LINE (text, "ghostswap_drain_done_slots 4");
  CHECK_LINE (text, "ghostswap_drain_bytes_per_second 1500000000");
  free (text);

  /* No backing, no drain: no per-backing family, no drain figures. */
  CHECK_OK (gs_metrics_format (&st, NULL, 0, NULL, &text, &len));
  check_format (text);
  CHECK_LINE (text, "ghostswap_backings 0");
  CHECK (strstr (text, "{path=") == NULL);
  CHECK (strstr (text, "ghostswap_backing_used_slots") == NULL);
  CHECK (strstr (text, "ghostswap_drain_") == NULL);
  free (text);

  printf ("%s: ok\n", test_argv0);
  return 0;
}
