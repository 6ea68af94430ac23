/*
 * fuzz_one.c - the libFuzzer program of one target. Each program compiles
 * this file with MARKD_FUZZ_ENTRY set to its entry (markd_fuzz_dec,
 * markd_fuzz_config, ...; see fuzz/fuzz.inc), so every program runs
 * exactly the function tests/check_fuzz_regress replays.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>

#include "fuzz/targets.h"

#ifndef MARKD_FUZZ_ENTRY
#error "define MARKD_FUZZ_ENTRY to the target's markd_fuzz_* function"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	MARKD_FUZZ_ENTRY(data, size);
	return 0;
}
