/*
 * targets.h - the bodies of markd's fuzz targets, shared by the libFuzzer
 * programs (fuzz/fuzz_one.c, fuzz/fuzz_adapter.c, built with clang
 * --enable-fuzzing) and by the
 * regression replay tests/check_fuzz_regress (built by every `make check`),
 * so a replayed crash input runs exactly the code the fuzzer ran.
 *
 * Each entry takes one input data[0..size) (any bytes, not NUL-terminated),
 * drives one parser of outside input through its public interface, then
 * checks what the parser promises: a success yields a consistent value, a
 * failure yields a known status and a non-empty message that says what
 * and where. A broken promise prints the target, what was broken and the
 * parser's message to stderr and calls abort(), which libFuzzer and Check
 * both report as a crash. Memory errors and undefined behaviour are left
 * to ASan and UBSan.
 *
 * Targets (the names scripts/fuzz and tests/data/fuzz-regressions/ use):
 *   dec              mk_dec_parse and friends, mk_json_dec
 *   adapter-<name>   feed_adapter_parse of adapter <name> (all 11)
 *   config           cfg_load_buffer
 *   history          history_parse (the history CSV reader)
 *   position         the PUT /v1/positions/{id} body   (only in builds
 *   evaluate         the POST /v1/margin/evaluate body  with
 *   collateral       the POST /v1/positions/{id}/collateral body
 *                                                       fuzz/http.inc)
 *
 * Input layouts are described at each entry and in fuzz/README.md.
 *
 * Thread safety: every entry is reentrant (no globals). Ownership: data is
 * borrowed; everything an entry allocates is released before it returns,
 * so LeakSanitizer reports any leak of the parser under test.
 */
#ifndef MARKD_FUZZ_TARGETS_H
#define MARKD_FUZZ_TARGETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Decimal text. The input is split at its first '|' into a and b (b is
 * absent without a '|'). a is parsed with mk_dec_parse, formatted back and
 * re-parsed (same value and scale), and rescaled with every rounding mode
 * at several scales (floor <= value <= ceil, exact only when lossless).
 * When b also parses: comparison symmetry, a + b - b == a, products and
 * quotients at several scales. The whole input is also read as one JSON
 * value and, when it is a scalar, through mk_json_dec.
 * Returns 1 when a parsed, 0 when it was refused cleanly.
 */
int markd_fuzz_dec(const uint8_t *data, size_t size);

/*
 * One venue answer for adapter `adapter` (a name feed_adapter_find knows;
 * abort() on an unknown one, that is a bug of the caller).
 * Layout: the first line is the market id (an empty line asks for every
 * market); for the json adapter only, the second line is its "options"
 * object; the rest is the response body. The body is parsed for the
 * market (when the id passes feed_adapter_check_market, else the parse
 * must answer MK_EINVAL) and for every market with a small and a large
 * cap; each quote must carry its market and a usable price, and must
 * render to valid JSON. Returns 1 when a parse succeeded, else 0.
 */
int markd_fuzz_adapter(const char *adapter, const uint8_t *data, size_t size);

/*
 * A config file's bytes, through cfg_load_buffer. A success must come with
 * no error and a config whose cross references hold (leg sources enabled
 * and in range, markets accepted by their adapters, conversions in range,
 * every source's options compiling); a failure with no config and 1 to
 * CFG_MAX_ERRORS messages. Returns 1 when the config loaded, else 0.
 */
int markd_fuzz_config(const uint8_t *data, size_t size);

/*
 * A history CSV file's bytes, through history_parse (at most 4096 rows).
 * A success must give sorted, consistent bars, history_find must find
 * each bar, and history_price_at must stay within each bar's low..high.
 * Returns 1 when the file parsed, else 0.
 */
int markd_fuzz_history(const uint8_t *data, size_t size);

/*
 * A PUT /v1/positions/{id} body: httpd_parse_json_body, then
 * httpd_margin_parse as the route reads it, against three fixed
 * instruments (BTC-USD linear with brackets, BTC-USDI inverse with
 * brackets and a contract size, SOL-USD without brackets). An accepted
 * position's canonical JSON must read back (stored mode) to the same
 * canonical JSON. Returns 1 when accepted, else 0. Only in builds that
 * include fuzz/http.inc (MARKD_FUZZ_HTTP defined).
 */
int markd_fuzz_position(const uint8_t *data, size_t size);

/*
 * A POST /v1/margin/evaluate body: one position or {"positions":[...]},
 * each item read as the route reads it (evaluate mode, "positions[i]."
 * prefix), then margin_evaluate and margin_verdict at its "price" (or at
 * a fixed mark 40000.00 +- 12.50) with its statistics and targets.
 * Returns 1 when every item was accepted, else 0. As markd_fuzz_position,
 * only with fuzz/http.inc.
 */
int markd_fuzz_evaluate(const uint8_t *data, size_t size);

/*
 * A POST /v1/positions/{id}/collateral body: httpd_parse_json_body, then
 * httpd_margin_parse_collateral as the route reads it. A refusal must
 * name nothing, "delta" or a key of the body as its field; an acceptance
 * must come from exactly {"delta": D} with D not zero, and D must print
 * and read back to the same value and scale. Returns 1 when accepted,
 * else 0. As markd_fuzz_position, only with fuzz/http.inc.
 */
int markd_fuzz_collateral(const uint8_t *data, size_t size);

/*
 * Runs target `name` ("dec", "config", "history", "adapter-binance", ...)
 * on data. Returns the entry's result, or -1 when there is no such target.
 */
int markd_fuzz_run(const char *name, const uint8_t *data, size_t size);

/* Number of targets built in, and the i-th one's name (NULL past the
 * end), in the order scripts/fuzz runs them. */
size_t markd_fuzz_target_count(void);
const char *markd_fuzz_target_name(size_t i);

/* Whether name is a target's, built in or left out of this build (the
 * regression folders of both kinds are legitimate). */
bool markd_fuzz_target_known(const char *name);

#endif
