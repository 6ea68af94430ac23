/*
 * fuzz_adapter.c - libFuzzer targets "adapter-<name>": one venue answer
 * through feed_adapter_parse (markd_fuzz_adapter). One program serves all
 * adapters; the environment variable MARKD_FUZZ_ADAPTER names the one to
 * fuzz (scripts/fuzz sets it for each adapter-<name> target).
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "feeds/adapter.h"
#include "fuzz/targets.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *adapter;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char names[256];

	(void)argc;
	(void)argv;
	adapter = getenv("MARKD_FUZZ_ADAPTER");
	if (adapter == NULL || feed_adapter_find(adapter) == NULL) {
		feed_adapter_names(names, sizeof(names));
		fprintf(stderr, "fuzz_adapter: set MARKD_FUZZ_ADAPTER to one "
			"of: %s\n", names);
		exit(2);
	}
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	markd_fuzz_adapter(adapter, data, size);
	return 0;
}
