/* Fuzz the JSON writer (lib/json.c), which writes every control socket
 * answer, against the reader ghostswapctl uses (server/json_read.c).
 *
 * The input is split at NUL bytes into pieces.  Checked:
 *   - gs_json_utf8_valid agrees on every piece with a validator written
 *     from the byte ranges of RFC 3629, section 4;
 *   - a document with every piece as a key and as a string value (in an
 *     object, and again in an array), plus integers taken from the input,
 *     is valid JSON to jr_parse, and reads back as written: strings that
 *     are valid UTF-8 exactly, the others as valid UTF-8; integers
 *     exactly.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "json.h"
#include "json_read.h"

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
check_string (const char *what, const char *want, size_t wantlen,
              const char *got)
{
  FUZZ_CHECK (got != NULL, "%s: missing", what);
  FUZZ_CHECK (rfc3629_valid ((const unsigned char *) got, strlen (got)),
              "%s: read back as invalid UTF-8", what);
  if (rfc3629_valid ((const unsigned char *) want, wantlen))
    FUZZ_CHECK (strlen (got) == wantlen && memcmp (got, want, wantlen) == 0,
                "%s: '%s' read back as '%s'", what, want, got);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const char *piece[MAX_PIECES];
  size_t len[MAX_PIECES], n = 0, at = 0, i;
  char *copy = malloc (size + 1), *text = NULL, err[128], key[32];
  struct gs_json j;
  struct jr_value *v;
  const struct jr_value *arr;
  size_t textlen;
  uint64_t u = 0;
  int64_t s;

  if (copy == NULL)
    return 0;
  memcpy (copy, data, size);
  copy[size] = '\0';
  if (size >= 8)
    memcpy (&u, data, 8);
  s = (int64_t) u;
  while (at <= size && n < MAX_PIECES) {
    piece[n] = copy + at;
    len[n] = strlen (copy + at);
    at += len[n] + 1;
    FUZZ_CHECK (gs_json_utf8_valid (piece[n], len[n])
                == rfc3629_valid ((const unsigned char *) piece[n], len[n]),
                "gs_json_utf8_valid disagrees on piece %zu ('%s')", n,
                piece[n]);
    n++;
  }

  /* {"u":U,"s":S,"0":piece0,...,"k0":..., "a":[piece0,...]}: keys "0".. so
   * that they are unique, then every piece as a key too. */
  gs_json_init (&j);
  gs_json_object_begin (&j, NULL);
  gs_json_uint (&j, "u", u);
  gs_json_int (&j, "s", s);
  for (i = 0; i < n; i++) {
    snprintf (key, sizeof key, "%zu", i);
    gs_json_string (&j, key, piece[i]);
  }
  gs_json_object_begin (&j, "keys");
  for (i = 0; i < n; i++)
    gs_json_bool (&j, piece[i], true);
  gs_json_object_end (&j);
  gs_json_array_begin (&j, "a");
  for (i = 0; i < n; i++)
    gs_json_string_len (&j, NULL, piece[i], len[i]);
  gs_json_array_end (&j);
  gs_json_object_end (&j);
  FUZZ_CHECK (gs_json_finish (&j, &text, &textlen) == 0, "gs_json_finish");
  FUZZ_CHECK (strlen (text) == textlen && memchr (text, '\n', textlen) == NULL,
              "the document is not one line of %zu bytes", textlen);

  v = jr_parse (text, textlen, err, sizeof err);
  FUZZ_CHECK (v != NULL, "invalid JSON (%s): %s", err, text);
  FUZZ_CHECK (jr_u64 (v, "u") == u, "u: %" PRIu64 " read back as %" PRIu64
              " in %s", u, jr_u64 (v, "u"), text);
  {
    const struct jr_value *sv = jr_get (v, "s");
    char want[32];

    snprintf (want, sizeof want, "%" PRId64, s);
    FUZZ_CHECK (sv && sv->type == JR_NUMBER && strcmp (sv->text, want) == 0,
                "s: %s read back as %s", want, sv ? sv->text : "nothing");
  }
  for (i = 0; i < n; i++) {
    snprintf (key, sizeof key, "%zu", i);
    check_string (key, piece[i], len[i], jr_str (v, key));
  }
  {
    const struct jr_value *keys = jr_get (v, "keys");

    FUZZ_CHECK (keys && keys->type == JR_OBJECT && keys->n == n,
                "keys: %zu members for %zu pieces", keys ? keys->n : 0, n);
    for (i = 0; i < n; i++)
      check_string ("a key", piece[i], len[i], keys->keys[i]);
  }
  arr = jr_get (v, "a");
  FUZZ_CHECK (arr && arr->type == JR_ARRAY && arr->n == n,
              "a: %zu items for %zu pieces", arr ? arr->n : 0, n);
  for (i = 0; i < n; i++) {
    FUZZ_CHECK (arr->items[i]->type == JR_STRING, "a[%zu] is not a string",
                i);
    check_string ("an array item", piece[i], len[i], arr->items[i]->text);
  }
  jr_free (v);
  free (text);
  free (copy);
  return 0;
}
