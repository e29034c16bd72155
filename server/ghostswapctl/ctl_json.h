/* ghostswapctl: reading the control socket's JSON answers (json-c).
 *
 * Small accessors over json-c's tree that never fail: a member that is
 * absent or of another type gives the default.  Integers are read as
 * json-c keeps them (64-bit, exact), so counters print exactly.
 */
#ifndef GHOSTSWAPCTL_JSON_H
#define GHOSTSWAPCTL_JSON_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

/* ctl_json_parse - parse one answer line.
 * Context: any.
 * Return: the tree (json_object_put it), or NULL with json-c's message
 * in *@errp (static).
 */
json_object *ctl_json_parse (const char *text, const char **errp);

/* ctl_json_get - the member @key of the object @obj.
 * Context: any.  Return: it, or NULL if @obj is not an object or has none.
 */
json_object *ctl_json_get (json_object *obj, const char *key);

/* ctl_json_str - the string member @key of @obj.
 * Context: any.  Return: it, or NULL if absent or not a string.
 */
const char *ctl_json_str (json_object *obj, const char *key);

/* ctl_json_bool - the boolean member @key of @obj.
 * Context: any.  Return: it, or @dflt if absent or not a boolean.
 */
bool ctl_json_bool (json_object *obj, const char *key, bool dflt);

/* ctl_json_u64 - the number member @key of @obj as an unsigned integer.
 * Context: any.  Return: it, or 0 if absent, not a number or negative.
 */
uint64_t ctl_json_u64 (json_object *obj, const char *key);

/* ctl_json_value_u64 - @v as an unsigned integer (see ctl_json_u64).
 * Context: any.  Return: it, or 0.
 */
uint64_t ctl_json_value_u64 (json_object *v);

/* ctl_json_num - the number member @key of @obj.
 * Context: any.  Return: it, or @dflt if absent or not a number.
 */
double ctl_json_num (json_object *obj, const char *key, double dflt);

#endif /* GHOSTSWAPCTL_JSON_H */
