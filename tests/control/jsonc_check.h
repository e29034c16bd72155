/* ghostswap control tests: reading the control socket's JSON answers with
 * json-c (an independent parser: the server writes with json-c too, but
 * a strict tokenizer checks every answer is one well-formed document).
 * Static helpers, one header: each test file uses a few of them. */
#ifndef GHOSTSWAP_TESTS_JSONC_CHECK_H
#define GHOSTSWAP_TESTS_JSONC_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <json.h>

/* jc_parse - the one JSON value in the @len bytes at @text (strict: no
 * trailing garbage, no comments), or NULL with a message in @err. */
static inline struct json_object *
jc_parse (const char *text, size_t len, char *err, size_t errlen)
{
  struct json_tokener *tok = json_tokener_new ();
  struct json_object *v;
  enum json_tokener_error e;
  size_t used;

  if (tok == NULL) {
    snprintf (err, errlen, "out of memory");
    return NULL;
  }
  json_tokener_set_flags (tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
  v = json_tokener_parse_ex (tok, text, (int) len);
  e = json_tokener_get_error (tok);
  used = json_tokener_get_parse_end (tok);
  json_tokener_free (tok);
  if (v == NULL || e != json_tokener_success) {
    snprintf (err, errlen, "at byte %zu: %s", used,
              e == json_tokener_continue ? "unexpected end"
              : json_tokener_error_desc (e));
    json_object_put (v);
    return NULL;
  }
  while (used < len && (text[used] == ' ' || text[used] == '\n'
                        || text[used] == '\r' || text[used] == '\t'))
    used++;
  if (used != len) {
    snprintf (err, errlen, "at byte %zu: text after the value", used);
    json_object_put (v);
    return NULL;
  }
  return v;
}

static inline void
jc_free (struct json_object *v)
{
  json_object_put (v);
}

/* jc_is - whether @v is there and of type @t. */
static inline bool
jc_is (const struct json_object *v, enum json_type t)
{
  return v != NULL && json_object_is_type (v, t);
}

/* jc_get - the member @key of the object @obj, or NULL. */
static inline struct json_object *
jc_get (const struct json_object *obj, const char *key)
{
  struct json_object *v = NULL;

  if (!jc_is (obj, json_type_object)
      || !json_object_object_get_ex (obj, key, &v))
    return NULL;
  return v;
}

/* jc_str - the string member @key of @obj, or NULL. */
static inline const char *
jc_str (const struct json_object *obj, const char *key)
{
  struct json_object *v = jc_get (obj, key);

  return jc_is (v, json_type_string) ? json_object_get_string (v) : NULL;
}

/* jc_bool - the boolean member @key of @obj, or @dflt. */
static inline bool
jc_bool (const struct json_object *obj, const char *key, bool dflt)
{
  struct json_object *v = jc_get (obj, key);

  return jc_is (v, json_type_boolean) ? json_object_get_boolean (v) : dflt;
}

/* jc_value_u64 - @v as an unsigned integer: only an integer written as
 * one (no fraction, no exponent, not negative); else 0. */
static inline uint64_t
jc_value_u64 (const struct json_object *v)
{
  if (!jc_is (v, json_type_int))
    return 0;
  return json_object_get_uint64 (v);
}

static inline uint64_t
jc_u64 (const struct json_object *obj, const char *key)
{
  return jc_value_u64 (jc_get (obj, key));
}

/* jc_len, jc_item - an array's length and its item @i. */
static inline size_t
jc_len (const struct json_object *a)
{
  return jc_is (a, json_type_array) ? json_object_array_length (a) : 0;
}

static inline struct json_object *
jc_item (const struct json_object *a, size_t i)
{
  return i < jc_len (a) ? json_object_array_get_idx (a, i) : NULL;
}

#endif /* GHOSTSWAP_TESTS_JSONC_CHECK_H */
