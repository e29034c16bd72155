/* ghostswap tests: a minimal JSON reader, independent of json-c (see json_read.h).
 *
 * Recursive descent over RFC 8259, strict about the grammar (the answers
 * it reads come from our own writer, and tests use it to check that they
 * are valid JSON) but not about UTF-8, which it passes through.
 * Numbers are converted with strtod, so the caller must not have set a
 * locale with another decimal separator (ghostswapctl never sets one).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_read.h"

struct parser {
  const char *start, *p, *end;
  char *err;
  size_t errlen;
  bool failed;
};

static void __attribute__ ((format (printf, 2, 3)))
syntax_error (struct parser *ps, const char *fmt, ...)
{
  char msg[128];
  va_list ap;

  if (ps->failed)
    return;
  ps->failed = true;
  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  if (ps->errlen > 0)
    snprintf (ps->err, ps->errlen, "%s at offset %zu", msg,
              (size_t) (ps->p - ps->start));
}

static void
skip_space (struct parser *ps)
{
  while (ps->p < ps->end
         && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n'
             || *ps->p == '\r'))
    ps->p++;
}

static bool
literal (struct parser *ps, const char *word)
{
  size_t n = strlen (word);

  if ((size_t) (ps->end - ps->p) < n || memcmp (ps->p, word, n) != 0) {
    syntax_error (ps, "invalid literal");
    return false;
  }
  ps->p += n;
  return true;
}

static int
hex4 (const char *p)
{
  int v = 0, i;

  for (i = 0; i < 4; i++) {
    char c = p[i];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= c - '0';
    else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
    else return -1;
  }
  return v;
}

static size_t
put_utf8 (char *out, unsigned long cp)
{
  if (cp < 0x80) {
    out[0] = (char) cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (char) (0xc0 | (cp >> 6));
    out[1] = (char) (0x80 | (cp & 0x3f));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (char) (0xe0 | (cp >> 12));
    out[1] = (char) (0x80 | ((cp >> 6) & 0x3f));
    out[2] = (char) (0x80 | (cp & 0x3f));
    return 3;
  }
  out[0] = (char) (0xf0 | (cp >> 18));
  out[1] = (char) (0x80 | ((cp >> 12) & 0x3f));
  out[2] = (char) (0x80 | ((cp >> 6) & 0x3f));
  out[3] = (char) (0x80 | (cp & 0x3f));
  return 4;
}

/* parse_string - a string at ps->p (at its quote), decoded and malloc'd. */
static char *
parse_string (struct parser *ps)
{
  char *out, *o;

  ps->p++;                                      /* the opening quote */
  /* Decoded, a string is never longer than it is written. */
  out = malloc ((size_t) (ps->end - ps->p) + 1);
  if (out == NULL) {
    syntax_error (ps, "out of memory");
    return NULL;
  }
  o = out;
  for (;;) {
    unsigned char c;

    if (ps->p >= ps->end) {
      syntax_error (ps, "unterminated string");
      goto fail;
    }
    c = (unsigned char) *ps->p++;
    if (c == '"')
      break;
    if (c < 0x20) {
      syntax_error (ps, "control character in a string");
      goto fail;
    }
    if (c != '\\') {
      *o++ = (char) c;
      continue;
    }
    if (ps->p >= ps->end) {
      syntax_error (ps, "unterminated string");
      goto fail;
    }
    c = (unsigned char) *ps->p++;
    switch (c) {
    case '"': case '\\': case '/': *o++ = (char) c; break;
    case 'b': *o++ = '\b'; break;
    case 'f': *o++ = '\f'; break;
    case 'n': *o++ = '\n'; break;
    case 'r': *o++ = '\r'; break;
    case 't': *o++ = '\t'; break;
    case 'u': {
      long cp, lo;

      if (ps->end - ps->p < 4 || (cp = hex4 (ps->p)) < 0) {
        syntax_error (ps, "bad \\u escape");
        goto fail;
      }
      ps->p += 4;
      if (cp >= 0xd800 && cp <= 0xdbff) {       /* a surrogate pair */
        if (ps->end - ps->p < 6 || ps->p[0] != '\\' || ps->p[1] != 'u'
            || (lo = hex4 (ps->p + 2)) < 0xdc00 || lo > 0xdfff) {
          syntax_error (ps, "unpaired surrogate");
          goto fail;
        }
        ps->p += 6;
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
      }
      else if (cp >= 0xdc00 && cp <= 0xdfff) {
        syntax_error (ps, "unpaired surrogate");
        goto fail;
      }
      if (cp == 0) {
        syntax_error (ps, "NUL in a string");
        goto fail;
      }
      o += put_utf8 (o, (unsigned long) cp);
      break;
    }
    default:
      syntax_error (ps, "bad escape");
      goto fail;
    }
  }
  *o = '\0';
  return out;

 fail:
  free (out);
  return NULL;
}

/* number_end - the end of the number at @p, or NULL if it is not one. */
static const char *
number_end (const char *p, const char *end)
{
#define DIGIT(q) ((q) < end && *(q) >= '0' && *(q) <= '9')
  if (p < end && *p == '-')
    p++;
  if (p < end && *p == '0')
    p++;
  else if (DIGIT (p))
    while (DIGIT (p)) p++;
  else
    return NULL;
  if (p < end && *p == '.') {
    p++;
    if (!DIGIT (p))
      return NULL;
    while (DIGIT (p)) p++;
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    p++;
    if (p < end && (*p == '+' || *p == '-'))
      p++;
    if (!DIGIT (p))
      return NULL;
    while (DIGIT (p)) p++;
  }
  return p;
#undef DIGIT
}

static struct jr_value *parse_value (struct parser *ps, unsigned depth);

/* add_member - append @item (and @key, for objects) to @v. */
static bool
add_member (struct parser *ps, struct jr_value *v, char *key,
            struct jr_value *item)
{
  struct jr_value **items;
  char **keys;

  items = realloc (v->items, (v->n + 1) * sizeof *items);
  if (items == NULL)
    goto oom;
  v->items = items;
  if (v->type == JR_OBJECT) {
    keys = realloc (v->keys, (v->n + 1) * sizeof *keys);
    if (keys == NULL)
      goto oom;
    v->keys = keys;
    v->keys[v->n] = key;
  }
  v->items[v->n++] = item;
  return true;

 oom:
  syntax_error (ps, "out of memory");
  free (key);
  jr_free (item);
  return false;
}

/* parse_members - the members of an array or object after its bracket. */
static bool
parse_members (struct parser *ps, struct jr_value *v, unsigned depth)
{
  char close = v->type == JR_OBJECT ? '}' : ']';

  skip_space (ps);
  if (ps->p < ps->end && *ps->p == close) {
    ps->p++;
    return true;
  }
  for (;;) {
    char *key = NULL;
    struct jr_value *item;

    if (v->type == JR_OBJECT) {
      skip_space (ps);
      if (ps->p >= ps->end || *ps->p != '"') {
        syntax_error (ps, "expected a key");
        return false;
      }
      key = parse_string (ps);
      if (key == NULL)
        return false;
      skip_space (ps);
      if (ps->p >= ps->end || *ps->p != ':') {
        syntax_error (ps, "expected ':'");
        free (key);
        return false;
      }
      ps->p++;
    }
    item = parse_value (ps, depth + 1);
    if (item == NULL) {
      free (key);
      return false;
    }
    if (!add_member (ps, v, key, item))
      return false;
    skip_space (ps);
    if (ps->p < ps->end && *ps->p == ',') {
      ps->p++;
      continue;
    }
    if (ps->p < ps->end && *ps->p == close) {
      ps->p++;
      return true;
    }
    syntax_error (ps, "expected ',' or '%c'", close);
    return false;
  }
}

static struct jr_value *
parse_value (struct parser *ps, unsigned depth)
{
  struct jr_value *v;
  const char *e;
  bool ok = true;

  if (depth > JR_MAX_DEPTH) {
    syntax_error (ps, "nested too deeply");
    return NULL;
  }
  skip_space (ps);
  if (ps->p >= ps->end) {
    syntax_error (ps, "expected a value");
    return NULL;
  }
  v = calloc (1, sizeof *v);
  if (v == NULL) {
    syntax_error (ps, "out of memory");
    return NULL;
  }
  switch (*ps->p) {
  case '{':
  case '[':
    v->type = *ps->p == '{' ? JR_OBJECT : JR_ARRAY;
    ps->p++;
    ok = parse_members (ps, v, depth);
    break;
  case '"':
    v->type = JR_STRING;
    v->text = parse_string (ps);
    ok = v->text != NULL;
    break;
  case 't':
    v->type = JR_BOOL;
    v->boolean = true;
    ok = literal (ps, "true");
    break;
  case 'f':
    v->type = JR_BOOL;
    ok = literal (ps, "false");
    break;
  case 'n':
    v->type = JR_NULL;
    ok = literal (ps, "null");
    break;
  default:
    v->type = JR_NUMBER;
    e = number_end (ps->p, ps->end);
    if (e == NULL) {
      syntax_error (ps, "unexpected character");
      ok = false;
      break;
    }
    v->text = strndup (ps->p, (size_t) (e - ps->p));
    if (v->text == NULL) {
      syntax_error (ps, "out of memory");
      ok = false;
      break;
    }
    v->number = strtod (v->text, NULL);
    ps->p = e;
  }
  if (!ok) {
    jr_free (v);
    return NULL;
  }
  return v;
}

/* jr_parse - see json_read.h. */
struct jr_value *
jr_parse (const char *text, size_t len, char *err, size_t errlen)
{
  struct parser ps = {
    .start = text, .p = text, .end = text + len, .err = err, .errlen = errlen,
  };
  struct jr_value *v;

  v = parse_value (&ps, 0);
  if (v == NULL)
    return NULL;
  skip_space (&ps);
  if (ps.p != ps.end) {
    syntax_error (&ps, "trailing characters");
    jr_free (v);
    return NULL;
  }
  return v;
}

/* jr_free - see json_read.h. */
void
jr_free (struct jr_value *v)
{
  size_t i;

  if (v == NULL)
    return;
  for (i = 0; i < v->n; i++) {
    if (v->keys)
      free (v->keys[i]);
    jr_free (v->items[i]);
  }
  free (v->keys);
  free (v->items);
  free (v->text);
  free (v);
}

/* jr_get - see json_read.h. */
const struct jr_value *
jr_get (const struct jr_value *obj, const char *key)
{
  size_t i;

  if (obj == NULL || obj->type != JR_OBJECT)
    return NULL;
  for (i = 0; i < obj->n; i++)
    if (strcmp (obj->keys[i], key) == 0)
      return obj->items[i];
  return NULL;
}

/* jr_str - see json_read.h. */
const char *
jr_str (const struct jr_value *obj, const char *key)
{
  const struct jr_value *v = jr_get (obj, key);

  return v && v->type == JR_STRING ? v->text : NULL;
}

/* jr_bool - see json_read.h. */
bool
jr_bool (const struct jr_value *obj, const char *key, bool dflt)
{
  const struct jr_value *v = jr_get (obj, key);

  return v && v->type == JR_BOOL ? v->boolean : dflt;
}

/* jr_value_u64 - see json_read.h. */
uint64_t
jr_value_u64 (const struct jr_value *v)
{
  char *end;
  unsigned long long u;

  if (v == NULL || v->type != JR_NUMBER || v->text[0] == '-')
    return 0;
  errno = 0;
  u = strtoull (v->text, &end, 10);
  if (*end == '\0' && errno == 0)
    return u;
  if (!(v->number >= 0) || v->number >= 18446744073709551616.0)
    return 0;
  return (uint64_t) v->number;
}

/* jr_u64 - see json_read.h. */
uint64_t
jr_u64 (const struct jr_value *obj, const char *key)
{
  return jr_value_u64 (jr_get (obj, key));
}

/* jr_num - see json_read.h. */
double
jr_num (const struct jr_value *obj, const char *key, double dflt)
{
  const struct jr_value *v = jr_get (obj, key);

  return v && v->type == JR_NUMBER ? v->number : dflt;
}
