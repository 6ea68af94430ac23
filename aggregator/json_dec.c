#include "config.h"

#include "aggregator/json_dec.h"


const char *
mk_json_type_name(const json_t *v)
{
	if (v == NULL)
		return "nothing";
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a number";
	case JSON_TRUE: return "true";
	case JSON_FALSE: return "false";
	case JSON_NULL: return "null";
	}
	return "an unknown JSON value";
}

enum mk_status
mk_json_dec(const json_t *v, struct mk_dec *out, struct mk_err *err)
{
	if (json_is_string(v))
		return mk_dec_parse(json_string_value(v), json_string_length(v),
				    out, err);
	if (json_is_integer(v)) {
		_Static_assert(sizeof(json_int_t) == sizeof(int64_t),
			       "json_int_t is 64 bits");
		*out = mk_dec_from_int((int64_t)json_integer_value(v));
		return MK_OK;
	}
	if (json_is_real(v))
		return mk_dec_from_double(json_real_value(v), out, err);
	return mk_err_set(err, MK_EINVAL,
			  "expected a decimal string or number, got %s",
			  mk_json_type_name(v));
}
