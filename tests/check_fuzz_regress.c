/*
 * check_fuzz_regress.c - replays the fuzz regression inputs.
 *
 * Every file in tests/data/fuzz-regressions/<target>/ is run through the
 * same function the libFuzzer program of <target> runs (fuzz/targets.c),
 * under this build's ASan and UBSan. The function aborts when the parser
 * breaks a promise (an unknown status, an error without a message, an
 * inconsistent result), so a test passes only when every input ends in a
 * clean success or a clean error. Also: every target has a folder with at
 * least one input, every folder names a target, every adapter has a target,
 * and paths stay short enough for `make dist`'s tar format.
 */
#include "config.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "feeds/adapter.h"
#include "fuzz/targets.h"
#include "tests/testutil.h"

#define REGRESS "tests/data/fuzz-regressions"
#define MAX_FILES 1024
/* make dist writes v7 tar files: 99 bytes per path, "markd-x.y.z/"
 * included (the same bound as check_adapters). */
#define DIST_PATH_MAX 85

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The regular files of dir, sorted; returns how many (names are new). */
static size_t
list_files(const char *dir, char **names, size_t cap)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t n = 0;

	ck_assert_msg(d != NULL, "cannot open %s", dir);
	while ((e = readdir(d)) != NULL) {
		char path[1536];
		struct stat st;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		ck_assert_msg(stat(path, &st) == 0, "cannot stat %s", path);
		ck_assert_msg(S_ISREG(st.st_mode), "%s is not a file", path);
		ck_assert_msg(n < cap, "more than %zu files in %s", cap, dir);
		names[n] = strdup(e->d_name);
		ck_assert(names[n] != NULL);
		n++;
	}
	closedir(d);
	qsort(names, n, sizeof(*names), cmp_names);
	return n;
}

/* The whole file in a buffer of exactly its size (at least 1 byte). */
static uint8_t *
read_file(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	uint8_t *buf;
	long size;

	ck_assert_msg(fp != NULL, "cannot open %s", path);
	ck_assert(fseek(fp, 0, SEEK_END) == 0);
	size = ftell(fp);
	ck_assert(size >= 0);
	rewind(fp);
	buf = malloc(size > 0 ? (size_t)size : 1);
	ck_assert(buf != NULL);
	ck_assert_msg(fread(buf, 1, (size_t)size, fp) == (size_t)size,
		      "short read of %s", path);
	fclose(fp);
	*len = (size_t)size;
	return buf;
}

static bool
is_target(const char *name)
{
	for (size_t i = 0; i < markd_fuzz_target_count(); i++)
		if (strcmp(markd_fuzz_target_name(i), name) == 0)
			return true;
	return false;
}

/* One target: every input of its folder, in name order. */
START_TEST(test_replay)
{
	const char *target = markd_fuzz_target_name((size_t)_i);
	char rel[256], dir[1024];
	char *names[MAX_FILES];
	size_t n, ok = 0;

	ck_assert(target != NULL);
	snprintf(rel, sizeof(rel), REGRESS "/%s", target);
	tu_srcpath(dir, sizeof(dir), rel);
	n = list_files(dir, names, MAX_FILES);
	ck_assert_msg(n > 0, "%s has no inputs: every fuzz target keeps at "
		      "least one regression input", rel);
	for (size_t i = 0; i < n; i++) {
		char path[1280];
		uint8_t *data;
		size_t len;
		int r;

		ck_assert_msg(strlen(rel) + 1 + strlen(names[i]) <= DIST_PATH_MAX,
			      "%s/%s: path longer than %d bytes, make dist "
			      "would drop it", rel, names[i], DIST_PATH_MAX);
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		data = read_file(path, &len);
		/* Named on stderr first: a crash log then says which input. */
		fprintf(stderr, "replay %s/%s (%zu bytes)\n", target, names[i],
			len);
		r = markd_fuzz_run(target, data, len);
		ck_assert_msg(r == 0 || r == 1, "%s/%s: result %d", target,
			      names[i], r);
		ok += (size_t)r;
		free(data);
		free(names[i]);
	}
	fprintf(stderr, "%s: %zu inputs, %zu accepted, %zu refused cleanly\n",
		target, n, ok, n - ok);
}
END_TEST

/* Each folder under fuzz-regressions/ is a target's (built in, or left
 * out of this build): a misspelt one would never be replayed. */
START_TEST(test_folders_are_targets)
{
	char dir[1024];
	DIR *d;
	struct dirent *e;
	size_t n = 0;

	tu_srcpath(dir, sizeof(dir), REGRESS);
	d = opendir(dir);
	ck_assert_msg(d != NULL, "cannot open %s", dir);
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		ck_assert_msg(markd_fuzz_target_known(e->d_name),
			      REGRESS "/%s is not a fuzz target's folder",
			      e->d_name);
		n += is_target(e->d_name);
	}
	closedir(d);
	/* and every target built in has its folder (test_replay opens it) */
	ck_assert_uint_eq(n, markd_fuzz_target_count());
}
END_TEST

/* Every adapter is fuzzed; unknown targets are refused. */
START_TEST(test_every_adapter_has_a_target)
{
	char name[64];

	for (size_t i = 0; i < feed_adapter_count(); i++) {
		snprintf(name, sizeof(name), "adapter-%s",
			 feed_adapter_name(feed_adapter_at(i)));
		ck_assert_msg(is_target(name), "no fuzz target %s", name);
	}
	ck_assert_int_eq(markd_fuzz_run("adapter-nosuch",
					(const uint8_t *)"x", 1), -1);
	ck_assert_int_eq(markd_fuzz_run("nosuch", (const uint8_t *)"x", 1),
			 -1);
	ck_assert_ptr_null(markd_fuzz_target_name(markd_fuzz_target_count()));
}
END_TEST

/* The entries accept and refuse what they should: a valid input of each
 * kind gives 1, garbage gives 0 (so a replay that returned early on
 * everything would not pass unnoticed). */
START_TEST(test_entries_report_outcome)
{
	static const char csv[] =
		"ts_utc_unix,open,high,low,close,volume\n"
		"1678233600,22196.56,22203.71,22193.67,22200.47,1.27619\n";
	static const char body[] =
		"BTCUSDT\n{\"symbol\":\"BTCUSDT\",\"price\":\"60740.00\"}";
	static const char cfg[] =
		"{\"sources\":[{\"name\":\"cb\",\"adapter\":\"coinbase\","
		"\"base_url\":\"https://api.exchange.coinbase.com\"}],"
		"\"instruments\":[{\"symbol\":\"BTC-USD\",\"min_sources\":1,"
		"\"legs\":[{\"source\":\"cb\",\"market\":\"BTC-USD\"}]}]}";
	static const char json_body[] =
		"X\n{\"path\":\"/p\",\"price\":\"/p\"}\n{\"p\":\"5.5\"}";

	ck_assert_int_eq(markd_fuzz_run("dec", (const uint8_t *)"-0.5|2", 6), 1);
	ck_assert_int_eq(markd_fuzz_run("dec", (const uint8_t *)"1e5", 3), 0);
	ck_assert_int_eq(markd_fuzz_run("history", (const uint8_t *)csv,
					sizeof(csv) - 1), 1);
	ck_assert_int_eq(markd_fuzz_run("history", (const uint8_t *)"x", 1), 0);
	ck_assert_int_eq(markd_fuzz_run("adapter-binance",
					(const uint8_t *)body,
					sizeof(body) - 1), 1);
	ck_assert_int_eq(markd_fuzz_run("adapter-json",
					(const uint8_t *)json_body,
					sizeof(json_body) - 1), 1);
	ck_assert_int_eq(markd_fuzz_run("adapter-kraken",
					(const uint8_t *)"\n{", 2), 0);
	ck_assert_int_eq(markd_fuzz_run("config", (const uint8_t *)cfg,
					sizeof(cfg) - 1), 1);
	ck_assert_int_eq(markd_fuzz_run("config", (const uint8_t *)"{}", 2), 0);
	/* the margin bodies, in builds that have them (fuzz/http.inc) */
	if (is_target("collateral")) {
		ck_assert_int_eq(markd_fuzz_run("collateral", (const uint8_t *)
						"{\"delta\":\"-1.5\"}", 16), 1);
		ck_assert_int_eq(markd_fuzz_run("collateral", (const uint8_t *)
						"{\"delta\":\"0\"}", 13), 0);
	}
}
END_TEST

static Suite *
fuzz_regress_suite(void)
{
	Suite *s = suite_create("fuzz_regress");
	TCase *tc = tcase_create("replay");

	tcase_add_loop_test(tc, test_replay, 0,
			    (int)markd_fuzz_target_count());
	tcase_add_test(tc, test_folders_are_targets);
	tcase_add_test(tc, test_every_adapter_has_a_target);
	tcase_add_test(tc, test_entries_report_outcome);
	suite_add_tcase(s, tc);
	return s;
}

TU_MAIN(fuzz_regress_suite)
