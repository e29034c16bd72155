/* ghostswap service: JSON values on top of json-c (see json_value.h). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_value.h"

/* utf8_seq - the length of the valid UTF-8 sequence at @p (of @left
 * bytes), or 0 if it is not one. */
static size_t
utf8_seq (const unsigned char *p, size_t left)
{
  unsigned c = p[0];
  uint32_t cp;
  size_t n, i;

  if (c < 0x80)
    return 1;
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2; cp = c & 0x1f;
  }
  else if (c >= 0xe0 && c <= 0xef) {
    n = 3; cp = c & 0x0f;
  }
  else if (c >= 0xf0 && c <= 0xf4) {
    n = 4; cp = c & 0x07;
  }
  else
    return 0;                   /* continuation byte, 0xc0/0xc1, >= 0xf5 */
  if (left < n)
    return 0;
  for (i = 1; i < n; i++) {
    if ((p[i] & 0xc0) != 0x80)
      return 0;
    cp = (cp << 6) | (p[i] & 0x3f);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000)
      || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return n;
}

/* gs_utf8_valid - see json_value.h. */
bool
gs_utf8_valid (const char *s, size_t len)
{
  const unsigned char *p = (const unsigned char *) s;
  size_t i = 0, n;

  while (i < len) {
    n = utf8_seq (p + i, len - i);
    if (n == 0)
      return false;
    i += n;
  }
  return true;
}

/* gs_json_string - see json_value.h. */
struct json_object *
gs_json_string (const char *s, size_t len)
{
  const unsigned char *p = (const unsigned char *) s;
  struct json_object *o;
  char *clean, *q;
  size_t i = 0, n;

  if (gs_utf8_valid (s, len))
    return json_object_new_string_len (s, (int) len);
  /* Each invalid byte becomes the 3 bytes of U+FFFD. */
  clean = malloc (3 * len + 1);
  if (clean == NULL)
    return NULL;
  for (q = clean; i < len; i += n) {
    n = utf8_seq (p + i, len - i);
    if (n == 0) {
      memcpy (q, "\xef\xbf\xbd", 3);
      q += 3;
      n = 1;
    }
    else {
      memcpy (q, p + i, n);
      q += n;
    }
  }
  o = json_object_new_string_len (clean, (int) (q - clean));
  free (clean);
  return o;
}

/* gs_json_double - see json_value.h. */
struct json_object *
gs_json_double (double v)
{
  char num[40];
  int digits;

  if (!isfinite (v))
    return NULL;
  for (digits = 15; digits <= 17; digits++) {
    char *p;

    snprintf (num, sizeof num, "%.*g", digits, v);
    for (p = num; *p; p++)          /* '.' whatever the locale */
      if (*p == ',')
        *p = '.';
    if (strtod (num, NULL) == v)
      break;
  }
  return json_object_new_double_s (v, num);
}

/* gs_json_text - see json_value.h. */
const char *
gs_json_text (struct json_object *obj, size_t *lenp)
{
  return json_object_to_json_string_length (obj, JSON_C_TO_STRING_PLAIN
                                             | JSON_C_TO_STRING_NOSLASHESCAPE,
                                             lenp);
}
