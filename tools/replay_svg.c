/*
 * replay_svg.c - the plot of the marks around the worst moment.
 */
#include "config.h"

#include "tools/replay_svg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "feeds/rfc3339.h"

#define SVG_W 1120
#define SVG_H 620
#define PX0 90.0      /* plot area */
#define PX1 850.0
#define PY0 70.0
#define PY1 560.0
#define LEGEND_X 870.0

static const char *const palette[] = {
	"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
	"#e377c2", "#17becf", "#bcbd22", "#7f7f7f", "#393b79", "#e7ba52",
};
static const char *const dashes[] = {
	"4,3", "1,2", "6,2,1,2", "8,3", "2,4", "3,1", "5,5", "1,4",
};
#define NPALETTE (sizeof(palette) / sizeof(palette[0]))
#define NDASHES (sizeof(dashes) / sizeof(dashes[0]))

struct frame {
	size_t s0, s1;            /* steps shown, inclusive */
	double lo, hi;            /* price range */
};

static double
to_double(int64_t m, int scale)
{
	return mk_dec_to_double(MK_DEC(m, scale));
}

/* Leg l's quoted price at step s, as a double; false when it has none. */
static bool
venue_at(const struct replay_data *d, size_t l, size_t s, double *out)
{
	const struct history_bar *b = replay_bar(d, l, s / REPLAY_SUBTICKS);
	struct mk_dec path[4];

	if (b == NULL)
		return false;
	history_bar_path(b, path);
	*out = mk_dec_to_double(path[s % REPLAY_SUBTICKS]);
	return true;
}

/* A method's mark at step s, as a double; false when it has none. */
static bool
mark_at(const struct replay_data *d, const struct replay_result *r,
	size_t mi, size_t s, double *out)
{
	int64_t v = r->marks[mi * r->nsteps + s];

	if (v == REPLAY_NO_MARK)
		return false;
	*out = to_double(v, d->scale);
	return true;
}

static double
xpos(const struct frame *fr, size_t s)
{
	if (fr->s1 == fr->s0)
		return (PX0 + PX1) / 2;
	return PX0 + (double)(s - fr->s0) * (PX1 - PX0) /
		     (double)(fr->s1 - fr->s0);
}

static double
ypos(const struct frame *fr, double v)
{
	return PY1 - (v - fr->lo) * (PY1 - PY0) / (fr->hi - fr->lo);
}

/* Writes s with &, <, > and " escaped. */
static void
xml_text(FILE *f, const char *s)
{
	for (; *s != '\0'; s++) {
		switch (*s) {
		case '&': fputs("&amp;", f); break;
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '"': fputs("&quot;", f); break;
		default: fputc(*s, f); break;
		}
	}
}

static void
widen(struct frame *fr, double v)
{
	if (v < fr->lo)
		fr->lo = v;
	if (v > fr->hi)
		fr->hi = v;
}

static void
set_frame(const struct replay_data *d, const struct replay_result *r,
	  size_t center, struct frame *fr)
{
	size_t half = (size_t)REPLAY_SVG_HALF_MIN * REPLAY_SUBTICKS;
	size_t nl = replay_target_nlegs(d);
	double v, pad;

	fr->s0 = center > half ? center - half : 0;
	fr->s1 = center + half < r->nsteps ? center + half : r->nsteps - 1;
	fr->lo = HUGE_VAL;
	fr->hi = -HUGE_VAL;
	for (size_t s = fr->s0; s <= fr->s1; s++) {
		for (size_t j = 0; j < nl; j++)
			if (venue_at(d, replay_target_leg(d, j), s, &v))
				widen(fr, v);
		for (size_t mi = 0; mi < r->nmethods; mi++)
			if (mark_at(d, r, mi, s, &v))
				widen(fr, v);
	}
	if (fr->lo > fr->hi) {
		fr->lo = 0;
		fr->hi = 1;
	}
	pad = (fr->hi - fr->lo) * 0.04;
	if (pad <= 0)
		pad = fr->hi > 0 ? fr->hi * 0.001 : 1;
	fr->lo -= pad;
	fr->hi += pad;
}

/* One series as polylines broken at the gaps. */
static void
series(FILE *f, const struct frame *fr, const char *style,
       bool (*at)(const void *, size_t, size_t, double *), const void *ctx,
       size_t which)
{
	bool open = false;
	double v;

	for (size_t s = fr->s0; s <= fr->s1; s++) {
		if (!at(ctx, which, s, &v)) {
			if (open)
				fputs("\"/>\n", f);
			open = false;
			continue;
		}
		if (!open)
			fprintf(f, "<polyline fill=\"none\" %s points=\"", style);
		fprintf(f, "%s%.1f,%.1f", open ? " " : "", xpos(fr, s),
			ypos(fr, v));
		open = true;
	}
	if (open)
		fputs("\"/>\n", f);
}

struct ctx {
	const struct replay_data *d;
	const struct replay_result *r;
};

static bool
venue_cb(const void *c, size_t j, size_t s, double *v)
{
	const struct ctx *x = c;

	return venue_at(x->d, replay_target_leg(x->d, j), s, v);
}

static bool
mark_cb(const void *c, size_t mi, size_t s, double *v)
{
	const struct ctx *x = c;

	return mark_at(x->d, x->r, mi, s, v);
}

static void
axes(FILE *f, const struct replay_data *d, const struct frame *fr)
{
	double span = fr->hi - fr->lo;
	int digits = span >= 50 ? 0 : span >= 1 ? 2 : 5;

	fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\""
		" fill=\"none\" stroke=\"#444\"/>\n", PX0, PY0, PX1 - PX0,
		PY1 - PY0);
	for (int i = 0; i <= 5; i++) {
		double v = fr->lo + span * i / 5, y = ypos(fr, v);

		fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" "
			"y2=\"%.1f\" stroke=\"#ddd\"/>\n<text x=\"%.1f\" "
			"y=\"%.1f\" text-anchor=\"end\">%.*f</text>\n", PX0, y,
			PX1, y, PX0 - 6, y + 4, digits, v);
	}
	for (size_t s = fr->s0; s <= fr->s1; s++) {
		int64_t t = replay_step_ms(d, s) / 1000;
		double x = xpos(fr, s);

		if (s % REPLAY_SUBTICKS != 0 || (t / 60) % 10 != 0)
			continue;
		fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" "
			"y2=\"%.1f\" stroke=\"#eee\"/>\n<text x=\"%.1f\" "
			"y=\"%.1f\" text-anchor=\"middle\">%02d:%02d</text>\n",
			x, PY0, x, PY1, x, PY1 + 18,
			(int)((t / 3600) % 24), (int)((t / 60) % 60));
	}
}

/* Markers where method mi liquidated inside the frame. */
static void
markers(FILE *f, const struct replay_data *d, const struct replay_positions *ps,
	const struct replay_result *r, const struct replay_score *sc,
	const struct frame *fr, size_t mi, const char *color)
{
	size_t n = fr->s1 - fr->s0 + 1;
	uint8_t *flag = calloc(n, 1);
	double v;

	if (flag == NULL)
		return;
	for (size_t p = 0; p < ps->n; p++) {
		const struct replay_liq *lq = &r->liqs[mi * ps->n + p];

		if (!lq->has || lq->step < fr->s0 || lq->step > fr->s1)
			continue;
		flag[lq->step - fr->s0] |= 1;
		if (sc->is_false[mi * ps->n + p])
			flag[lq->step - fr->s0] |= 2;
	}
	for (size_t k = 0; k < n; k++) {
		if (flag[k] == 0 || !mark_at(d, r, mi, fr->s0 + k, &v))
			continue;
		fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" "
			"stroke=\"%s\" fill=\"%s\"/>\n", xpos(fr, fr->s0 + k),
			ypos(fr, v), flag[k] & 2 ? "#d00000" : color,
			flag[k] & 2 ? "#d00000" : "none");
	}
	free(flag);
}

static void
legend_line(FILE *f, double y, const char *style, const char *label)
{
	fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" %s/>"
		"\n<text x=\"%.1f\" y=\"%.1f\">", LEGEND_X, y, LEGEND_X + 28, y,
		style, LEGEND_X + 34, y + 4);
	xml_text(f, label);
	fputs("</text>\n", f);
}

/* The stroke attributes of method mi and venue j. */
static void
method_style(const struct replay_result *r, size_t mi, char *buf, size_t cap)
{
	if (r->methods[mi].kind == REPLAY_MARKD)
		snprintf(buf, cap, "stroke=\"#000\" stroke-width=\"2.5\"");
	else
		snprintf(buf, cap, "stroke=\"%s\" stroke-width=\"1.4\"",
			 palette[mi % NPALETTE]);
}

static void
venue_style(size_t j, char *buf, size_t cap)
{
	snprintf(buf, cap, "stroke=\"#9a9a9a\" stroke-width=\"1\" "
		 "stroke-dasharray=\"%s\"", dashes[j % NDASHES]);
}

void
replay_svg_write(FILE *f, const struct replay_data *d,
		 const struct replay_positions *ps,
		 const struct replay_result *r, const struct replay_score *sc)
{
	struct ctx c = { d, r };
	struct frame fr;
	char style[128], t0[FEED_RFC3339_STRLEN], t1[FEED_RFC3339_STRLEN],
	     tw[FEED_RFC3339_STRLEN];
	size_t nl = replay_target_nlegs(d), nfalse = 0;
	double y = PY0;

	if (r->nsteps == 0)
		return;
	set_frame(d, r, sc->worst_step, &fr);
	for (size_t mi = 0; mi < r->nmethods; mi++)
		for (size_t p = 0; p < ps->n; p++)
			if (r->liqs[mi * ps->n + p].has &&
			    r->liqs[mi * ps->n + p].step == sc->worst_step &&
			    sc->is_false[mi * ps->n + p])
				nfalse++;
	feed_rfc3339_format_ms(replay_step_ms(d, fr.s0), t0, sizeof(t0));
	feed_rfc3339_format_ms(replay_step_ms(d, fr.s1), t1, sizeof(t1));
	feed_rfc3339_format_ms(replay_step_ms(d, sc->worst_step), tw,
			       sizeof(tw));
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
		"height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\""
		" font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" "
		"fill=\"#fff\"/>\n<text x=\"%.1f\" y=\"26\" font-size=\"16\">",
		SVG_W, SVG_H, SVG_W, SVG_H, PX0);
	xml_text(f, d->cfg->specs[d->target].symbol);
	fprintf(f, ": every method's mark against the venues, %s to %s"
		"</text>\n<text x=\"%.1f\" y=\"46\">worst moment %s: ", t0, t1,
		PX0, tw);
	if (nfalse > 0)
		fprintf(f, "%zu false liquidations in this step (red dots); "
			"open dots: true liquidations", nfalse);
	else
		fputs("no false liquidation anywhere; the methods disagree "
		      "most here", f);
	fputs("</text>\n", f);
	axes(f, d, &fr);
	for (size_t j = 0; j < nl; j++) {
		venue_style(j, style, sizeof(style));
		series(f, &fr, style, venue_cb, &c, j);
	}
	/* markd last, on top */
	for (size_t pass = 0; pass < 2; pass++)
		for (size_t mi = 0; mi < r->nmethods; mi++) {
			if ((r->methods[mi].kind == REPLAY_MARKD) != (pass == 1))
				continue;
			method_style(r, mi, style, sizeof(style));
			series(f, &fr, style, mark_cb, &c, mi);
			markers(f, d, ps, r, sc, &fr, mi,
				r->methods[mi].kind == REPLAY_MARKD
					? "#000" : palette[mi % NPALETTE]);
		}
	for (size_t mi = 0; mi < r->nmethods; mi++, y += 18) {
		method_style(r, mi, style, sizeof(style));
		legend_line(f, y, style, r->methods[mi].name);
	}
	y += 8;
	for (size_t j = 0; j < nl; j++, y += 18) {
		char label[AGG_MARKET_MAX + 16];

		venue_style(j, style, sizeof(style));
		snprintf(label, sizeof(label), "%s (quoted)",
			 d->legs[replay_target_leg(d, j)].name);
		legend_line(f, y, style, label);
	}
	fputs("</svg>\n", f);
}
