/*
 * fakex_fault.h - which fault each venue of markd-fakex suffers at a given
 * moment: the scenario's schedule, overridden by faults set at run time
 * through the admin endpoint.
 *
 * Rules:
 * - a scheduled fault is active during [at + k x every, ... + for) for
 *   k = 0, 1, ... (only k = 0 when every is 0); times are real
 *   milliseconds since fakex started, untouched by the scenario's speed;
 *   when two scheduled faults of one venue overlap, the earlier entry wins;
 * - an admin fault replaces whatever the schedule says for its venue until
 *   it expires (for_ms > 0) or is cleared;
 * - clearing a venue also silences the scheduled occurrences that are
 *   active at that moment (later occurrences still happen);
 * - a wick fault makes its first `count` answers off, then answers are
 *   normal again until the fault ends.
 *
 * Pure state machine: time is a parameter, nothing reads a clock.
 * Thread safety: none inside; the server serialises calls with its lock.
 * Ownership: the table borrows the scenario, which must outlive it.
 */
#ifndef MARKD_TOOLS_FAKEX_FAULT_H
#define MARKD_TOOLS_FAKEX_FAULT_H

#include <stdbool.h>
#include <stdint.h>

#include "tools/fakex_scenario.h"

/* A fault in force for one venue. */
struct fakex_active {
	struct fakex_fault_spec spec;  /* kind FAKEX_FAULT_NONE when none */
	bool from_admin;
	int64_t start_ms;              /* real ms since start when it began */
	int64_t until_ms;              /* when it ends; INT64_MAX = cleared only */
	uint32_t wick_left;            /* answers still to be off (wick) */
	/* identity of a scheduled occurrence: entry index, occurrence k */
	size_t sched_index;
	int64_t sched_k;
};

struct fakex_faults {
	const struct fakex_scenario *sc;
	struct fakex_active admin[FAKEX_NVENUES];
	struct fakex_active sched[FAKEX_NVENUES];
	int64_t cleared_ms[FAKEX_NVENUES];   /* occurrences begun before are off */
};

/* An empty table for scenario sc (borrowed). */
void fakex_faults_init(struct fakex_faults *f, const struct fakex_scenario *sc);

/*
 * The fault of venue v at now_ms (kind NONE when none), copied to *out.
 * When `answer` is true this is a real answer being made: a wick fault then
 * spends one of its off answers, and *wick_hit tells whether this answer
 * is one (may be NULL when answer is false).
 */
void fakex_faults_get(struct fakex_faults *f, enum fakex_venue v,
		      int64_t now_ms, bool answer, struct fakex_active *out,
		      bool *wick_hit);

/* Sets an admin fault on spec->venue from now_ms for spec->for_ms
 * (0 = until cleared), replacing any earlier admin fault. */
void fakex_faults_set(struct fakex_faults *f,
		      const struct fakex_fault_spec *spec, int64_t now_ms);

/* Clears venue v's admin fault and silences its scheduled occurrences
 * active at now_ms. */
void fakex_faults_clear(struct fakex_faults *f, enum fakex_venue v,
			int64_t now_ms);

/*
 * The price shift, in ppm, that the fault `a` applies at now_ms: the wick
 * offset when wick_hit, the drift grown so far, else 0. Pure.
 */
int64_t fakex_fault_ppm(const struct fakex_active *a, bool wick_hit,
			int64_t now_ms);

#endif
