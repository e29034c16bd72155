/* ghostswap: a tiny JSON writer into a growing buffer (see json.h). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

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

/* gs_json_utf8_valid - see json.h. */
bool
gs_json_utf8_valid (const char *s, size_t len)
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

static void
fail (struct gs_json *j, int err)
{
  if (j->error == 0)
    j->error = err;
}

/* reserve - make room for @n more bytes and the final NUL. */
static bool
reserve (struct gs_json *j, size_t n)
{
  size_t cap;
  char *p;

  if (j->error)
    return false;
  if (n < j->cap - j->len)
    return true;
  cap = j->cap ? j->cap : 256;
  while (n >= cap - j->len) {
    if (cap > SIZE_MAX / 2) {
      fail (j, -ENOMEM);
      return false;
    }
    cap *= 2;
  }
  p = realloc (j->buf, cap);
  if (p == NULL) {
    fail (j, -ENOMEM);
    return false;
  }
  j->buf = p;
  j->cap = cap;
  return true;
}

static void
put (struct gs_json *j, const char *s, size_t n)
{
  if (!reserve (j, n))
    return;
  memcpy (j->buf + j->len, s, n);
  j->len += n;
  j->buf[j->len] = '\0';
}

static void
put_str (struct gs_json *j, const char *s)
{
  put (j, s, strlen (s));
}

/* put_escaped - @len bytes at @s as a quoted JSON string. */
static void
put_escaped (struct gs_json *j, const char *s, size_t len)
{
  const unsigned char *p = (const unsigned char *) s;
  size_t i = 0, n;
  char esc[8];

  put (j, "\"", 1);
  while (i < len && !j->error) {
    unsigned c = p[i];

    if (c == '"' || c == '\\') {
      esc[0] = '\\';
      esc[1] = (char) c;
      put (j, esc, 2);
      i++;
    }
    else if (c < 0x20 || c == 0x7f) {
      switch (c) {
      case '\n': put (j, "\\n", 2); break;
      case '\r': put (j, "\\r", 2); break;
      case '\t': put (j, "\\t", 2); break;
      case '\b': put (j, "\\b", 2); break;
      case '\f': put (j, "\\f", 2); break;
      default:
        snprintf (esc, sizeof esc, "\\u%04x", c);
        put (j, esc, 6);
      }
      i++;
    }
    else {
      /* Copy the longest run of plain characters at once. */
      size_t start = i;

      while (i < len) {
        c = p[i];
        if (c == '"' || c == '\\' || c < 0x20 || c == 0x7f)
          break;
        n = utf8_seq (p + i, len - i);
        if (n == 0)
          break;
        i += n;
      }
      put (j, s + start, i - start);
      if (i < len && utf8_seq (p + i, len - i) == 0
          && p[i] >= 0x80) {
        put_str (j, "\\ufffd");   /* not UTF-8: the replacement character */
        i++;
      }
    }
  }
  put (j, "\"", 1);
}

/* value_start - the comma and key before a value at the current depth. */
static bool
value_start (struct gs_json *j, const char *key)
{
  if (j->error)
    return false;
  if (j->object[j->depth] != (key != NULL)) {
    fail (j, -EINVAL);        /* a key outside an object, or none inside */
    return false;
  }
  if (j->depth == 0 && !j->first[0]) {
    fail (j, -EINVAL);        /* a second top-level value */
    return false;
  }
  if (!j->first[j->depth])
    put (j, ",", 1);
  j->first[j->depth] = false;
  if (key) {
    put_escaped (j, key, strlen (key));
    put (j, ":", 1);
  }
  return !j->error;
}

/* gs_json_init - see json.h. */
void
gs_json_init (struct gs_json *j)
{
  memset (j, 0, sizeof *j);
  j->first[0] = true;
}

/* gs_json_free - see json.h. */
void
gs_json_free (struct gs_json *j)
{
  free (j->buf);
  j->buf = NULL;
  j->len = j->cap = 0;
}

static void
open_nested (struct gs_json *j, const char *key, bool object)
{
  if (!value_start (j, key))
    return;
  if (j->depth >= GS_JSON_MAX_DEPTH) {
    fail (j, -E2BIG);
    return;
  }
  put (j, object ? "{" : "[", 1);
  j->depth++;
  j->first[j->depth] = true;
  j->object[j->depth] = object;
}

static void
close_nested (struct gs_json *j, bool object)
{
  if (j->error)
    return;
  if (j->depth == 0 || j->object[j->depth] != object) {
    fail (j, -EINVAL);
    return;
  }
  j->depth--;
  put (j, object ? "}" : "]", 1);
}

/* gs_json_object_begin - see json.h. */
void
gs_json_object_begin (struct gs_json *j, const char *key)
{
  open_nested (j, key, true);
}

/* gs_json_object_end - see json.h. */
void
gs_json_object_end (struct gs_json *j)
{
  close_nested (j, true);
}

/* gs_json_array_begin - see json.h. */
void
gs_json_array_begin (struct gs_json *j, const char *key)
{
  open_nested (j, key, false);
}

/* gs_json_array_end - see json.h. */
void
gs_json_array_end (struct gs_json *j)
{
  close_nested (j, false);
}

/* gs_json_string_len - see json.h. */
void
gs_json_string_len (struct gs_json *j, const char *key,
                    const char *s, size_t len)
{
  if (value_start (j, key))
    put_escaped (j, s, len);
}

/* gs_json_string - see json.h. */
void
gs_json_string (struct gs_json *j, const char *key, const char *s)
{
  if (s == NULL)
    gs_json_null (j, key);
  else
    gs_json_string_len (j, key, s, strlen (s));
}

/* gs_json_uint - see json.h. */
void
gs_json_uint (struct gs_json *j, const char *key, uint64_t v)
{
  char num[32];

  if (value_start (j, key)) {
    snprintf (num, sizeof num, "%" PRIu64, v);
    put_str (j, num);
  }
}

/* gs_json_int - see json.h. */
void
gs_json_int (struct gs_json *j, const char *key, int64_t v)
{
  char num[32];

  if (value_start (j, key)) {
    snprintf (num, sizeof num, "%" PRId64, v);
    put_str (j, num);
  }
}

/* gs_json_double - see json.h. */
void
gs_json_double (struct gs_json *j, const char *key, double v)
{
  char num[64];
  char *p;

  if (!value_start (j, key))
    return;
  if (!isfinite (v)) {
    put_str (j, "null");
    return;
  }
  snprintf (num, sizeof num, "%.6g", v);
  /* A locale may use another decimal separator: JSON wants '.'. */
  for (p = num; *p; p++)
    if (*p != '-' && *p != '+' && *p != 'e' && (*p < '0' || *p > '9'))
      *p = '.';
  put_str (j, num);
}

/* gs_json_bool - see json.h. */
void
gs_json_bool (struct gs_json *j, const char *key, bool v)
{
  if (value_start (j, key))
    put_str (j, v ? "true" : "false");
}

/* gs_json_null - see json.h. */
void
gs_json_null (struct gs_json *j, const char *key)
{
  if (value_start (j, key))
    put_str (j, "null");
}

/* gs_json_finish - see json.h. */
int
gs_json_finish (struct gs_json *j, char **textp, size_t *lenp)
{
  int r = j->error;

  if (r == 0 && (j->depth != 0 || j->first[0]))
    r = -EINVAL;                /* unbalanced, or no value at all */
  if (r == 0 && !reserve (j, 0))
    r = j->error;
  if (r < 0) {
    gs_json_free (j);
    gs_json_init (j);
    return r;
  }
  *textp = j->buf;
  *lenp = j->len;
  j->buf = NULL;
  gs_json_free (j);
  gs_json_init (j);
  return 0;
}
