/* nodeflow — learning-rate schedules, matching torch.optim.lr_scheduler.
 * A schedule gives the learning rate of each period (an epoch or a step,
 * as its user steps it) from the base rate lr0:
 *
 *   constant      lr0
 *   step          lr0 gamma^floor(t / step_size)                     (StepLR)
 *   multistep     lr0 gamma^(number of milestones <= t)              (MultiStepLR)
 *   exponential   lr0 gamma^t                                        (ExponentialLR)
 *   cosine        eta_min + (lr0 - eta_min) (1 + cos(pi t / T_max)) / 2
 *   restarts      the same within each cycle: T_i = T_0 T_mult^i     (CosineAnnealingWarmRestarts)
 *   plateau       lr times factor after `patience` periods without a
 *                 relative improvement of `threshold` in the metric  (ReduceLROnPlateau, mode min)
 *
 * Any of them can start with a linear warm-up of `warmup` periods from
 * warmup_start lr0 to lr0, after which the schedule starts at t = 0
 * (SequentialLR of LinearLR and the schedule). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optim/optimizer.h"

typedef enum { S_CONSTANT, S_STEP, S_MULTISTEP, S_EXPONENTIAL, S_COSINE, S_RESTARTS, S_PLATEAU } kind;

static const char *const names[] = {"constant", "step", "multistep", "exponential", "cosine", "restarts",
                                    "plateau", NULL};

#define MAX_MILESTONES 16

enum { GAMMA, STEP_SIZE, T_MAX, ETA_MIN, T_0, T_MULT, WARMUP, WARMUP_START, FACTOR, PATIENCE, THRESHOLD,
       COOLDOWN, MIN_LR, N_KEYS };

static const nf_hparam keys[N_KEYS] = {
    [GAMMA] = {"gamma", 0.1, 0, 1e6, "multiplier per decay (step, multistep, exponential)"},
    [STEP_SIZE] = {"step_size", 10, 1, 1e9, "periods between decays (step)"},
    [T_MAX] = {"T_max", 10, 1, 1e9, "half period of the cosine (cosine)"},
    [ETA_MIN] = {"eta_min", 0, 0, 1e6, "lowest rate (cosine, restarts)"},
    [T_0] = {"T_0", 10, 1, 1e9, "length of the first cycle (restarts)"},
    [T_MULT] = {"T_mult", 1, 1, 1e3, "growth of each cycle, a whole number (restarts)"},
    [WARMUP] = {"warmup", 0, 0, 1e9, "periods of linear warm-up before the schedule"},
    [WARMUP_START] = {"warmup_start", 0.1, 0, 1, "fraction of lr0 the warm-up starts from"},
    [FACTOR] = {"factor", 0.1, 0, 1, "multiplier on a plateau (plateau)"},
    [PATIENCE] = {"patience", 10, 0, 1e9, "periods without improvement before reducing (plateau)"},
    [THRESHOLD] = {"threshold", 1e-4, 0, 1, "relative improvement that counts (plateau)"},
    [COOLDOWN] = {"cooldown", 0, 0, 1e9, "periods to wait after a reduction (plateau)"},
    [MIN_LR] = {"min_lr", 0, 0, 1e6, "lowest rate (plateau)"},
};

struct nf_schedule {
    kind kind;
    double lr0;
    double v[N_KEYS];
    double milestones[MAX_MILESTONES];
    int n_milestones;
    int64_t t;                 /* periods completed */
    double plateau_lr, best;   /* plateau state */
    int64_t bad, cooldown_left;
};

const char *const *nf_schedule_names(void) { return names; }

nf_status nf_schedule_new(const char *name, double lr0, nf_schedule **out, nf_error *err)
{
    if (!name || !out)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_schedule_new: NULL argument");
    *out = NULL;
    int k = -1;
    for (int i = 0; names[i]; i++)
        if (strcmp(names[i], name) == 0)
            k = i;
    if (k < 0)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "unknown schedule '%s'", name);
    if (!isfinite(lr0) || lr0 < 0)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "the base learning rate must be >= 0");
    nf_schedule *s = calloc(1, sizeof *s);
    if (!s)
        return nf_fail(err, NF_ERR_NO_MEMORY, "out of memory");
    s->kind = (kind)k;
    s->lr0 = s->plateau_lr = lr0;
    s->best = INFINITY;
    for (int i = 0; i < N_KEYS; i++)
        s->v[i] = keys[i].def;
    *out = s;
    return NF_OK;
}

void nf_schedule_free(nf_schedule *s) { free(s); }

static nf_status set_milestones(nf_schedule *s, const char *text, nf_error *err)
{
    int n = 0;
    double last = -1;
    for (const char *p = text; *p;) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || v != floor(v) || v <= last || n == MAX_MILESTONES)
            return nf_fail(err, NF_ERR_INVALID_ARGUMENT,
                           "milestones must be increasing whole numbers separated by commas, at most %d",
                           MAX_MILESTONES);
        s->milestones[n++] = last = v;
        p = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "milestones: unexpected '%c'", *end);
    }
    s->n_milestones = n;
    return NF_OK;
}

nf_status nf_schedule_set_text(nf_schedule *s, const char *key, const char *text, nf_error *err)
{
    if (!s || !key || !text)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_schedule_set_text: NULL argument");
    if (strcmp(key, "milestones") == 0)
        return set_milestones(s, text, err);
    char *end;
    double v = strtod(text, &end);
    if (end == text || *end)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "schedule %s: '%s' is not a number", key, text);
    return nf_schedule_set(s, key, v, err);
}

nf_status nf_schedule_set(nf_schedule *s, const char *key, double value, nf_error *err)
{
    if (!s || !key)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_schedule_set: NULL argument");
    for (int i = 0; i < N_KEYS; i++) {
        if (strcmp(keys[i].name, key) != 0)
            continue;
        if (!isfinite(value) || value < keys[i].min || value > keys[i].max)
            return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "schedule %s = %g is outside [%g, %g]", key, value,
                           keys[i].min, keys[i].max);
        if ((i == T_MULT || i == STEP_SIZE || i == T_MAX || i == T_0 || i == WARMUP || i == PATIENCE ||
             i == COOLDOWN) && value != floor(value))
            return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "schedule %s must be a whole number", key);
        s->v[i] = value;
        return NF_OK;
    }
    return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "schedules have no setting '%s'", key);
}

/* Position within the current cosine cycle: t_cur of t_i periods. */
static void restart_cycle(const nf_schedule *s, double t, double *t_cur, double *t_i)
{
    double t0 = s->v[T_0], mult = s->v[T_MULT];
    if (mult == 1) {
        *t_cur = fmod(t, t0);
        *t_i = t0;
        return;
    }
    double n = floor(log(t / t0 * (mult - 1) + 1) / log(mult));
    *t_cur = t - t0 * (pow(mult, n) - 1) / (mult - 1);
    *t_i = t0 * pow(mult, n);
}

static double after_warmup(const nf_schedule *s, double t)
{
    double lr0 = s->lr0, gamma = s->v[GAMMA];
    int passed = 0;
    switch (s->kind) {
    case S_CONSTANT: return lr0;
    case S_STEP: return lr0 * pow(gamma, floor(t / s->v[STEP_SIZE]));
    case S_MULTISTEP:
        while (passed < s->n_milestones && s->milestones[passed] <= t)
            passed++;
        return lr0 * pow(gamma, passed);
    case S_EXPONENTIAL: return lr0 * pow(gamma, t);
    case S_COSINE:
        return s->v[ETA_MIN] + (lr0 - s->v[ETA_MIN]) * (1 + cos(M_PI * t / s->v[T_MAX])) / 2;
    case S_RESTARTS: {
        double t_cur, t_i;
        restart_cycle(s, t, &t_cur, &t_i);
        return s->v[ETA_MIN] + (lr0 - s->v[ETA_MIN]) * (1 + cos(M_PI * t_cur / t_i)) / 2;
    }
    case S_PLATEAU: return s->plateau_lr;
    }
    return lr0;
}

double nf_schedule_lr(const nf_schedule *s)
{
    if (!s)
        return 0.0;
    double t = (double)s->t, warmup = s->v[WARMUP];
    if (t < warmup) { /* LinearLR: start + (1 - start) t / warmup */
        double start = s->v[WARMUP_START];
        return s->lr0 * (start + (1 - start) * t / warmup);
    }
    return after_warmup(s, t - warmup);
}

/* ReduceLROnPlateau, mode 'min', threshold_mode 'rel'. */
static void plateau_step(nf_schedule *s, double metric)
{
    if (metric < s->best * (1 - s->v[THRESHOLD])) {
        s->best = metric;
        s->bad = 0;
    } else {
        s->bad++;
    }
    if (s->cooldown_left > 0) {
        s->cooldown_left--;
        s->bad = 0;
    }
    if (s->bad > (int64_t)s->v[PATIENCE]) {
        double reduced = fmax(s->plateau_lr * s->v[FACTOR], s->v[MIN_LR]);
        if (s->plateau_lr - reduced > 1e-8)
            s->plateau_lr = reduced;
        s->cooldown_left = (int64_t)s->v[COOLDOWN];
        s->bad = 0;
    }
}

void nf_schedule_step(nf_schedule *s, double metric)
{
    if (!s)
        return;
    if (s->kind == S_PLATEAU && (double)s->t >= s->v[WARMUP] && !isnan(metric))
        plateau_step(s, metric);
    s->t++;
}

int64_t nf_schedule_periods(const nf_schedule *s) { return s ? s->t : 0; }

void nf_schedule_seek(nf_schedule *s, int64_t periods)
{
    if (s && s->kind != S_PLATEAU && periods >= 0)
        s->t = periods;
}

#define SCHEDULE_KEY "schedule"

/* "t bad cooldown_left plateau_lr best", or "none" */
nf_status nf_schedule_save_state(const nf_schedule *s, nf_record *r, nf_error *err)
{
    char text[160] = "none";
    if (s)
        snprintf(text, sizeof text, "%" PRId64 " %" PRId64 " %" PRId64 " %.17g %.17g", s->t, s->bad, s->cooldown_left,
                 s->plateau_lr, s->best);
    nf_record_put_text(r, SCHEDULE_KEY, text);
    if (s) /* the base rate too: a resumed run follows the schedule it started */
        nf_record_put_double(r, "schedule_lr0", s->lr0);
    return nf_record_failed(r) ? nf_fail(err, NF_ERR_NO_MEMORY, "out of memory saving the schedule") : NF_OK;
}

nf_status nf_schedule_load_state(nf_schedule *s, const nf_record *r, int apply, nf_error *err)
{
    const char *text = nf_record_text(r, SCHEDULE_KEY);
    if (!text)
        return nf_fail(err, NF_ERR_FORMAT, "no schedule entry in the checkpoint");
    int saved = strcmp(text, "none") != 0;
    if (saved != (s != NULL))
        return nf_fail(err, NF_ERR_STATE, "the checkpoint was saved %s a schedule; resume it the same way",
                       saved ? "with" : "without");
    if (!s)
        return NF_OK;
    int64_t t, bad, cooldown;
    double plateau_lr, best;
    const char *p = text;
    if (!nf_scan_count(&p, &t) || !nf_scan_count(&p, &bad) || !nf_scan_count(&p, &cooldown) ||
        !nf_scan_real(&p, &plateau_lr) || !nf_scan_real(&p, &best) || *p || !(plateau_lr >= 0 && plateau_lr <= 1e6))
        return nf_fail(err, NF_ERR_FORMAT, "malformed schedule state '%s'", text);
    double lr0 = s->lr0; /* checkpoints before schedule_lr0 keep the base rate given */
    if (nf_record_text(r, "schedule_lr0") &&
        (nf_record_double(r, "schedule_lr0", &lr0, err) != NF_OK || !(lr0 >= 0 && lr0 <= 1e6)))
        return nf_fail(err, NF_ERR_FORMAT, "malformed schedule_lr0 '%s'", nf_record_text(r, "schedule_lr0"));
    if (apply) {
        s->lr0 = lr0;
        s->t = t;
        s->bad = bad;
        s->cooldown_left = cooldown;
        s->plateau_lr = plateau_lr;
        s->best = best;
    }
    return NF_OK;
}
