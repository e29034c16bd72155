/* Fuzz the control socket's JSON values (service/json_value.c: what
 * json-c does not do the way the protocol promises) against the tests'
 * independent reader (tests/fuzz/json_read.c).
 *
 * The input is split at NUL bytes into pieces (the first 8 bytes are
 * also a 64-bit integer and a double).  Checked:
 *   - gs_utf8_valid agrees on every piece with a validator written from
 *     the byte ranges of RFC 3629, section 4;
 *   - an array of every piece through gs_json_string, the integer as
 *     uint64 and
 *     int64, and the double through gs_json_double, printed by
 *     gs_json_text, is one line of valid JSON to jr_parse; pieces that
 *     are valid UTF-8 read back exactly, the others as valid UTF-8 with
 *     U+FFFD; the integers exactly; the double as the same double (or
 *     null when it is not finite).
 */
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "json_read.h"
#include "json_value.h"

#define MAX_PIECES 64

/* The length of the UTF-8 sequence at @p (@n bytes left), 0 if invalid:
 * RFC 3629's UTF8-1 .. UTF8-4 productions. */
static size_t
rfc3629_seq (const unsigned char *p, size_t n)
{
  unsigned char lo = 0x80, hi = 0xbf;
  size_t len, i;

  if (p[0] <= 0x7f)
    return 1;
  if (p[0] >= 0xc2 && p[0] <= 0xdf)
    len = 2;
  else if (p[0] >= 0xe0 && p[0] <= 0xef) {
    len = 3;
    if (p[0] == 0xe0)
      lo = 0xa0;
    else if (p[0] == 0xed)
      hi = 0x9f;
  } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
    len = 4;
    if (p[0] == 0xf0)
      lo = 0x90;
    else if (p[0] == 0xf4)
      hi = 0x8f;
  } else
    return 0;
  if (n < len || p[1] < lo || p[1] > hi)
    return 0;
  for (i = 2; i < len; i++)
    if (p[i] < 0x80 || p[i] > 0xbf)
      return 0;
  return len;
}

static bool
rfc3629_valid (const unsigned char *p, size_t n)
{
  size_t i = 0, k;

  while (i < n) {
    k = rfc3629_seq (p + i, n - i);
    if (k == 0)
      return false;
    i += k;
  }
  return true;
}

static void
add (struct json_object *arr, struct json_object *v)
{
  if (v == NULL)
    abort ();
  json_object_array_add (arr, v);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const char *piece[MAX_PIECES];
  size_t len[MAX_PIECES], n = 0, at = 0, k, textlen;
  char *copy = malloc (size + 1), err[128], want[32];
  const char *text;
  struct json_object *arr = json_object_new_array ();
  struct jr_value *v;
  uint64_t u = 0;
  double d = 0;

  if (copy == NULL || arr == NULL)
    abort ();
  memcpy (copy, data, size);
  copy[size] = '\0';
  if (size >= 8) {
    memcpy (&u, data, 8);
    memcpy (&d, data, 8);
  }
  while (at <= size && n < MAX_PIECES) {
    piece[n] = copy + at;
    len[n] = strlen (copy + at);
    at += len[n] + 1;
    FUZZ_CHECK (gs_utf8_valid (piece[n], len[n])
                == rfc3629_valid ((const unsigned char *) piece[n], len[n]),
                "gs_utf8_valid disagrees on piece %zu ('%s')", n, piece[n]);
    n++;
  }

  add (arr, json_object_new_uint64 (u));
  add (arr, json_object_new_int64 ((int64_t) u));
  /* A JSON null is a NULL json_object: array_add takes it. */
  json_object_array_add (arr, gs_json_double (d));
  for (k = 0; k < n; k++)
    add (arr, gs_json_string (piece[k], len[k]));
  text = gs_json_text (arr, &textlen);
  FUZZ_CHECK (text != NULL, "gs_json_text");
  FUZZ_CHECK (strlen (text) == textlen && memchr (text, '\n', textlen) == NULL,
              "the document is not one line of %zu bytes", textlen);

  v = jr_parse (text, textlen, err, sizeof err);
  FUZZ_CHECK (v != NULL, "invalid JSON (%s): %s", err, text);
  FUZZ_CHECK (v->type == JR_ARRAY && v->n == 3 + n, "%zu items for %zu "
              "pieces: %s", v->n, n, text);
  FUZZ_CHECK (jr_value_u64 (v->items[0]) == u, "uint64 %" PRIu64 " read "
              "back as %" PRIu64, u, jr_value_u64 (v->items[0]));
  snprintf (want, sizeof want, "%" PRId64, (int64_t) u);
  FUZZ_CHECK (v->items[1]->type == JR_NUMBER
              && strcmp (v->items[1]->text, want) == 0,
              "int64 %s read back as %s", want,
              v->items[1]->text ? v->items[1]->text : "null");
  if (isfinite (d))
    FUZZ_CHECK (v->items[2]->type == JR_NUMBER && v->items[2]->number == d,
                "double %.17g read back as %s", d,
                v->items[2]->text ? v->items[2]->text : "null");
  else
    FUZZ_CHECK (v->items[2]->type == JR_NULL, "double %g is not null", d);
  for (k = 0; k < n; k++) {
    const struct jr_value *s = v->items[3 + k];

    FUZZ_CHECK (s->type == JR_STRING, "item %zu is not a string", 3 + k);
    FUZZ_CHECK (rfc3629_valid ((const unsigned char *) s->text,
                               strlen (s->text)),
                "piece %zu read back as invalid UTF-8", k);
    if (rfc3629_valid ((const unsigned char *) piece[k], len[k]))
      FUZZ_CHECK (strcmp (s->text, piece[k]) == 0, "piece %zu: '%s' read "
                  "back as '%s'", k, piece[k], s->text);
  }
  jr_free (v);
  json_object_put (arr);
  free (copy);
  return 0;
}
