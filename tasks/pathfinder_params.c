/* pathfinder_params.c — the Pathfinder / Path-X generator's parameters: LRA's presets per
 * resolution and difficulty (lra_pf_defaults), and the one table that drives setting them by name,
 * describing them as text and checking them (lra_pf_set, lra_pf_describe, lra_pf_check).
 *
 * Split out of pathfinder.c so that the parameters, which the task options, the command line and
 * the provenance all go through, sit apart from the drawing code (see pathfinder_internal.h).
 */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pathfinder_draw.h"

/* ==== Parameters ========================================================================== */

const char *const lra_pf_difficulty_names[3] = {"baseline", "intermediate", "hard"};
const char *const lra_pf_difficulty_dirs[3] = {"curv_baseline", "curv_contour_length_9",
                                               "curv_contour_length_14"};
static const int pf_contour_lengths[3] = {6, 9, 14};

/* Per-resolution values from lra_benchmarks/data/pathfinder.py; what it leaves unset comes from
 * snakes2_wrapper.py's Args (padding 22, seed_distance 27, paddle_length 5, paddle contrast 1).
 * distractor_total / distractor_length gives the number of distractor snakes (Python 2 integer
 * division). */
typedef struct pf_preset {
    int size, padding, seed_distance, paddle_length, distractor_total;
    double thickness, marker_radius, continuity, snake_contrast, paddle_contrast;
    int margins[2], n_margins;
} pf_preset;

static const pf_preset pf_presets[] = {
    {32, 1, 7, 2, 20, 0.5, 1.5, 1.0, 2.0, 0.75, {1, 0}, 1},
    {64, 1, 12, 5, 22, 1.0, 2.5, 1.8, 0.8, 1.0, {1, 0}, 1},
    {128, 1, 20, 5, 35, 1.5, 3.0, 1.8, 0.9, 1.0, {2, 3}, 2},
    {256, 22, 27, 5, 30, 2.0, 5.0, 1.8, 1.0, 1.0, {3, 0}, 1},
};

int lra_pf_defaults(lra_pf_params *p, int size, int difficulty)
{
    const pf_preset *ps = NULL;
    for (size_t i = 0; i < sizeof pf_presets / sizeof pf_presets[0]; i++)
        if (pf_presets[i].size == size) ps = &pf_presets[i];
    if (!ps || difficulty < 0 || difficulty > 2) return -1;
    memset(p, 0, sizeof *p);
    p->size = size;
    p->padding = ps->padding;
    p->antialias = 2; /* the docstrings set 4 then 2; the later value wins */
    p->contour_length = pf_contour_lengths[difficulty];
    p->paddle_length = ps->paddle_length;
    p->paddle_thickness = ps->thickness;
    memcpy(p->margins, ps->margins, sizeof p->margins);
    p->n_margins = ps->n_margins;
    p->continuity = ps->continuity;
    p->distractor_length = p->contour_length / 3;
    p->num_distractors = ps->distractor_total / p->distractor_length;
    p->marker_radius = ps->marker_radius;
    p->seed_distance = ps->seed_distance;
    p->snake_contrasts[0] = ps->snake_contrast;
    p->n_snake_contrasts = 1;
    p->paddle_contrasts[0] = ps->paddle_contrast;
    p->n_paddle_contrasts = 1;
    p->single_paddles = 0; /* the wrapper's setting; LRA's choice is unknown (§6.3) */
    p->max_distractor_retrial = 4;
    p->max_paddle_retrial = 2;
    p->max_target_attempts = 100000;
    p->rescale = 1;
    return 0;
}

/* One table drives parsing, checking and describing the parameters. */
enum { PT_INT, PT_DOUBLE, PT_INTS, PT_DOUBLES };
typedef struct pf_field {
    const char *name;
    int type;
    size_t off, count_off; /* count_off: list length, for the list types */
    double lo, hi;
} pf_field;

#define PF_OFF(f) offsetof(lra_pf_params, f)
static const pf_field pf_fields[] = {
    {"resolution", PT_INT, PF_OFF(size), 0, 32, 256},
    {"padding", PT_INT, PF_OFF(padding), 0, 1, 64},
    {"antialias_scale", PT_INT, PF_OFF(antialias), 0, 1, 8},
    {"contour_length", PT_INT, PF_OFF(contour_length), 0, 1, LRA_PF_MAX_PADDLES},
    {"paddle_length", PT_INT, PF_OFF(paddle_length), 0, 1, 32},
    {"paddle_thickness", PT_DOUBLE, PF_OFF(paddle_thickness), 0, 0.125, 8},
    {"paddle_margin", PT_INTS, PF_OFF(margins), PF_OFF(n_margins), 1, 16},
    {"continuity", PT_DOUBLE, PF_OFF(continuity), 0, 0.01, 100},
    {"distractor_length", PT_INT, PF_OFF(distractor_length), 0, 1, 64},
    {"num_distractors", PT_INT, PF_OFF(num_distractors), 0, 0, 1000},
    {"marker_radius", PT_DOUBLE, PF_OFF(marker_radius), 0, 0.5, 32},
    {"seed_distance", PT_INT, PF_OFF(seed_distance), 0, 1, 128},
    {"snake_contrast", PT_DOUBLES, PF_OFF(snake_contrasts), PF_OFF(n_snake_contrasts), 0.01, 10},
    {"paddle_contrast", PT_DOUBLES, PF_OFF(paddle_contrasts), PF_OFF(n_paddle_contrasts), 0.01,
     10},
    {"single_paddles", PT_INT, PF_OFF(single_paddles), 0, 0, 1},
    {"max_distractor_retrial", PT_INT, PF_OFF(max_distractor_retrial), 0, 0, 100},
    {"max_paddle_retrial", PT_INT, PF_OFF(max_paddle_retrial), 0, 0, 100},
    {"max_target_attempts", PT_INT, PF_OFF(max_target_attempts), 0, 1, 100000000},
    {"rescale", PT_INT, PF_OFF(rescale), 0, 0, 1},
};
#define PF_N_FIELDS (sizeof pf_fields / sizeof pf_fields[0])

const char *const lra_pf_param_names[] = {
    "resolution", "padding", "antialias_scale", "contour_length", "paddle_length",
    "paddle_thickness", "paddle_margin", "continuity", "distractor_length", "num_distractors",
    "marker_radius", "seed_distance", "snake_contrast", "paddle_contrast", "single_paddles",
    "max_distractor_retrial", "max_paddle_retrial", "max_target_attempts", "rescale", NULL,
};

static int parse_number(const char *s, const char **end, int integer, double *out)
{
    char *e = NULL;
    errno = 0;
    *out = integer ? (double)strtol(s, &e, 10) : strtod(s, &e);
    *end = e;
    return e == s || errno != 0 || !isfinite(*out) ? -1 : 0;
}

int lra_pf_set(lra_pf_params *p, const char *name, const char *value, char *err,
               size_t errlen)
{
    const pf_field *f = NULL;
    for (size_t i = 0; i < PF_N_FIELDS; i++)
        if (strcmp(pf_fields[i].name, name) == 0) f = &pf_fields[i];
    if (!f) return 0;
    int list = f->type == PT_INTS || f->type == PT_DOUBLES;
    int integer = f->type == PT_INT || f->type == PT_INTS;
    double v[LRA_PF_MAX_LIST];
    int n = 0;
    const char *s = value, *end = s;
    for (;;) {
        if (n == (list ? LRA_PF_MAX_LIST : 1) || parse_number(s, &end, integer, &v[n]) != 0 ||
            v[n] < f->lo || v[n] > f->hi)
            break;
        n++;
        if (*end != ',' || !list) break;
        s = end + 1;
    }
    if (n == 0 || *end) {
        snprintf(err, errlen, "pathfinder parameter %s wants %s in [%g, %g]%s, got '%s'", name,
                 integer ? "an integer" : "a number", f->lo, f->hi,
                 list ? " (a comma-separated list of up to 4)" : "", value);
        return -1;
    }
    char *base = (char *)p + f->off;
    for (int i = 0; i < n; i++) {
        if (integer) ((int *)base)[i] = (int)v[i];
        else ((double *)base)[i] = v[i];
    }
    if (list) *(int *)((char *)p + f->count_off) = n;
    return 1;
}

void lra_pf_describe(const lra_pf_params *p, char *buf, size_t n)
{
    size_t off = 0;
    buf[0] = 0;
    for (size_t i = 0; i < PF_N_FIELDS && off < n; i++) {
        const pf_field *f = &pf_fields[i];
        const char *base = (const char *)p + f->off;
        int count = f->count_off ? *(const int *)((const char *)p + f->count_off) : 1;
        off += (size_t)snprintf(buf + off, n - off, "%s%s=", i ? " " : "", f->name);
        for (int k = 0; k < count && off < n; k++) {
            if (f->type == PT_INT || f->type == PT_INTS)
                off += (size_t)snprintf(buf + off, n - off, "%s%d", k ? "," : "",
                                        ((const int *)base)[k]);
            else
                off += (size_t)snprintf(buf + off, n - off, "%s%g", k ? "," : "",
                                        ((const double *)base)[k]);
        }
    }
}

int lra_pf_check(const lra_pf_params *p, char *err, size_t errlen)
{
    double ta = p->paddle_thickness * p->antialias;
    if (fabs(ta - round(ta)) > 1e-9 || round(ta) < 1) {
        /* snakes.draw_line_n_mask raises "thickness does not break even" */
        snprintf(err, errlen, "pathfinder: paddle_thickness x antialias_scale must be a "
                 "positive integer (got %g x %d)", p->paddle_thickness, p->antialias);
        return -1;
    }
    if (p->size != 32 && p->size != 64 && p->size != 128 && p->size != 256) {
        snprintf(err, errlen, "pathfinder: resolution must be 32, 64, 128 or 256 (got %d)",
                 p->size);
        return -1;
    }
    if (2 * p->padding >= p->size) {
        snprintf(err, errlen, "pathfinder: padding %d leaves no room in a %dx%d image",
                 p->padding, p->size, p->size);
        return -1;
    }
    return 0;
}
