/* ghostswap control tests: the statistics fields are written once
 * (GS_STATS_FIELDS in ghostswap/stats.h) and every form agrees: the
 * text of gs_stats_format, the control socket's JSON ("stats") and the
 * metrics show every field, in the table's order, with the values of
 * gs_get_stats on a device with pages in every state. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ghostswap/device.h"
#include "ghostswap/service/control.h"
#include "ghostswap/service/metrics.h"
#include "jsonc_check.h"
#include "test.h"

static char answer_buf[256 * 1024];

int
main (int argc, char **argv)
{
  struct gs_config cfg = test_config (64 << 20, 16 << 20);
  struct gs_metrics_source src = { .name = "f", .frontend = "nbd",
                                   .transport = "unix" };
  unsigned char page[PAGE];
  struct gs_device *dev;
  struct json_object *doc, *stats;
  struct gs_stats st;
  char text[8192], err[128], *metrics, *line, *save = NULL;
  struct json_object_iterator it, end;
  size_t n, mlen;
  unsigned i, nfields = 0;
  uint64_t seed;

  TEST_INIT (argc, argv);
  seed = test_seed ();
  CHECK_OK (gs_device_create (&cfg, &dev));
  src.dev = dev;
  for (i = 0; i < 64; i++) {
    fill_kind (page, (enum page_kind) (i % KIND_COUNT), &seed);
    CHECK_OK (gs_pwrite (dev, page, PAGE, (uint64_t) i * PAGE));
  }
  CHECK_OK (gs_pread (dev, page, PAGE, 0));

  /* No background thread runs: the figures hold still between calls. */
  gs_get_stats (dev, &st);
  CHECK ((size_t) gs_stats_format (&st, text, sizeof text) < sizeof text);
  n = gs_control_handle (dev, &src, "stats", answer_buf, sizeof answer_buf);
  CHECK (n < sizeof answer_buf - 1);
  doc = jc_parse (answer_buf, n, err, sizeof err);
  CHECKF (doc != NULL, "%s", err);
  stats = jc_get (doc, "stats");
  CHECK (jc_is (stats, json_type_object));
  CHECK_OK (gs_metrics_collect (&src, &metrics, &mlen));

  /* The JSON's keys, in order, are the text's. */
  it = json_object_iter_begin (stats);
  end = json_object_iter_end (stats);
  for (line = strtok_r (text, "\n", &save); line;
       line = strtok_r (NULL, "\n", &save)) {
    char *sp = strchr (line, ' ');

    CHECK (sp != NULL);
    *sp = '\0';
    CHECKF (!json_object_iter_equal (&it, &end), "JSON lacks %s", line);
    CHECKF (strcmp (json_object_iter_peek_name (&it), line) == 0,
            "text has %s where JSON has %s", line,
            json_object_iter_peek_name (&it));
    json_object_iter_next (&it);
    nfields++;
  }
  CHECK (json_object_iter_equal (&it, &end));

  /* Every field, from the table: the text (rewritten above, so check
   * the count), the JSON value, and the metric sample. */
  i = 0;
#define GS_TEST_U(field, metric, kind, label)                           \
  CHECKF (jc_u64 (stats, #field) == st.field,                           \
          #field ": JSON %" PRIu64 ", struct %" PRIu64,                 \
          jc_u64 (stats, #field), st.field);
#define GS_TEST_D(field, metric, kind, label)                           \
  CHECKF (jc_get (stats, #field) != NULL                                \
          && json_object_get_double (jc_get (stats, #field)) == st.field, \
          #field ": JSON %.17g, struct %.17g",                          \
          json_object_get_double (jc_get (stats, #field)), st.field);
#define GS_TEST_FIELD(type, field, metric, kind, label, help)           \
  i++;                                                                  \
  GS_TEST_##type (field, metric, kind, label)                           \
  if (strcmp (#kind, "NONE") != 0) {                                    \
    char want[256];                                                     \
    snprintf (want, sizeof want, "\nghostswap_%s{name=\"f\"%s%s} ",     \
              metric, label[0] ? "," : "", label);                      \
    CHECKF (strstr (metrics, want) != NULL, "no metric for " #field     \
            " (%s)", want + 1);                                         \
  }
  GS_STATS_FIELDS (GS_TEST_FIELD)
#undef GS_TEST_FIELD
#undef GS_TEST_U
#undef GS_TEST_D
  CHECKF (i == nfields, "%u fields in the table, %u in the text", i, nfields);
  CHECK (sizeof (struct gs_stats) == i * 8);
  CHECK (st.slots_ram > 0 && st.slots_same > 0 && st.reads == 1);

  free (metrics);
  jc_free (doc);
  gs_device_destroy (dev);
  printf ("%s: ok (%u fields)\n", test_argv0, nfields);
  return 0;
}
