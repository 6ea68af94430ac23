/*
 * fakex_fault.c - the fault table of markd-fakex (see fakex_fault.h).
 */
#include "config.h"

#include "tools/fakex_fault.h"

#include <string.h>

void
fakex_faults_init(struct fakex_faults *f, const struct fakex_scenario *sc)
{
	memset(f, 0, sizeof(*f));
	f->sc = sc;
	for (int v = 0; v < FAKEX_NVENUES; v++)
		f->cleared_ms[v] = INT64_MIN;
}

/* Start of the occurrence of scheduled fault s active at now, or -1. */
static int64_t
occurrence(const struct fakex_fault_spec *s, int64_t now, int64_t *k)
{
	int64_t n = 0, start;

	if (now < s->at_ms)
		return -1;
	if (s->every_ms > 0)
		n = (now - s->at_ms) / s->every_ms;
	start = s->at_ms + n * s->every_ms;
	if (now - start >= s->for_ms)
		return -1;
	*k = n;
	return start;
}

static void
update_sched(struct fakex_faults *f, enum fakex_venue v, int64_t now)
{
	struct fakex_active *cur = &f->sched[v];

	for (size_t i = 0; i < f->sc->nfaults; i++) {
		const struct fakex_fault_spec *s = &f->sc->faults[i];
		int64_t k = 0, start;

		if (s->venue != v)
			continue;
		start = occurrence(s, now, &k);
		if (start < 0 || start < f->cleared_ms[v])
			continue;
		if (cur->spec.kind == FAKEX_FAULT_NONE || cur->sched_index != i ||
		    cur->sched_k != k) {
			memset(cur, 0, sizeof(*cur));
			cur->spec = *s;
			cur->start_ms = start;
			cur->until_ms = start + s->for_ms;
			cur->wick_left = s->params.count;
			cur->sched_index = i;
			cur->sched_k = k;
		}
		return;
	}
	memset(cur, 0, sizeof(*cur));
}

void
fakex_faults_get(struct fakex_faults *f, enum fakex_venue v, int64_t now_ms,
		 bool answer, struct fakex_active *out, bool *wick_hit)
{
	struct fakex_active *a = &f->admin[v];
	bool hit = false;

	if (a->spec.kind != FAKEX_FAULT_NONE && now_ms >= a->until_ms)
		memset(a, 0, sizeof(*a));
	update_sched(f, v, now_ms);
	if (a->spec.kind == FAKEX_FAULT_NONE)
		a = &f->sched[v];
	if (answer && a->spec.kind == FAKEX_FAULT_WICK && a->wick_left > 0) {
		a->wick_left--;
		hit = true;
	}
	*out = *a;
	if (wick_hit != NULL)
		*wick_hit = hit;
}

void
fakex_faults_set(struct fakex_faults *f, const struct fakex_fault_spec *spec,
		 int64_t now_ms)
{
	struct fakex_active *a = &f->admin[spec->venue];

	memset(a, 0, sizeof(*a));
	a->spec = *spec;
	a->from_admin = true;
	a->start_ms = now_ms;
	a->until_ms = spec->for_ms > 0 ? now_ms + spec->for_ms : INT64_MAX;
	a->wick_left = spec->params.count;
}

void
fakex_faults_clear(struct fakex_faults *f, enum fakex_venue v, int64_t now_ms)
{
	memset(&f->admin[v], 0, sizeof(f->admin[v]));
	memset(&f->sched[v], 0, sizeof(f->sched[v]));
	f->cleared_ms[v] = now_ms + 1;
}

int64_t
fakex_fault_ppm(const struct fakex_active *a, bool wick_hit, int64_t now_ms)
{
	int64_t ppm, cap;

	if (a->spec.kind == FAKEX_FAULT_WICK)
		return wick_hit ? (int64_t)a->spec.params.bps * 100 : 0;
	if (a->spec.kind != FAKEX_FAULT_DRIFT || now_ms <= a->start_ms)
		return 0;
	/* bps_per_min x minutes, in ppm: 100 ppm per bps; |rate| <= 10^4
	 * and the elapsed time is capped below, so nothing overflows. */
	cap = (int64_t)a->spec.params.max_bps * 100;
	if (now_ms - a->start_ms > INT64_C(1000000000000))
		return a->spec.params.bps_per_min < 0 ? -cap : cap;
	ppm = (int64_t)a->spec.params.bps_per_min * 100 *
	      (now_ms - a->start_ms) / 60000;
	if (ppm > cap)
		ppm = cap;
	if (ppm < -cap)
		ppm = -cap;
	return ppm;
}
