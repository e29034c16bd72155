/* ghostswap control tests: the JSON writer (lib/json.c) and reader
 * (server/json_read.c), against each other and against fixed texts, with
 * random strings of every byte. */
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "json_read.h"
#include "test.h"

/* finish - the document's text (malloc'd); fails the test on error. */
static char *
finish (struct gs_json *j)
{
  char *text;
  size_t len;
  int r = gs_json_finish (j, &text, &len);

  CHECKF (r == 0, "gs_json_finish returned %d", r);
  CHECK (strlen (text) == len);
  return text;
}

static void
expect_text (struct gs_json *j, const char *want)
{
  char *text = finish (j);

  CHECKF (strcmp (text, want) == 0, "got %s, want %s", text, want);
  free (text);
}

static void
test_structure (void)
{
  struct gs_json j;

  gs_json_init (&j);
  gs_json_object_begin (&j, NULL);
  gs_json_bool (&j, "ok", true);
  gs_json_uint (&j, "u", UINT64_MAX);
  gs_json_int (&j, "i", INT64_MIN);
  gs_json_double (&j, "d", 0.5);
  gs_json_double (&j, "nan", NAN);
  gs_json_double (&j, "inf", -INFINITY);
  gs_json_null (&j, "n");
  gs_json_string (&j, "s", NULL);
  gs_json_array_begin (&j, "a");
  gs_json_uint (&j, NULL, 1);
  gs_json_object_begin (&j, NULL);
  gs_json_object_end (&j);
  gs_json_array_begin (&j, NULL);
  gs_json_array_end (&j);
  gs_json_array_end (&j);
  gs_json_object_end (&j);
  expect_text (&j, "{\"ok\":true,\"u\":18446744073709551615,"
               "\"i\":-9223372036854775808,\"d\":0.5,\"nan\":null,"
               "\"inf\":null,\"n\":null,\"s\":null,\"a\":[1,{},[]]}");

  /* A top-level scalar is a document too. */
  gs_json_init (&j);
  gs_json_string (&j, NULL, "x");
  expect_text (&j, "\"x\"");
}

static void
expect_error (struct gs_json *j, int want)
{
  char *text = NULL;
  size_t len;
  int r = gs_json_finish (j, &text, &len);

  CHECKF (r == want, "gs_json_finish returned %d, want %d", r, want);
  CHECK (text == NULL);
  gs_json_free (j);
}

static void
test_misuse (void)
{
  struct gs_json j;
  int i;

  gs_json_init (&j);                    /* nothing written */
  expect_error (&j, -EINVAL);

  gs_json_init (&j);                    /* unclosed */
  gs_json_object_begin (&j, NULL);
  expect_error (&j, -EINVAL);

  gs_json_init (&j);                    /* a value without key in an object */
  gs_json_object_begin (&j, NULL);
  gs_json_uint (&j, NULL, 1);
  gs_json_object_end (&j);
  expect_error (&j, -EINVAL);

  gs_json_init (&j);                    /* a key in an array */
  gs_json_array_begin (&j, NULL);
  gs_json_uint (&j, "k", 1);
  gs_json_array_end (&j);
  expect_error (&j, -EINVAL);

  gs_json_init (&j);                    /* mismatched close */
  gs_json_array_begin (&j, NULL);
  gs_json_object_end (&j);
  expect_error (&j, -EINVAL);

  gs_json_init (&j);                    /* two top-level values */
  gs_json_uint (&j, NULL, 1);
  gs_json_uint (&j, NULL, 2);
  expect_error (&j, -EINVAL);

  gs_json_init (&j);                    /* too deep */
  for (i = 0; i < GS_JSON_MAX_DEPTH + 1; i++)
    gs_json_array_begin (&j, NULL);
  for (i = 0; i < GS_JSON_MAX_DEPTH + 1; i++)
    gs_json_array_end (&j);
  expect_error (&j, -E2BIG);
}

static void
expect_string (const char *in, size_t len, const char *want)
{
  struct gs_json j;
  char *text;

  gs_json_init (&j);
  gs_json_string_len (&j, NULL, in, len);
  text = finish (&j);
  CHECKF (strcmp (text, want) == 0, "got %s, want %s", text, want);
  free (text);
}

static void
test_escaping (void)
{
  expect_string ("a\"b\\c/", 6, "\"a\\\"b\\\\c/\"");
  expect_string ("\n\r\t\b\f\x01\x1f\x7f", 8,
                 "\"\\n\\r\\t\\b\\f\\u0001\\u001f\\u007f\"");
  expect_string ("a\0b", 3, "\"a\\u0000b\"");
  /* Valid UTF-8 passes; anything else becomes U+FFFD byte by byte. */
  expect_string ("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9,
                 "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
  expect_string ("\xff", 1, "\"\\ufffd\"");
  expect_string ("a\xc3", 2, "\"a\\ufffd\"");                  /* cut short */
  expect_string ("\xc0\xaf", 2, "\"\\ufffd\\ufffd\"");          /* overlong */
  expect_string ("\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\""); /* surrogate */
  expect_string ("\xf4\x90\x80\x80", 4,
                 "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");           /* > U+10FFFF */
  expect_string ("\xe0\x80\xaf", 3, "\"\\ufffd\\ufffd\\ufffd\""); /* overlong */

  CHECK (gs_json_utf8_valid ("", 0));
  CHECK (gs_json_utf8_valid ("\xc3\xa9", 2));
  CHECK (!gs_json_utf8_valid ("\xc3", 1));
  CHECK (!gs_json_utf8_valid ("\x80", 1));
  CHECK (!gs_json_utf8_valid ("\xf5\x80\x80\x80", 4));
}

/* Doubles are written with '.' even in a locale with a decimal comma. */
static void
test_locale (void)
{
  struct gs_json j;

  if (setlocale (LC_NUMERIC, "de_DE.UTF-8") == NULL
      && setlocale (LC_NUMERIC, "fr_FR.UTF-8") == NULL) {
    fprintf (stderr, "%s: note: no locale with a decimal comma; "
             "locale check skipped\n", test_argv0);
    return;
  }
  gs_json_init (&j);
  gs_json_double (&j, NULL, 3.25);
  expect_text (&j, "3.25");
  setlocale (LC_NUMERIC, "C");
}

/* Random byte strings through the writer must read back: exactly when
 * they are valid UTF-8 without NUL, and as valid JSON always. */
static void
test_random_roundtrip (uint64_t *seed)
{
  unsigned char in[64];
  char key[sizeof in + 1], err[128];
  int iter;

  for (iter = 0; iter < 20000; iter++) {
    size_t len = (size_t) rnd_below (seed, sizeof in + 1), i;
    struct jr_value *v;
    struct gs_json j;
    char *text;
    size_t tlen;

    for (i = 0; i < len; i++) {
      /* Mostly ASCII, some control bytes, some high bytes. */
      uint64_t r = rnd_next (seed);
      in[i] = (unsigned char) (r % 4 == 0 ? r >> 8 : 0x20 + (r >> 8) % 0x60);
    }
    /* Keys are C strings: this one ends at the first NUL, if any. */
    memcpy (key, in, len);
    key[len] = '\0';
    gs_json_init (&j);
    gs_json_object_begin (&j, NULL);
    gs_json_string_len (&j, key, (const char *) in, len);
    gs_json_array_begin (&j, "a");
    gs_json_string_len (&j, NULL, (const char *) in, len);
    gs_json_array_end (&j);
    gs_json_object_end (&j);
    CHECK_OK (gs_json_finish (&j, &text, &tlen));
    v = jr_parse (text, tlen, err, sizeof err);
    if (memchr (in, 0, len) != NULL) {
      /* Valid JSON, but the reader keeps C strings: it refuses \u0000. */
      CHECKF (v == NULL && strstr (err, "NUL in a string"), "%s: %s", err,
              text);
      free (text);
      continue;
    }
    CHECKF (v != NULL, "%s: %s", err, text);
    CHECK (v->type == JR_OBJECT && v->n == 2);
    if (gs_json_utf8_valid ((const char *) in, len)) {
      const struct jr_value *a = v->items[1];     /* the key may be "a" */
      CHECK (strcmp (v->keys[0], key) == 0);
      CHECK (a != NULL && a->type == JR_ARRAY && a->n == 1);
      CHECK (a->items[0]->type == JR_STRING);
      CHECK (strlen (a->items[0]->text) == len);
      CHECK (memcmp (a->items[0]->text, in, len) == 0);
    }
    jr_free (v);
    free (text);
  }
}

static void
expect_parse_fails (const char *text)
{
  char err[128] = "";
  struct jr_value *v = jr_parse (text, strlen (text), err, sizeof err);

  CHECKF (v == NULL, "accepted: %s", text);
  CHECK (err[0] != '\0');
}

static void
test_reader (uint64_t *seed)
{
  static const char *const bad[] = {
    "", " ", "{", "}", "[1,]", "{\"a\"}", "{\"a\":}", "{a:1}", "[1 2]",
    "01", "1.", ".5", "-", "1e", "tru", "nul", "\"abc", "\"\\x\"",
    "\"\\u12\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\u0000\"", "\"a\nb\"",
    "{} {}", "[\"a\",]", "{\"a\":1,}",
  };
  const char *good = " {\"a\" : [1, -2.5e3, true, false, null, \"\\u00e9"
    "\\ud83d\\ude00\\n\"], \"b\":{}, \"big\":18446744073709551615} \n";
  struct jr_value *v;
  char err[128], deep[200];
  size_t i;
  int iter;

  v = jr_parse (good, strlen (good), err, sizeof err);
  CHECKF (v != NULL, "%s", err);
  CHECK (jr_get (v, "a")->n == 6);
  CHECK (jr_get (v, "a")->items[1]->number == -2500);
  CHECK (strcmp (jr_get (v, "a")->items[5]->text,
                 "\xc3\xa9\xf0\x9f\x98\x80\n") == 0);
  CHECK (jr_u64 (v, "big") == UINT64_MAX);
  CHECK (jr_get (v, "missing") == NULL && jr_str (v, "a") == NULL);
  jr_free (v);

  for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
    expect_parse_fails (bad[i]);

  memset (deep, '[', sizeof deep - 1);
  deep[sizeof deep - 1] = '\0';
  expect_parse_fails (deep);

  /* Random bytes and random mutations of a good text: never a crash. */
  for (iter = 0; iter < 20000; iter++) {
    char buf[128];
    size_t len = strlen (good), k;

    memcpy (buf, good, len);
    for (k = rnd_below (seed, 4) + 1; k > 0; k--)
      buf[rnd_below (seed, len)] = (char) rnd_next (seed);
    if (rnd_below (seed, 4) == 0)
      len = (size_t) rnd_below (seed, len + 1);
    jr_free (jr_parse (buf, len, err, sizeof err));
  }
}

int
main (int argc, char **argv)
{
  uint64_t seed;

  TEST_INIT (argc, argv);
  seed = test_seed ();
  test_structure ();
  test_misuse ();
  test_escaping ();
  test_locale ();
  test_random_roundtrip (&seed);
  test_reader (&seed);
  printf ("%s: ok\n", test_argv0);
  return 0;
}
