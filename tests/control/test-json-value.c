/* ghostswap control tests: the JSON values the control socket writes
 * through json-c (service/json_value.c): doubles that read back as the
 * same double, exact 64-bit integers, strings that are valid UTF-8
 * whatever the bytes.  Read back by json-c's strict tokenizer with UTF-8
 * validation and checked against values computed here. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_value.h"
#include "jsonc_check.h"
#include "test.h"

/* text_of - @v printed as the control socket prints it (malloc'd). */
static char *
text_of (struct json_object *v)
{
  size_t len;
  const char *t = gs_json_text (v, &len);
  char *copy;

  CHECK (t != NULL && strlen (t) == len);
  copy = strdup (t);
  CHECK (copy != NULL);
  return copy;
}

/* wrap - {"v":@v} as text, parsed back; returns the member. */
static struct json_object *
round_trip (struct json_object *v, struct json_object **docp, char **textp)
{
  struct json_object *o = json_object_new_object ();
  char err[128];

  CHECK (o != NULL);
  json_object_object_add (o, "v", v);
  *textp = text_of (o);
  json_object_put (o);
  *docp = jc_parse (*textp, strlen (*textp), err, sizeof err);
  CHECKF (*docp != NULL, "%s does not parse: %s", *textp, err);
  return jc_get (*docp, "v");
}

static void
check_double (double d)
{
  struct json_object *doc, *v;
  char *text;

  v = round_trip (gs_json_double (d), &doc, &text);
  CHECKF (json_object_get_double (v) == d, "%.17g came back as %.17g (%s)",
          d, json_object_get_double (v), text);
  CHECKF (strchr (text, ',') == NULL, "locale comma in %s", text);
  jc_free (doc);
  free (text);
}

static void
test_doubles (uint64_t *seed)
{
  struct json_object *doc, *v;
  char *text;
  unsigned i;

  /* Short where short is exact. */
  v = round_trip (gs_json_double (0.1), &doc, &text);
  CHECKF (strcmp (text, "{\"v\":0.1}") == 0, "0.1 written as %s", text);
  jc_free (doc);
  free (text);
  v = round_trip (gs_json_double (472602624.0), &doc, &text);
  CHECKF (strcmp (text, "{\"v\":472602624}") == 0, "written as %s", text);
  jc_free (doc);
  free (text);

  /* Not finite: null. */
  v = round_trip (gs_json_double (NAN), &doc, &text);
  CHECK (jc_is (v, json_type_null) || v == NULL);
  CHECK (strcmp (text, "{\"v\":null}") == 0);
  jc_free (doc);
  free (text);
  v = round_trip (gs_json_double (-INFINITY), &doc, &text);
  CHECK (strcmp (text, "{\"v\":null}") == 0);
  jc_free (doc);
  free (text);

  check_double (1.0 / 3.0);
  check_double (3.4834534e-300);
  check_double (-1.7976931348623157e308);
  check_double (5e-324);
  check_double (0.0);
  for (i = 0; i < 20000; i++) {
    uint64_t bits = rnd_next (seed);
    double d;

    memcpy (&d, &bits, sizeof d);
    if (isfinite (d))
      check_double (d);
    check_double ((double) rnd_next (seed) / 1e6);
  }
}

static void
test_integers (uint64_t *seed)
{
  struct json_object *doc, *v;
  char *text;
  unsigned i;

  v = round_trip (json_object_new_uint64 (UINT64_MAX), &doc, &text);
  CHECK (strcmp (text, "{\"v\":18446744073709551615}") == 0);
  CHECK (jc_value_u64 (v) == UINT64_MAX);
  jc_free (doc);
  free (text);
  for (i = 0; i < 10000; i++) {
    uint64_t n = rnd_next (seed) >> rnd_below (seed, 64);
    char want[64];

    v = round_trip (json_object_new_uint64 (n), &doc, &text);
    snprintf (want, sizeof want, "{\"v\":%" PRIu64 "}", n);
    CHECKF (strcmp (text, want) == 0, "%s, want %s", text, want);
    CHECK (jc_value_u64 (v) == n);
    jc_free (doc);
    free (text);
  }
}

/* expect_string - the bytes @in (@len) written as the string @want. */
static void
expect_string (const char *in, size_t len, const char *want, size_t wantlen)
{
  struct json_object *doc, *v;
  char *text;

  v = round_trip (gs_json_string (in, len), &doc, &text);
  CHECKF (jc_is (v, json_type_string), "%s", text);
  CHECKF ((size_t) json_object_get_string_len (v) == wantlen
          && memcmp (json_object_get_string (v), want, wantlen) == 0,
          "wrote %s", text);
  jc_free (doc);
  free (text);
}

static void
test_strings (uint64_t *seed)
{
  unsigned i;

  expect_string ("plain", 5, "plain", 5);
  expect_string ("q\"b\\n\n\t", 7, "q\"b\\n\n\t", 7);
  expect_string ("a\0b", 3, "a\0b", 3);
  expect_string ("\xc3\xa9", 2, "\xc3\xa9", 2);                /* é */
  expect_string ("\xf0\x9f\x98\x80", 4, "\xf0\x9f\x98\x80", 4); /* U+1F600 */
  /* Invalid: a lone continuation byte, an overlong '/', a surrogate, a
   * cut sequence, past U+10FFFF: each bad byte becomes U+FFFD. */
  expect_string ("a\x80z", 3, "a\xef\xbf\xbdz", 5);
  expect_string ("\xc0\xaf", 2, "\xef\xbf\xbd\xef\xbf\xbd", 6);
  expect_string ("\xed\xa0\x80", 3,
                 "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", 9);
  expect_string ("\xe2\x82", 2, "\xef\xbf\xbd\xef\xbf\xbd", 6);
  expect_string ("\xf4\x90\x80\x80", 4, "\xef\xbf\xbd\xef\xbf\xbd"
                 "\xef\xbf\xbd\xef\xbf\xbd", 12);

  CHECK (gs_utf8_valid ("\xe2\x82\xac", 3));
  CHECK (!gs_utf8_valid ("\xe2\x82", 2));
  CHECK (!gs_utf8_valid ("\xe0\x80\x80", 3));

  /* Random bytes: always valid JSON (the strict tokenizer validates
   * UTF-8), and valid input comes back unchanged. */
  for (i = 0; i < 20000; i++) {
    unsigned char buf[32];
    size_t len = rnd_below (seed, sizeof buf + 1), k;
    struct json_object *doc, *v;
    char *text;

    for (k = 0; k < len; k++)
      buf[k] = (unsigned char) rnd_next (seed);
    v = round_trip (gs_json_string ((char *) buf, len), &doc, &text);
    CHECK (jc_is (v, json_type_string));
    if (gs_utf8_valid ((char *) buf, len))
      CHECK ((size_t) json_object_get_string_len (v) == len
             && memcmp (json_object_get_string (v), buf, len) == 0);
    jc_free (doc);
    free (text);
  }
}

int
main (int argc, char **argv)
{
  uint64_t seed;

  TEST_INIT (argc, argv);
  seed = test_seed ();
  test_doubles (&seed);
  test_integers (&seed);
  test_strings (&seed);
  printf ("%s: ok\n", test_argv0);
  return 0;
}
