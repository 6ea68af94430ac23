/*
 * json_dec.h - reading a JSON value as an exact decimal.
 *
 * On the wire every price and amount is a JSON string holding a plain
 * decimal; inputs also accept JSON numbers, read through their shortest
 * round-trip decimal form (DESIGN.md section 3). jansson is a pure parsing
 * library, so this stays within the aggregator's "no I/O" rule.
 *
 * Reentrant; the json_t is borrowed.
 */
#ifndef MARKD_AGGREGATOR_JSON_DEC_H
#define MARKD_AGGREGATOR_JSON_DEC_H

#include <jansson.h>

#include "aggregator/dec.h"

/*
 * Reads v (a string with a plain decimal, an integer or a real) into out.
 * Errors: MK_EINVAL when v is NULL or another JSON type (the message says
 * which type it got), else whatever mk_dec_parse/mk_dec_from_double say.
 * The message names no field: callers prefix it with the field's path.
 */
enum mk_status mk_json_dec(const json_t *v, struct mk_dec *out,
			   struct mk_err *err);

/* JSON type name for messages: "string", "number", "object", "null"... */
const char *mk_json_type_name(const json_t *v);

#endif
