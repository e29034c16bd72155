/* ghostswap: a tiny JSON writer into a growing buffer.
 *
 * Values are appended in document order; the writer inserts the commas
 * and keeps track of nesting.  Inside an object every value takes a key;
 * inside an array or at the top level @key must be NULL.  Strings are
 * escaped, and a byte sequence that is not valid UTF-8 becomes U+FFFD, so
 * that the output is valid JSON whatever the input.  Doubles that are not
 * finite become null.
 *
 * The first error (out of memory, nesting too deep, a key where none
 * belongs) sticks: later calls do nothing and gs_json_finish reports it.
 *
 *   struct gs_json j;
 *   gs_json_init (&j);
 *   gs_json_object_begin (&j, NULL);
 *   gs_json_bool (&j, "ok", true);
 *   gs_json_object_end (&j);
 *   r = gs_json_finish (&j, &text, &len);   // text is malloc'd
 */
#ifndef GHOSTSWAP_JSON_H
#define GHOSTSWAP_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Deepest nesting of objects and arrays. */
#define GS_JSON_MAX_DEPTH 32

struct gs_json {
  char *buf;
  size_t len, cap;
  unsigned depth;
  int error;                          /* 0 or the first -errno */
  bool first[GS_JSON_MAX_DEPTH + 1];  /* nothing written yet at this depth */
  bool object[GS_JSON_MAX_DEPTH + 1]; /* this depth is an object */
};

/* gs_json_init - start an empty document in @j.
 * Context: any.  Return: nothing.
 */
void gs_json_init (struct gs_json *j);

/* gs_json_free - free @j's buffer (if gs_json_finish did not take it).
 * Context: any.  Return: nothing.
 */
void gs_json_free (struct gs_json *j);

/* gs_json_object_begin - open an object (as @key's value in an object).
 * Context: any.  Return: nothing.
 */
void gs_json_object_begin (struct gs_json *j, const char *key);

/* gs_json_object_end - close the innermost object.
 * Context: any.  Return: nothing.
 */
void gs_json_object_end (struct gs_json *j);

/* gs_json_array_begin - open an array (as @key's value in an object).
 * Context: any.  Return: nothing.
 */
void gs_json_array_begin (struct gs_json *j, const char *key);

/* gs_json_array_end - close the innermost array.
 * Context: any.  Return: nothing.
 */
void gs_json_array_end (struct gs_json *j);

/* gs_json_string - append the NUL-terminated string @s (NULL: null).
 * Context: any.  Return: nothing.
 */
void gs_json_string (struct gs_json *j, const char *key, const char *s);

/* gs_json_string_len - append the @len bytes at @s as a string (they may
 * hold NULs, which are escaped).
 * Context: any.  Return: nothing.
 */
void gs_json_string_len (struct gs_json *j, const char *key,
                         const char *s, size_t len);

/* gs_json_uint - append an unsigned integer.
 * Context: any.  Return: nothing.
 */
void gs_json_uint (struct gs_json *j, const char *key, uint64_t v);

/* gs_json_int - append a signed integer.
 * Context: any.  Return: nothing.
 */
void gs_json_int (struct gs_json *j, const char *key, int64_t v);

/* gs_json_double - append a number with 6 significant digits, whatever
 * the locale (null if @v is not finite).
 * Context: any.  Return: nothing.
 */
void gs_json_double (struct gs_json *j, const char *key, double v);

/* gs_json_bool - append true or false.
 * Context: any.  Return: nothing.
 */
void gs_json_bool (struct gs_json *j, const char *key, bool v);

/* gs_json_null - append null.
 * Context: any.  Return: nothing.
 */
void gs_json_null (struct gs_json *j, const char *key);

/* gs_json_finish - end the document and hand over its text: *@textp is a
 * malloc'd NUL-terminated string of *@lenp bytes that the caller frees.
 * Every object and array must have been closed.  @j is left empty.
 * Context: any.
 * Return: 0, or the first error: -ENOMEM, -EINVAL (misuse: unbalanced
 * nesting, a key missing or out of place), -E2BIG (nesting too deep).
 */
int gs_json_finish (struct gs_json *j, char **textp, size_t *lenp);

/* gs_json_utf8_valid - whether the @len bytes at @s are valid UTF-8
 * (no overlong forms, surrogates or code points past U+10FFFF).
 * Context: any.  Return: true or false.
 */
bool gs_json_utf8_valid (const char *s, size_t len);

#endif /* GHOSTSWAP_JSON_H */
