/*
 * replay_report.c - scores, summary.json, the CSV files and the table.
 */
#include "config.h"

#include "tools/replay_report.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "aggregator/snapshot.h"
#include "aggregator/wide.h"
#include "feeds/rfc3339.h"
#include "tools/replay_svg.h"

#define PATH_CAP 4096

/* ---- scoring ---------------------------------------------------------- */

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* Median (doubled), p90 and max of the n delays in v (sorted here). */
static void
delay_stats(int64_t *v, size_t n, struct replay_stats *st)
{
	st->ndelays = n;
	if (n == 0)
		return;
	qsort(v, n, sizeof(*v), cmp_i64);
	st->delay_median_ms2 = n % 2 ? 2 * v[n / 2] : v[n / 2 - 1] + v[n / 2];
	st->delay_p90_ms = v[(9 * n + 9) / 10 - 1];
	st->delay_max_ms = v[n - 1];
}

/* The step with the most false liquidations; without any, the step where
 * the methods' marks lie furthest apart (relative to the lowest). */
static size_t
worst_step(const struct replay_result *res, const struct replay_score *sc)
{
	size_t *count, best = 0, nsteps = res->nsteps;
	agg_i128 bs = 0, bm = 1;

	count = calloc(nsteps > 0 ? nsteps : 1, sizeof(*count));
	if (count != NULL) {
		for (size_t mi = 0; mi < res->nmethods; mi++)
			for (size_t p = 0; p < res->npos; p++) {
				const struct replay_liq *lq =
					&res->liqs[mi * res->npos + p];

				if (lq->has && sc->is_false[mi * res->npos + p])
					count[lq->step]++;
			}
		for (size_t s = 1; s < nsteps; s++)
			if (count[s] > count[best])
				best = s;
		if (nsteps > 0 && count[best] > 0) {
			free(count);
			return best;
		}
		free(count);
	}
	best = 0;
	for (size_t s = 0; s < nsteps; s++) {
		int64_t lo = INT64_MAX, hi = INT64_MIN;

		for (size_t mi = 0; mi < res->nmethods; mi++) {
			int64_t v = res->marks[mi * nsteps + s];

			if (v == REPLAY_NO_MARK)
				continue;
			lo = v < lo ? v : lo;
			hi = v > hi ? v : hi;
		}
		if (lo == INT64_MAX || lo <= 0)
			continue;
		/* (hi - lo) / lo > bs / bm */
		if (((agg_i128)hi - lo) * bm > bs * lo) {
			bs = (agg_i128)hi - lo;
			bm = lo;
			best = s;
		}
	}
	return best;
}

enum mk_status
replay_score_build(const struct replay_data *d,
		   const struct replay_positions *ps,
		   const struct replay_truth *t,
		   const struct replay_result *res, struct replay_score *sc,
		   struct mk_err *err)
{
	size_t nm = res->nmethods, np = ps->n;
	size_t *run;
	int64_t *v = NULL;
	enum mk_status st = MK_OK;

	memset(sc, 0, sizeof(*sc));
	sc->stats = calloc(nm > 0 ? nm : 1, sizeof(*sc->stats));
	sc->is_false = calloc(nm * np + 1, 1);
	sc->delay_ms = malloc((nm * np + 1) * sizeof(*sc->delay_ms));
	run = sc->run = malloc((np + 1) * sizeof(*run));
	v = malloc((np + 1) * sizeof(*v));
	if (sc->stats == NULL || sc->is_false == NULL ||
	    sc->delay_ms == NULL || sc->run == NULL || v == NULL) {
		st = mk_err_set(err, MK_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t p = 0; p < np; p++) {
		const struct replay_position *pp = &ps->p[p];

		run[p] = SIZE_MAX;
		if (!pp->entered)
			continue;
		sc->positions++;
		if (pp->has_lp)
			run[p] = replay_truth_first_run(t, pp->side, pp->lp,
					pp->entry_step / REPLAY_SUBTICKS);
	}
	for (size_t mi = 0; mi < nm; mi++) {
		struct replay_stats *s = &sc->stats[mi];
		size_t nd = 0;

		for (size_t p = 0; p < np; p++) {
			const struct replay_position *pp = &ps->p[p];
			const struct replay_liq *lq = &res->liqs[mi * np + p];
			size_t k = mi * np + p;

			sc->delay_ms[k] = -1;
			if (!pp->entered)
				continue;
			if (lq->has) {
				size_t minute = lq->step / REPLAY_SUBTICKS;

				s->liquidations++;
				if (!pp->has_lp ||
				    !replay_truth_touched_near(t, pp->side,
							       pp->lp, minute)) {
					sc->is_false[k] = 1;
					s->falses++;
				}
			}
			if (run[p] == SIZE_MAX)
				continue;
			if (!lq->has) {
				s->missed++;
				continue;
			}
			sc->delay_ms[k] = lq->t_ms - (d->from_ms +
				(int64_t)run[p] * REPLAY_MINUTE_MS);
			if (sc->delay_ms[k] < 0)
				sc->delay_ms[k] = 0;
			v[nd++] = sc->delay_ms[k];
		}
		delay_stats(v, nd, s);
	}
	sc->worst_step = worst_step(res, sc);
out:
	free(v);
	if (st != MK_OK)
		replay_score_clear(sc);
	return st;
}

void
replay_score_clear(struct replay_score *sc)
{
	if (sc == NULL)
		return;
	free(sc->stats);
	free(sc->is_false);
	free(sc->delay_ms);
	free(sc->run);
	memset(sc, 0, sizeof(*sc));
}

/* ---- formatting ------------------------------------------------------- */

void
replay_format_seconds(int64_t ms_times_mult, int mult, char *buf, size_t cap)
{
	/* ms / 1000 = ms * 10 / 10^4; (2 ms) / 2000 = 2 ms * 5 / 10^4 */
	int64_t m = mult == 2 ? ms_times_mult * 5 : ms_times_mult * 10;
	char tmp[MK_DEC_STRLEN];

	replay_dec_text(MK_DEC(m, 4), tmp, sizeof(tmp));
	snprintf(buf, cap, "%s", tmp);
}

static void
fmt_price(int64_t m, int scale, char *buf, size_t cap)
{
	if (m == REPLAY_NO_MARK) {
		if (cap > 0)
			buf[0] = '\0';
		return;
	}
	mk_dec_format(MK_DEC(m, scale), buf, cap);
}

static void
fmt_time(int64_t ms, char *buf, size_t cap)
{
	if (feed_rfc3339_format_ms(ms, buf, cap) == 0)
		snprintf(buf, cap, "%lld", (long long)ms);
}

/* Writes s as a JSON string. */
static void
json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

/* Writes s as a CSV field (quoted when it holds a comma or a quote). */
static void
csv_str(FILE *f, const char *s)
{
	if (strpbrk(s, ",\"\r\n") == NULL) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	for (; *s != '\0'; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

/* ---- files ------------------------------------------------------------ */

static FILE *
open_out(const char *dir, const char *name, char *path, struct mk_err *err)
{
	FILE *f;

	snprintf(path, PATH_CAP, "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (f == NULL) {
		int e = errno;

		mk_err_set(err, MK_EIO, "%s: %s", path, strerror(e));
		if (err != NULL)
			err->sys_errno = e;
	}
	return f;
}

static enum mk_status
close_out(FILE *f, const char *path, struct mk_err *err)
{
	bool bad = ferror(f) != 0;

	if (fclose(f) != 0 || bad)
		return mk_err_set(err, MK_EIO, "%s: write error", path);
	return MK_OK;
}

static void
write_summary(FILE *f, const struct replay_data *d,
	      const struct replay_result *res, const struct replay_score *sc)
{
	char from[FEED_RFC3339_STRLEN], to[FEED_RFC3339_STRLEN], a[64], b[64],
	     c[64];

	fmt_time(d->from_ms, from, sizeof(from));
	fmt_time(d->from_ms + (int64_t)d->nmin * REPLAY_MINUTE_MS, to,
		 sizeof(to));
	fprintf(f, "{\"window\":{\"from\":\"%s\",\"to\":\"%s\"},\"symbol\":",
		from, to);
	json_str(f, d->cfg->specs[d->target].symbol);
	fprintf(f, ",\"positions\":%zu,\"methods\":{", sc->positions);
	for (size_t mi = 0; mi < res->nmethods; mi++) {
		const struct replay_stats *s = &sc->stats[mi];

		fprintf(f, "%s\n  ", mi ? "," : "");
		json_str(f, res->methods[mi].name);
		fprintf(f, ":{\"liquidations\":%zu,\"false\":%zu,\"missed\":%zu,"
			"\"delay_s\":", s->liquidations, s->falses, s->missed);
		if (s->ndelays == 0) {
			fprintf(f, "{\"n\":0,\"median\":null,\"p90\":null,"
				"\"max\":null}}");
			continue;
		}
		replay_format_seconds(s->delay_median_ms2, 2, a, sizeof(a));
		replay_format_seconds(s->delay_p90_ms, 1, b, sizeof(b));
		replay_format_seconds(s->delay_max_ms, 1, c, sizeof(c));
		fprintf(f, "{\"n\":%zu,\"median\":%s,\"p90\":%s,\"max\":%s}}",
			s->ndelays, a, b, c);
	}
	fprintf(f, "\n}}\n");
}

static void
write_marks(FILE *f, const struct replay_data *d,
	    const struct replay_result *res)
{
	char buf[MK_DEC_STRLEN], ts[FEED_RFC3339_STRLEN];

	fputs("time,markd_status,markd_conf", f);
	for (size_t mi = 0; mi < res->nmethods; mi++) {
		fputc(',', f);
		csv_str(f, res->methods[mi].name);
	}
	fputc('\n', f);
	for (size_t s = 0; s < res->nsteps; s++) {
		uint8_t stt = res->markd_status[s];

		fmt_time(replay_step_ms(d, s), ts, sizeof(ts));
		fmt_price(res->markd_conf[s] < 0 ? REPLAY_NO_MARK
						 : res->markd_conf[s],
			  d->scale, buf, sizeof(buf));
		fprintf(f, "%s,%s,%s", ts,
			stt == 255 ? "none"
				   : agg_mark_status_name(
					     (enum agg_mark_status)stt),
			buf);
		for (size_t mi = 0; mi < res->nmethods; mi++) {
			fmt_price(res->marks[mi * res->nsteps + s], d->scale,
				  buf, sizeof(buf));
			fprintf(f, ",%s", buf);
		}
		fputc('\n', f);
	}
}

static void
write_liqs(FILE *f, const struct replay_data *d,
	   const struct replay_positions *ps, const struct replay_result *res,
	   const struct replay_score *sc)
{
	fputs("method,position,side,leverage,entry_time,entry_price,"
	      "liquidation_price,time,mark,conf,state,verdict,delay_s\n", f);
	for (size_t mi = 0; mi < res->nmethods; mi++)
		for (size_t p = 0; p < ps->n; p++) {
			const struct replay_position *pp = &ps->p[p];
			const struct replay_liq *lq = &res->liqs[mi * ps->n + p];
			int64_t delay = sc->delay_ms[mi * ps->n + p];
			char lev[MK_DEC_STRLEN] = "", ep[MK_DEC_STRLEN],
			     lp[MK_DEC_STRLEN] = "", mk[MK_DEC_STRLEN],
			     cf[MK_DEC_STRLEN], et[FEED_RFC3339_STRLEN],
			     lt[FEED_RFC3339_STRLEN], ds[64] = "";

			if (!lq->has)
				continue;
			if (pp->has_leverage)
				replay_dec_text(pp->leverage, lev, sizeof(lev));
			mk_dec_format(pp->pos.entry_price, ep, sizeof(ep));
			if (pp->has_lp)
				fmt_price(pp->lp, d->scale, lp, sizeof(lp));
			fmt_price(lq->mark, d->scale, mk, sizeof(mk));
			fmt_price(lq->conf, d->scale, cf, sizeof(cf));
			fmt_time(pp->entry_ms, et, sizeof(et));
			fmt_time(lq->t_ms, lt, sizeof(lt));
			if (delay >= 0)
				replay_format_seconds(delay, 1, ds, sizeof(ds));
			csv_str(f, res->methods[mi].name);
			fputc(',', f);
			csv_str(f, pp->id);
			fprintf(f, ",%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n",
				margin_side_name(pp->side), lev, et, ep, lp, lt,
				mk, cf,
				margin_state_name((enum margin_state)lq->state),
				sc->is_false[mi * ps->n + p] ? "false" : "true",
				ds);
		}
}

static void
write_positions(FILE *f, const struct replay_data *d,
		const struct replay_positions *ps,
		const struct replay_result *res, const struct replay_score *sc)
{
	fputs("position,side,leverage,entry_time,entry_price,collateral,"
	      "liquidation_price,sustained_from", f);
	for (size_t mi = 0; mi < res->nmethods; mi++) {
		fputc(',', f);
		csv_str(f, res->methods[mi].name);
	}
	fputc('\n', f);
	for (size_t p = 0; p < ps->n; p++) {
		const struct replay_position *pp = &ps->p[p];
		char lev[MK_DEC_STRLEN] = "", ep[MK_DEC_STRLEN],
		     col[MK_DEC_STRLEN], lp[MK_DEC_STRLEN] = "",
		     et[FEED_RFC3339_STRLEN], rt[FEED_RFC3339_STRLEN] = "";

		if (!pp->entered)
			continue;
		if (pp->has_leverage)
			replay_dec_text(pp->leverage, lev, sizeof(lev));
		mk_dec_format(pp->pos.entry_price, ep, sizeof(ep));
		mk_dec_format(pp->pos.collateral, col, sizeof(col));
		if (pp->has_lp)
			fmt_price(pp->lp, d->scale, lp, sizeof(lp));
		fmt_time(pp->entry_ms, et, sizeof(et));
		if (sc->run[p] != SIZE_MAX)
			fmt_time(d->from_ms + (int64_t)sc->run[p] *
					      REPLAY_MINUTE_MS, rt, sizeof(rt));
		csv_str(f, pp->id);
		fprintf(f, ",%s,%s,%s,%s,%s,%s,%s", margin_side_name(pp->side),
			lev, et, ep, col, lp, rt);
		for (size_t mi = 0; mi < res->nmethods; mi++) {
			const struct replay_liq *lq = &res->liqs[mi * ps->n + p];
			char lt[FEED_RFC3339_STRLEN] = "";

			if (lq->has)
				fmt_time(lq->t_ms, lt, sizeof(lt));
			fprintf(f, ",%s", lt);
		}
		fputc('\n', f);
	}
}

/* What every output file is written from. */
struct outputs {
	const struct replay_data *d;
	const struct replay_positions *ps;
	const struct replay_result *res;
	const struct replay_score *sc;
};

static void
out_summary(FILE *f, const struct outputs *o)
{
	write_summary(f, o->d, o->res, o->sc);
}

static void
out_marks(FILE *f, const struct outputs *o)
{
	write_marks(f, o->d, o->res);
}

static void
out_liqs(FILE *f, const struct outputs *o)
{
	write_liqs(f, o->d, o->ps, o->res, o->sc);
}

static void
out_positions(FILE *f, const struct outputs *o)
{
	write_positions(f, o->d, o->ps, o->res, o->sc);
}

static void
out_plot(FILE *f, const struct outputs *o)
{
	replay_svg_write(f, o->d, o->ps, o->res, o->sc);
}

enum mk_status
replay_write_outputs(const char *dir, const struct replay_data *d,
		     const struct replay_positions *ps,
		     const struct replay_result *res,
		     const struct replay_score *sc, struct mk_err *err)
{
	static const struct {
		const char *name;
		void (*write)(FILE *f, const struct outputs *o);
	} outputs[] = {
		{ "summary.json", out_summary },
		{ "marks.csv", out_marks },
		{ "liquidations.csv", out_liqs },
		{ "positions.csv", out_positions },
		{ "plot.svg", out_plot },
	};
	const struct outputs o = { d, ps, res, sc };
	char path[PATH_CAP];
	enum mk_status st;

	if (strlen(dir) > PATH_CAP - 32)
		return mk_err_set(err, MK_EINVAL, "--out: path too long");
	if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
		int e = errno;

		return mk_err_set(err, MK_EIO, "%s: %s", dir, strerror(e));
	}
	for (size_t i = 0; i < sizeof(outputs) / sizeof(outputs[0]); i++) {
		FILE *f = open_out(dir, outputs[i].name, path, err);

		if (f == NULL)
			return MK_EIO;
		outputs[i].write(f, &o);
		st = close_out(f, path, err);
		if (st != MK_OK)
			return st;
	}
	return MK_OK;
}

void
replay_print_table(FILE *out, const struct replay_result *res,
		   const struct replay_score *sc)
{
	fprintf(out, "| method | liquidations | false | missed | "
		"delay median (s) | delay p90 (s) | delay max (s) |\n"
		"|---|---:|---:|---:|---:|---:|---:|\n");
	for (size_t mi = 0; mi < res->nmethods; mi++) {
		const struct replay_stats *s = &sc->stats[mi];
		char a[64] = "-", b[64] = "-", c[64] = "-";

		if (s->ndelays > 0) {
			replay_format_seconds(s->delay_median_ms2, 2, a,
					      sizeof(a));
			replay_format_seconds(s->delay_p90_ms, 1, b, sizeof(b));
			replay_format_seconds(s->delay_max_ms, 1, c, sizeof(c));
		}
		fprintf(out, "| %s | %zu | %zu | %zu | %s | %s | %s |\n",
			res->methods[mi].name, s->liquidations, s->falses,
			s->missed, a, b, c);
	}
}
