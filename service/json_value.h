/* ghostswap service: the few JSON values json-c does not make the way the
 * control protocol promises (docs/ghostswapctl.pod, "ANSWERS"):
 *
 *   - strings are valid UTF-8 whatever the input (a path is only bytes):
 *     an invalid sequence becomes U+FFFD;
 *   - doubles are written with the fewest digits that read back as the
 *     same double (json-c's default %.17g prints 0.1 as
 *     0.10000000000000001), and as null when they are not finite (JSON
 *     has no NaN);
 *   - integers are exact (json-c's int64/uint64), never exponents.
 *
 * Everything else is json-c's own (objects, arrays, escaping, printing).
 */
#ifndef GHOSTSWAP_SERVICE_JSON_VALUE_H
#define GHOSTSWAP_SERVICE_JSON_VALUE_H

#include <stdbool.h>
#include <stddef.h>

#include <json.h>

/* gs_json_string - a JSON string of the @len bytes at @s (NULs allowed,
 * invalid UTF-8 replaced by U+FFFD).
 * Context: any.  Return: a new json_object, or NULL (out of memory).
 */
struct json_object *gs_json_string (const char *s, size_t len);

/* gs_json_double - @v as the shortest number that round-trips, or a
 * JSON null (NULL) when @v is NaN or infinite.
 * Context: any.  Return: a new json_object, or NULL.
 */
struct json_object *gs_json_double (double v);

/* gs_json_text - @obj printed on one line, without spaces.  The text
 * belongs to @obj (json_object_to_json_string_length).
 * Context: any.  Return: the text and *@lenp, or NULL (out of memory).
 */
const char *gs_json_text (struct json_object *obj, size_t *lenp);

/* gs_utf8_valid - whether the @len bytes at @s are valid UTF-8 (no
 * overlong forms, surrogates or code points past U+10FFFF).
 * Context: any.  Return: true or false.
 */
bool gs_utf8_valid (const char *s, size_t len);

#endif /* GHOSTSWAP_SERVICE_JSON_VALUE_H */
