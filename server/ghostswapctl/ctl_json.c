/* ghostswapctl: accessors over json-c (see ctl_json.h). */
#include <string.h>

#include "ctl_json.h"

/* ctl_json_parse - see ctl_json.h. */
json_object *
ctl_json_parse (const char *text, const char **errp)
{
  enum json_tokener_error jerr = json_tokener_success;
  json_object *v = json_tokener_parse_verbose (text, &jerr);

  if (v == NULL)
    *errp = jerr == json_tokener_success ? "null"
      : json_tokener_error_desc (jerr);
  return v;
}

/* ctl_json_get - see ctl_json.h. */
json_object *
ctl_json_get (json_object *obj, const char *key)
{
  json_object *v;

  if (obj == NULL || !json_object_is_type (obj, json_type_object)
      || !json_object_object_get_ex (obj, key, &v))
    return NULL;
  return v;
}

/* ctl_json_str - see ctl_json.h. */
const char *
ctl_json_str (json_object *obj, const char *key)
{
  json_object *v = ctl_json_get (obj, key);

  return v && json_object_is_type (v, json_type_string)
    ? json_object_get_string (v) : NULL;
}

/* ctl_json_bool - see ctl_json.h. */
bool
ctl_json_bool (json_object *obj, const char *key, bool dflt)
{
  json_object *v = ctl_json_get (obj, key);

  return v && json_object_is_type (v, json_type_boolean)
    ? json_object_get_boolean (v) : dflt;
}

/* ctl_json_value_u64 - see ctl_json.h. */
uint64_t
ctl_json_value_u64 (json_object *v)
{
  double d;

  if (v == NULL)
    return 0;
  if (json_object_is_type (v, json_type_int)) {
    /* json-c keeps integers above INT64_MAX as unsigned. */
    if (json_object_get_int64 (v) < 0)
      return 0;
    return json_object_get_uint64 (v);
  }
  if (json_object_is_type (v, json_type_double)) {
    d = json_object_get_double (v);
    return d > 0 && d < 18446744073709551616.0 ? (uint64_t) d : 0;
  }
  return 0;
}

/* ctl_json_u64 - see ctl_json.h. */
uint64_t
ctl_json_u64 (json_object *obj, const char *key)
{
  return ctl_json_value_u64 (ctl_json_get (obj, key));
}

/* ctl_json_num - see ctl_json.h. */
double
ctl_json_num (json_object *obj, const char *key, double dflt)
{
  json_object *v = ctl_json_get (obj, key);

  if (v && (json_object_is_type (v, json_type_int)
            || json_object_is_type (v, json_type_double)))
    return json_object_get_double (v);
  return dflt;
}
