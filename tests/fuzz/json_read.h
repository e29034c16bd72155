/* ghostswap tests: a minimal JSON reader, independent of json-c, to read
 * the control socket's answers.
 *
 * It parses a whole document into a tree.  Object members keep their
 * order; a number keeps its text too, so that 64-bit counters print
 * exactly.  Strings are decoded (\uXXXX escapes, surrogate pairs
 * included) to UTF-8 and may not hold NUL.
 */
#ifndef GHOSTSWAP_JSON_READ_H
#define GHOSTSWAP_JSON_READ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Deepest nesting accepted. */
#define JR_MAX_DEPTH 64

enum jr_type { JR_NULL, JR_BOOL, JR_NUMBER, JR_STRING, JR_ARRAY, JR_OBJECT };

struct jr_value {
  enum jr_type type;
  bool boolean;               /* JR_BOOL */
  double number;              /* JR_NUMBER */
  char *text;                 /* JR_STRING: decoded; JR_NUMBER: as written */
  size_t n;                   /* JR_ARRAY, JR_OBJECT: members */
  char **keys;                /* JR_OBJECT */
  struct jr_value **items;    /* JR_ARRAY, JR_OBJECT */
};

/* jr_parse - parse the @len bytes at @text (one value, with white space
 * around it allowed).
 * Context: any.
 * Return: the tree (free it with jr_free), or NULL with a message naming
 * the offset in @err.
 */
struct jr_value *jr_parse (const char *text, size_t len,
                           char *err, size_t errlen);

/* jr_free - free a tree from jr_parse (NULL is fine).
 * Context: any.  Return: nothing.
 */
void jr_free (struct jr_value *v);

/* jr_get - the member @key of the object @obj.
 * Context: any.  Return: it, or NULL if @obj is not an object or has none.
 */
const struct jr_value *jr_get (const struct jr_value *obj, const char *key);

/* jr_str - the string member @key of @obj.
 * Context: any.  Return: it, or NULL if absent or not a string.
 */
const char *jr_str (const struct jr_value *obj, const char *key);

/* jr_bool - the boolean member @key of @obj.
 * Context: any.  Return: it, or @dflt if absent or not a boolean.
 */
bool jr_bool (const struct jr_value *obj, const char *key, bool dflt);

/* jr_u64 - the member @key of @obj as an unsigned integer (exact for
 * integers written without fraction or exponent).
 * Context: any.  Return: it, or 0 if absent, not a number or negative.
 */
uint64_t jr_u64 (const struct jr_value *obj, const char *key);

/* jr_num - the number member @key of @obj.
 * Context: any.  Return: it, or @dflt if absent or not a number.
 */
double jr_num (const struct jr_value *obj, const char *key, double dflt);

/* jr_value_u64 - @v as an unsigned integer (see jr_u64).
 * Context: any.  Return: it, or 0.
 */
uint64_t jr_value_u64 (const struct jr_value *v);

#endif /* GHOSTSWAP_JSON_READ_H */
