/* ghostswap control tests: the commands, through gs_control_handle.
 *
 * Good requests answer {"ok":true,...} with the documented fields; bad
 * ones (empty, unknown, missing or extra arguments, bad sizes and numbers,
 * control characters, invalid UTF-8, too long) answer {"ok":false,...}
 * with an error that names the command.  Every answer is one line of
 * valid JSON.  With a real backing file in a temporary directory, the
 * backing, drain and migrate commands run through the engine.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ghostswap/service/control.h"
#include "ghostswap/device.h"
#include "jsonc_check.h"
#include "test.h"

static char answer_buf[4 << 20];

/* ask - send @line; the answer must be one line of JSON with "ok". */
static struct json_object *
ask (struct gs_device *dev, const char *line)
{
  struct json_object *v;
  char err[128];
  size_t n;

  n = gs_control_handle (dev, NULL, line, answer_buf, sizeof answer_buf);
  CHECKF (n > 0 && n < sizeof answer_buf - 1, "'%s': answer of %zu bytes",
          line, n);
  CHECK (strlen (answer_buf) == n);
  CHECKF (answer_buf[n - 1] == '\n' && memchr (answer_buf, '\n', n - 1) == NULL,
          "'%s': not one line: %s", line, answer_buf);
  v = jc_parse (answer_buf, n, err, sizeof err);
  CHECKF (v != NULL, "'%s': invalid JSON (%s): %s", line, err, answer_buf);
  CHECKF (jc_is (v, json_type_object) && jc_get (v, "ok") != NULL
          && jc_is (jc_get (v, "ok"), json_type_boolean),
          "'%s': no \"ok\": %s", line, answer_buf);
  return v;
}

static struct json_object *
expect_ok (struct gs_device *dev, const char *line)
{
  struct json_object *v = ask (dev, line);

  CHECKF (jc_bool (v, "ok", false), "'%s' failed: %s", line, answer_buf);
  return v;
}

/* expect_error - @line fails with an error holding each of the strings
 * that follow (NULL-terminated). */
static void
expect_error (struct gs_device *dev, const char *line, ...)
{
  struct json_object *v = ask (dev, line);
  const char *error = jc_str (v, "error"), *want;
  va_list ap;

  CHECKF (!jc_bool (v, "ok", true), "'%s' succeeded: %s", line, answer_buf);
  CHECKF (error != NULL && error[0] != '\0', "'%s': no error text", line);
  va_start (ap, line);
  while ((want = va_arg (ap, const char *)) != NULL)
    CHECKF (strstr (error, want) != NULL, "'%s': error '%s' lacks '%s'",
            line, error, want);
  va_end (ap);
  jc_free (v);
}

#define TRY "(try: stats, metrics, reset-peak, backing, migrate, drain, ram-limit, writeback)"

static void
test_malformed (struct gs_device *dev)
{
  char *big;

  expect_error (dev, "", "empty request", TRY, NULL);
  expect_error (dev, "   \t  ", "empty request", NULL);
  expect_error (dev, "bogus", "unknown command 'bogus'", TRY, NULL);
  expect_error (dev, "STATS", "unknown command 'STATS'", NULL);
  expect_error (dev, "bogus \xc3\xa9", "unknown command 'bogus'", NULL);
  expect_error (dev, "\xc3\xa9t\xc3\xa9", "unknown command '\xc3\xa9t\xc3\xa9'",
                NULL);
  expect_error (dev, "stats extra", "stats: wrong number of arguments",
                "usage: stats", NULL);
  expect_error (dev, "metrics x y", "metrics: wrong number", NULL);
  expect_error (dev, "backing", "backing: missing subcommand",
                "backing add PATH [SIZE]", "backing list", NULL);
  expect_error (dev, "backing frob", "backing: unknown subcommand 'frob'",
                "backing remove PATH", NULL);
  expect_error (dev, "backing add", "backing add: wrong number of arguments",
                "usage: backing add PATH [SIZE]", NULL);
  expect_error (dev, "backing add a 1M c", "backing add: wrong number", NULL);
  expect_error (dev, "backing add a 12Q", "backing add: '12Q' is not a size",
                NULL);
  expect_error (dev, "backing add a -1", "backing add: '-1' is not a size",
                NULL);
  expect_error (dev, "backing add a 99999999999999999999",
                "backing add:", "too large", NULL);
  expect_error (dev, "backing remove", "backing remove: wrong number", NULL);
  expect_error (dev, "backing drain", "backing drain: wrong number", NULL);
  expect_error (dev, "backing list x", "backing list: wrong number", NULL);
  expect_error (dev, "migrate", "migrate: wrong number",
                "usage: migrate A B [SIZE]", NULL);
  expect_error (dev, "migrate a", "migrate: wrong number", NULL);
  expect_error (dev, "migrate a b 1M x", "migrate: wrong number", NULL);
  expect_error (dev, "migrate a a", "migrate:", "same", NULL);
  expect_error (dev, "migrate a b zz", "migrate: 'zz' is not a size", NULL);
  expect_error (dev, "drain", "drain: missing subcommand", "drain status",
                "drain cancel", "drain wait", NULL);
  expect_error (dev, "drain now", "drain: unknown subcommand 'now'", NULL);
  expect_error (dev, "drain status x", "drain status: wrong number", NULL);
  expect_error (dev, "drain cancel", "drain cancel: no drain is running",
                NULL);
  expect_error (dev, "ram-limit", "ram-limit: wrong number",
                "usage: ram-limit SIZE", NULL);
  expect_error (dev, "ram-limit 1G 2G", "ram-limit: wrong number", NULL);
  expect_error (dev, "ram-limit abc", "ram-limit: 'abc' is not a size", NULL);
  expect_error (dev, "ram-limit 0", "ram-limit: must be at least 256K", NULL);
  expect_error (dev, "ram-limit 255K", "ram-limit: must be at least 256K",
                NULL);
  expect_error (dev, "ram-limit 16E", "ram-limit:", "too large", NULL);
  expect_error (dev, "writeback x", "writeback: 'x' is not a number", NULL);
  expect_error (dev, "writeback -1", "writeback: '-1'", NULL);
  expect_error (dev, "writeback 1 2", "writeback: wrong number",
                "usage: writeback [PAGES]", NULL);
  expect_error (dev, "fault a", "fault: wrong number",
                "usage: fault PATH KIND [FIRST LAST]", NULL);
  expect_error (dev, "fault a read 1", "fault:", "range",
                "usage: fault PATH KIND [FIRST LAST]", NULL);
  expect_error (dev, "fault a read 5 1", "fault:", "range", NULL);
  expect_error (dev, "fault a read x 1", "fault:", "range", NULL);

  /* Bytes that are not text. */
  expect_error (dev, "stats\x01", "malformed request", NULL);
  expect_error (dev, "stats\x7f", "malformed request", NULL);
  expect_error (dev, "stats\r", "malformed request", NULL);
  expect_error (dev, "stats \xff\xfe", "malformed request", NULL);
  expect_error (dev, "\xc0\xaf", "malformed request", NULL);

  /* A long word is quoted back cut short. */
  big = malloc (10001);
  CHECK (big != NULL);
  memset (big, 'x', 200);
  big[200] = '\0';
  expect_error (dev, big, "unknown command 'xxxxxxxx", "...'", NULL);
  CHECK (strlen (answer_buf) < 400);

  /* Too long: 4096 bytes and more (the limit counts the newline). */
  memset (big, 'x', 10000);
  big[10000] = '\0';
  expect_error (dev, big, "request too long (max 4096 bytes)", NULL);
  big[GS_CONTROL_MAX_REQUEST] = '\0';
  expect_error (dev, big, "request too long", NULL);
  big[GS_CONTROL_MAX_REQUEST - 1] = '\0';
  expect_error (dev, big, "unknown command", NULL);
  /* Many words. */
  for (size_t i = 0; i < 4000; i += 2) {
    big[i] = 'a';
    big[i + 1] = ' ';
  }
  big[4000] = '\0';
  expect_error (dev, big, "unknown command 'a'", NULL);
  memcpy (big, "stats ", 6);
  expect_error (dev, big, "stats: wrong number", NULL);
  free (big);

  /* A short buffer gets a truncated, terminated answer. */
  {
    char small[10];
    size_t n = gs_control_handle (dev, NULL, "stats", small, sizeof small);

    CHECK (n == sizeof small - 1 && strlen (small) == n);
    CHECK (gs_control_handle (dev, NULL, "stats", small, 0) == 0);
  }
}

static const char *const stats_fields[] = {
  "size", "slots", "ram_limit", "slots_empty", "slots_same",
  "slots_same_zero", "slots_ram", "slots_ram_raw", "slots_backing",
  "stored_bytes", "compressed_bytes", "pool_bytes", "pool_live_bytes",
  "pool_garbage_bytes", "pool_fragmentation", "compression_ratio",
  "memory_ratio", "metadata_bytes", "metadata_per_ram_slot", "clusters",
  "rmap_bytes", "metadata_per_backing_slot", "segments", "compactions",
  "objects_moved", "backings", "backing_slots", "backing_used",
  "writeback_pages", "writeback_batches", "writeback_second_chance",
  "backing_read_errors", "backing_write_errors", "integrity_errors",
  "io_uring_rings",
  "io_uring_failures", "io_uring_fallback_batches", "io_uring_last_error",
  "reads", "writes", "trims", "zeroes",
  "flushes", "caches", "extents", "bytes_read", "bytes_written", "errors",
  "enospc",
};

static const char *const drain_fields[] = {
  "running", "migrate", "source", "target", "total", "done", "skipped",
  "bytes_per_sec", "seconds", "result", "message",
};

static const char *const backing_fields[] = {
  "path", "id", "size", "slots", "used", "healthy", "draining", "reads",
  "writes", "read_errors", "write_errors",
};

#define NELEMS(a) (sizeof (a) / sizeof ((a)[0]))

static void
check_fields (struct json_object *obj, const char *const *names, size_t n,
              const char *what)
{
  size_t i;

  CHECKF (obj != NULL && jc_is (obj, json_type_object), "%s: not an object", what);
  for (i = 0; i < n; i++)
    CHECKF (jc_get (obj, names[i]) != NULL, "%s: no field '%s'", what,
            names[i]);
}

static void
test_good (struct gs_device *dev)
{
  struct json_object *v;
  const char *text;

  v = expect_ok (dev, "stats");
  check_fields (jc_get (v, "stats"), stats_fields, NELEMS (stats_fields),
                "stats");
  CHECK (jc_u64 (jc_get (v, "stats"), "size") == 64 << 20);
  CHECK (jc_u64 (jc_get (v, "stats"), "slots_ram") == 3);
  CHECK (jc_is (jc_get (v, "backings"), json_type_array));
  check_fields (jc_get (v, "drain"), drain_fields, NELEMS (drain_fields),
                "drain");
  jc_free (v);

  /* Words may be separated by any run of spaces and tabs. */
  jc_free (expect_ok (dev, " \tstats\t "));
  jc_free (expect_ok (dev, "drain \t status"));

  v = expect_ok (dev, "metrics");
  text = jc_str (v, "text");
  CHECK (text != NULL);
  CHECK (strstr (text, "# TYPE ghostswap_slots gauge\n") != NULL);
  CHECK (strstr (text, "\nghostswap_slots{name=\"\",state=\"ram\"} 3\n") != NULL);
  CHECK (strstr (text, "\nghostswap_pool_bytes{name=\"\"} ") != NULL);
  CHECK (strstr (text, "\nghostswap_requests_total{name=\"\",op=\"write\"} ") != NULL);
  jc_free (v);

  v = expect_ok (dev, "ram-limit 32M");
  CHECK (jc_u64 (v, "ram_limit") == 32 << 20);
  jc_free (v);
  v = expect_ok (dev, "stats");
  CHECK (jc_u64 (jc_get (v, "stats"), "ram_limit") == 32 << 20);
  jc_free (v);
  jc_free (expect_ok (dev, "ram-limit 16MiB"));

  v = expect_ok (dev, "drain status");
  CHECK (!jc_bool (jc_get (v, "drain"), "running", true));
  jc_free (v);
  jc_free (expect_ok (dev, "drain wait"));
  jc_free (expect_ok (dev, "backing list"));
  jc_free (expect_ok (dev, "help"));

  /* No such backing: the engine's error, under the command's name. */
  expect_error (dev, "backing remove /nonexistent/b", "backing remove:", NULL);
  expect_error (dev, "backing drain /nonexistent/b", "backing drain:", NULL);
  expect_error (dev, "fault /nonexistent/b read 1 2", "fault:", NULL);
}

/* The backing commands through the engine, with files in @dir. */
static void
test_backings (struct gs_device *dev, const char *dir)
{
  char line[1024], b1[128], b2[128], b3[128], odd[128], label[1100];
  struct json_object *v;
  struct json_object *list, *d;
  const char *text;

  snprintf (b1, sizeof b1, "%s/b1", dir);
  snprintf (b2, sizeof b2, "%s/b2", dir);
  snprintf (b3, sizeof b3, "%s/b3", dir);
  snprintf (odd, sizeof odd, "%s/we\"ird\\name\xc3\xa9", dir);

  snprintf (line, sizeof line, "backing add %s 16M", b1);
  v = ask (dev, line);
  if (!jc_bool (v, "ok", false)) {
    fprintf (stderr, "%s: note: cannot attach a backing in %s (%s): "
             "backing commands not tested\n", test_argv0, dir,
             jc_str (v, "error"));
    jc_free (v);
    return;
  }
  jc_free (v);
  expect_error (dev, line, "backing add:", NULL);        /* already there */

  v = expect_ok (dev, "backing list");
  list = jc_get (v, "backings");
  CHECK (list && jc_is (list, json_type_array) && jc_len (list) == 1);
  check_fields (jc_item (list, 0), backing_fields, NELEMS (backing_fields),
                "backing");
  CHECK (strcmp (jc_str (jc_item (list, 0), "path"), b1) == 0);
  CHECK (jc_u64 (jc_item (list, 0), "size") == 16 << 20);
  CHECK (jc_u64 (jc_item (list, 0), "slots") == 4096);
  jc_free (v);

  v = expect_ok (dev, "stats");
  CHECK (jc_len (jc_get (v, "backings")) == 1);
  jc_free (v);

  /* Pages go to the backing; then it cannot be removed until drained. */
  v = expect_ok (dev, "writeback 100");
  CHECKF (jc_u64 (v, "pages") == 3, "wrote back %s", answer_buf);
  jc_free (v);
  v = expect_ok (dev, "metrics");
  text = jc_str (v, "text");
  snprintf (label, sizeof label, "\nghostswap_backing_used_slots{name=\"\",path=\"%s\"} 3\n",
            b1);
  CHECKF (strstr (text, label) != NULL, "no '%s' in metrics", label + 1);
  jc_free (v);

  snprintf (line, sizeof line, "backing remove %s", b1);
  expect_error (dev, line, "backing remove:", NULL);
  snprintf (line, sizeof line, "backing drain %s", b1);
  v = expect_ok (dev, line);
  CHECK (jc_bool (v, "started", false));
  jc_free (v);
  v = expect_ok (dev, "drain wait");
  d = jc_get (v, "drain");
  CHECK (!jc_bool (d, "running", true) && !jc_bool (d, "migrate", true));
  CHECK (strcmp (jc_str (d, "source"), b1) == 0);
  CHECK (jc_u64 (d, "total") == 3);
  jc_free (v);
  snprintf (line, sizeof line, "backing remove %s", b1);
  jc_free (expect_ok (dev, line));
  expect_error (dev, line, "backing remove:", NULL);     /* gone */

  /* Migrate b2 (full) to b3 (created by migrate). */
  snprintf (line, sizeof line, "backing add %s 8M", b2);
  jc_free (expect_ok (dev, line));
  jc_free (expect_ok (dev, "writeback 100"));
  snprintf (line, sizeof line, "migrate %s %s 8M", b2, b3);
  v = expect_ok (dev, line);
  CHECK (jc_bool (v, "started", false) && jc_bool (v, "attached", false));
  jc_free (v);
  v = expect_ok (dev, "drain wait");
  d = jc_get (v, "drain");
  CHECK (jc_bool (d, "migrate", false));
  CHECK (strcmp (jc_str (d, "target"), b3) == 0);
  jc_free (v);
  v = expect_ok (dev, "backing list");
  list = jc_get (v, "backings");
  CHECKF (jc_len (list) == 1 && strcmp (jc_str (jc_item (list, 0), "path"), b3) == 0,
          "after migrate: %s", answer_buf);
  CHECK (jc_u64 (jc_item (list, 0), "used") == 3);
  jc_free (v);

  /* A migration that cannot start does not leave its target attached. */
  snprintf (line, sizeof line, "migrate %s/none %s 8M", dir, b1);
  expect_error (dev, line, "migrate:", NULL);
  v = expect_ok (dev, "backing list");
  CHECK (jc_len (jc_get (v, "backings")) == 1);
  jc_free (v);

  /* Quotes, backslashes and UTF-8 in a path survive JSON and metrics. */
  snprintf (line, sizeof line, "backing add %s 4M", odd);
  jc_free (expect_ok (dev, line));
  v = expect_ok (dev, "backing list");
  list = jc_get (v, "backings");
  CHECK (jc_len (list) == 2);
  CHECK (strcmp (jc_str (jc_item (list, 0), "path"), odd) == 0
         || strcmp (jc_str (jc_item (list, 1), "path"), odd) == 0);
  jc_free (v);
  v = expect_ok (dev, "metrics");
  snprintf (label, sizeof label,
            "ghostswap_backing_slots{name=\"\",path=\"%s/we\\\"ird\\\\name\xc3\xa9\"} 1024\n",
            dir);
  CHECKF (strstr (jc_str (v, "text"), label) != NULL, "no '%s'", label);
  jc_free (v);
  snprintf (line, sizeof line, "backing remove %s", odd);
  jc_free (expect_ok (dev, line));

  /* Fault injection is off on this device. */
  snprintf (line, sizeof line, "fault %s read 0 1", b3);
  expect_error (dev, line, "fault: fault injection is off", NULL);
}

int
main (int argc, char **argv)
{
  struct gs_config cfg;
  struct gs_device *dev;
  unsigned char page[PAGE];
  char dir[] = "/var/tmp/ghostswap-ctl-XXXXXX", cmd[64 + sizeof dir];
  uint64_t seed;
  int i;

  TEST_INIT (argc, argv);
  seed = test_seed ();
  cfg = test_config (64 << 20, 16 << 20);
  CHECK_OK (gs_device_create (&cfg, &dev));
  CHECK_OK (gs_device_start (dev));
  for (i = 0; i < 3; i++) {
    fill_kind (page, KIND_TEXT, &seed);
    CHECK_OK (gs_pwrite (dev, page, PAGE, (uint64_t) i * 10 * PAGE));
  }

  test_malformed (dev);
  test_good (dev);
  if (mkdtemp (dir) == NULL)
    fprintf (stderr, "%s: note: mkdtemp %s: %m: backing commands not tested\n",
             test_argv0, dir);
  else {
    test_backings (dev, dir);
    for (i = 0; i < 3; i++) {
      unsigned char back[PAGE];
      CHECK_OK (gs_pread (dev, back, PAGE, (uint64_t) i * 10 * PAGE));
    }
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK (system (cmd) == 0);
  }

  gs_device_destroy (dev);
  printf ("%s: ok\n", test_argv0);
  return 0;
}
