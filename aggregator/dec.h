/*
 * dec.h - exact decimal fixed-point numbers for prices, sizes and amounts.
 *
 * A struct mk_dec is the value m * 10^-scale with a signed 64-bit mantissa
 * and 0 <= scale <= MK_DEC_MAX_SCALE. No binary floating point is involved
 * anywhere in this module, except in mk_dec_from_double() and
 * mk_dec_to_double(), which exist only for JSON numbers on input and for
 * statistics (volatility, probabilities) on output.
 *
 * Arithmetic uses 128-bit intermediates; every operation detects overflow
 * before it happens and reports MK_ERANGE instead of wrapping. Operations
 * whose exact result needs more digits than the requested scale take an
 * explicit rounding mode; MK_ROUND_EXACT refuses to lose digits.
 *
 * Values are plain structs passed by value; the functions are pure and
 * reentrant. Out-parameters may alias inputs. On error an out-parameter is
 * left unchanged.
 */
#ifndef MARKD_AGGREGATOR_DEC_H
#define MARKD_AGGREGATOR_DEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregator/status.h"

#define MK_DEC_MAX_SCALE 18
/* Longest text mk_dec_format can produce, with the NUL:
 * sign + 19 digits + point + leading "0" + NUL, rounded up. */
#define MK_DEC_STRLEN 48

struct mk_dec {
	int64_t m;      /* mantissa */
	int scale;      /* digits after the point, 0..MK_DEC_MAX_SCALE */
};

enum mk_round {
	MK_ROUND_EXACT,      /* error MK_EINEXACT if any non-zero digit drops */
	MK_ROUND_DOWN,       /* toward zero (truncate) */
	MK_ROUND_UP,         /* away from zero */
	MK_ROUND_FLOOR,      /* toward -infinity */
	MK_ROUND_CEIL,       /* toward +infinity */
	MK_ROUND_HALF_UP,    /* nearest, ties away from zero */
	MK_ROUND_HALF_EVEN,  /* nearest, ties to even (banker's) */
};

/* MK_DEC(m, scale): a constant, e.g. MK_DEC(12345, 2) == 123.45. */
#define MK_DEC(mant, sc) ((struct mk_dec){ .m = (mant), .scale = (sc) })

/*
 * Parses a plain decimal: optional '-' or '+', digits, optionally '.' and
 * more digits ("12", "-0.5", "67123.45", ".5" and "5." are accepted).
 * The text is s[0..len); it need not be NUL-terminated. The result keeps
 * the number of fraction digits written, except that trailing fraction
 * zeros that would not fit (past 18 digits or 64 bits) are dropped: they
 * change nothing.
 * Errors (err->msg says which): MK_EPARSE for empty text, a sign alone, two
 * points, exponents, "NaN", "Infinity", spaces or any other character;
 * MK_ERANGE when the value needs more than 18 fraction digits or does not
 * fit in a 64-bit mantissa at its scale.
 */
enum mk_status mk_dec_parse(const char *s, size_t len, struct mk_dec *out,
			    struct mk_err *err);

/* As mk_dec_parse, then mk_dec_rescale to `scale` with `mode`. */
enum mk_status mk_dec_parse_scaled(const char *s, size_t len, int scale,
				   enum mk_round mode, struct mk_dec *out,
				   struct mk_err *err);

/*
 * Writes the value as plain decimal text with exactly `a.scale` fraction
 * digits ("-0.50", "12", "0.000001") into buf, NUL-terminated.
 * Returns the length written, or 0 if cap < MK_DEC_STRLEN would not hold it
 * (cap >= MK_DEC_STRLEN always suffices).
 */
size_t mk_dec_format(struct mk_dec a, char *buf, size_t cap);

/* Same, after rounding to `scale` with `mode` (half-even for display);
 * returns 0 also when the rescale overflows. */
size_t mk_dec_format_scaled(struct mk_dec a, int scale, enum mk_round mode,
			    char *buf, size_t cap);

/* Changes the scale: exact when growing (MK_ERANGE on overflow), rounded
 * with `mode` when shrinking. MK_EINVAL for a scale outside 0..18. */
enum mk_status mk_dec_rescale(struct mk_dec a, int scale, enum mk_round mode,
			      struct mk_dec *out);

/* Exact comparison across scales: <0, 0, >0. Never fails. */
int mk_dec_cmp(struct mk_dec a, struct mk_dec b);

/* Exact a + b and a - b at scale max(a.scale, b.scale); MK_ERANGE when the
 * result does not fit. */
enum mk_status mk_dec_add(struct mk_dec a, struct mk_dec b, struct mk_dec *out);
enum mk_status mk_dec_sub(struct mk_dec a, struct mk_dec b, struct mk_dec *out);

/* a * b rounded to `scale` with `mode`; MK_ERANGE when it does not fit. */
enum mk_status mk_dec_mul(struct mk_dec a, struct mk_dec b, int scale,
			  enum mk_round mode, struct mk_dec *out);

/* a / b rounded to `scale` with `mode`; MK_EDIVZERO when b is zero,
 * MK_ERANGE when the quotient does not fit. */
enum mk_status mk_dec_div(struct mk_dec a, struct mk_dec b, int scale,
			  enum mk_round mode, struct mk_dec *out);

/* -a (MK_ERANGE for INT64_MIN) and |a|. */
enum mk_status mk_dec_neg(struct mk_dec a, struct mk_dec *out);
enum mk_status mk_dec_abs(struct mk_dec a, struct mk_dec *out);

/* The integer v at scale 0. */
struct mk_dec mk_dec_from_int(int64_t v);

/*
 * A JSON number read as a double, taken through its shortest round-trip
 * decimal form (0.1 -> "0.1", not 0.1000000000000000055...). MK_EINVAL for
 * NaN or infinities, MK_ERANGE when it does not fit.
 */
enum mk_status mk_dec_from_double(double v, struct mk_dec *out,
				  struct mk_err *err);

/* Nearest double, for statistics only (never for money decisions). */
double mk_dec_to_double(struct mk_dec a);

static inline bool mk_dec_is_zero(struct mk_dec a) { return a.m == 0; }
static inline bool mk_dec_is_neg(struct mk_dec a) { return a.m < 0; }
static inline bool mk_dec_is_pos(struct mk_dec a) { return a.m > 0; }
static inline int mk_dec_sign(struct mk_dec a)
{
	return (a.m > 0) - (a.m < 0);
}

#endif
