/* nodeflow — the [train] settings: one table says each setting's key,
 * command-line option, type, range, default, documentation and what it
 * applies to. The model-file parser, the writer, the generated reference,
 * `nodeflow train --help` and `--set` all read it; the training session
 * (train/session.c) applies the result. */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "io/settings.h"
#include "optim/optimizer.h"

static const char *const *average_kinds(void)
{
    static const char *const kinds[] = {"ema", "polyak", NULL};
    return kinds;
}

#define NAME(k, fl, field, def, chosen, doc, to) \
    {{k, fl, NF_SETTING_NAME, 0, 0, 0, 0, "NAME", def, doc, to}, offsetof(nf_train_config, field), \
     sizeof(((nf_train_config *)0)->field), chosen}
#define INT(k, fl, field, lo, hi, def, doc, to) \
    {{k, fl, NF_SETTING_INT, lo, hi, 0, 0, "N", def, doc, to}, offsetof(nf_train_config, field), 0, NULL}
/* a number in [lo, hi], or with open_lo / open_hi (lo, hi] / [lo, hi) */
#define NUMBER(k, fl, field, lo, hi, open_lo, open_hi, def, doc, to) \
    {{k, fl, NF_SETTING_NUMBER, lo, hi, open_lo, open_hi, "X", def, doc, to}, offsetof(nf_train_config, field), 0, NULL}
#define BOOL(k, fl, field, def, doc, to) \
    {{k, fl, NF_SETTING_BOOL, 0, 1, 0, 0, NULL, def, doc, to}, offsetof(nf_train_config, field), 0, NULL}

typedef struct row {
    nf_train_setting pub;
    size_t offset;                        /* of the field in nf_train_config */
    size_t size;                          /* of a name field */
    const char *const *(*choices)(void);  /* names a NAME setting takes */
} row;

/* The order is the order of the written [train] section and of --help. */
static const row table[] = {
    NAME("optimizer", "--optimizer", optimizer, "sgd", nf_optimizer_names,
         "the optimizer: sgd, adagrad, rmsprop, adam, adamw", "optimizer"),
    NUMBER("lr", "--lr", lr, 0, 1e6, 0, 0, NULL, "learning rate (default: the optimizer's)", "optimizer"),
    NAME("schedule", "--schedule", schedule, NULL, nf_schedule_names,
         "learning-rate schedule per epoch: constant, step, multistep, exponential, cosine, restarts, plateau (on the validation loss)",
         "schedule"),
    INT("batch", "--batch", batch, 1, 1 << 30, "32", "mini-batch size", "session"),
    INT("epochs", "--epochs", epochs, 1, 1e6, "1", "epochs to train", "session"),
    INT("steps", "--steps", steps, 1, 1099511627776.0, NULL, "stop after N batches in all (the last epoch may end early)",
        "session"),
    INT("seed", "--seed", seed, 0, 9007199254740992.0, "0", "seed of initialisation and shuffling", "session"),
    NUMBER("clip_norm", "--clip-norm", clip_norm, 0, 1e30, 1, 0, NULL, "clip gradients to this global norm", "optimizer"),
    NUMBER("clip_value", "--clip-value", clip_value, 0, 1e30, 1, 0, NULL, "clip each gradient element to [-X, X]",
           "optimizer"),
    INT("early_stop", "--early-stop", early_stop, 1, 1e6, NULL,
        "stop when the validation loss has not improved for N epochs, keeping the best weights", "session"),
    INT("unroll", "--unroll", unroll, 1, 1 << 20, "1",
        "run the graph over T time steps per sample (inputs with sequence=true take T values; backpropagation through time)",
        "session"),
    NAME("average", "--average", average, NULL, average_kinds,
         "average the weights (ema or polyak) for validation and --save-average", "average"),
    NUMBER("average_decay", "--average-decay", average_decay, 0, 1, 1, 1, "0.999", "decay of the ema", "average"),
    INT("checkpoint_every", "--checkpoint-every", checkpoint_every, 1, 1099511627776.0, NULL,
        "with --checkpoint: also write one every N batches", "session"),
    BOOL("skip_nonfinite", "--skip-nonfinite", skip_nonfinite, "false",
         "skip a batch whose loss or gradients are NaN or Inf (counted) instead of stopping with an error that names the node",
         "session"),
};

#define TABLE_SIZE ((int)(sizeof table / sizeof table[0]))

int nf_train_setting_count(void) { return TABLE_SIZE; }

const nf_train_setting *nf_train_setting_at(int index)
{
    return index >= 0 && index < TABLE_SIZE ? &table[index].pub : NULL;
}

static const row *find_row(const char *key)
{
    for (int i = 0; i < TABLE_SIZE; i++)
        if (!strcmp(table[i].pub.key, key))
            return &table[i];
    return NULL;
}

static void *field_of(nf_train_config *c, const row *r) { return (char *)c + r->offset; }
static const void *cfield_of(const nf_train_config *c, const row *r) { return (const char *)c + r->offset; }

void nf_train_config_init(nf_train_config *c)
{
    memset(c, 0, sizeof *c);
    for (int i = 0; i < TABLE_SIZE; i++) {
        const row *r = &table[i];
        if (r->pub.type == NF_SETTING_NUMBER)
            *(double *)field_of(c, r) = NAN;
        else if (r->pub.type != NF_SETTING_NAME)
            *(int64_t *)field_of(c, r) = -1;
    }
}

static int is_given(const nf_train_config *c, const row *r)
{
    const void *f = cfield_of(c, r);
    switch (r->pub.type) {
    case NF_SETTING_NAME: return ((const char *)f)[0] != '\0';
    case NF_SETTING_NUMBER: return !isnan(*(const double *)f);
    default: return *(const int64_t *)f >= 0;
    }
}

/* What a number setting takes, for messages and the reference. */
static void range_text(const row *r, char *buf, size_t size)
{
    const nf_train_setting *s = &r->pub;
    if (s->type == NF_SETTING_INT)
        snprintf(buf, size, "a whole number from %.0f to %.0f", s->min, s->max);
    else
        snprintf(buf, size, "a number in %s%g, %g%s", s->open_min ? "(" : "[", s->min, s->max, s->open_max ? ")" : "]");
}

static int in_range(const nf_train_setting *s, double v)
{
    return (s->open_min ? v > s->min : v >= s->min) && (s->open_max ? v < s->max : v <= s->max);
}

static nf_status set_name(nf_train_config *c, const row *r, const char *value, nf_error *err)
{
    const char *const *names = r->choices();
    for (int i = 0; names[i]; i++)
        if (!strcmp(names[i], value) && strlen(value) < r->size) {
            snprintf(field_of(c, r), r->size, "%s", value);
            return NF_OK;
        }
    const char *near = nf_suggest(value, names);
    return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "unknown %s '%s'%s%s%s", r->pub.key, value,
                   near ? "; did you mean '" : "", near ? near : "", near ? "'?" : "");
}

static nf_status set_table_value(nf_train_config *c, const row *r, const char *value, nf_error *err)
{
    char range[96];
    double v;
    if (r->pub.type == NF_SETTING_NAME)
        return set_name(c, r, value, err);
    if (r->pub.type == NF_SETTING_BOOL) {
        int on = !strcmp(value, "true") || !strcmp(value, "1"), off = !strcmp(value, "false") || !strcmp(value, "0");
        if (!on && !off)
            return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "'%s' must be true, false, 1 or 0, not '%s'", r->pub.key, value);
        *(int64_t *)field_of(c, r) = on;
        return NF_OK;
    }
    range_text(r, range, sizeof range);
    const char *wrong = nf_parse_number(value, &v);
    if (wrong && strcmp(wrong, "must be a finite number") != 0)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "'%s' = %s %s", r->pub.key, value, wrong);
    if (wrong)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "'%s' must be %s, not '%s'", r->pub.key, range, value);
    if (!in_range(&r->pub, v) || (r->pub.type == NF_SETTING_INT && v != floor(v)))
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "'%s' must be %s", r->pub.key, range);
    if (r->pub.type == NF_SETTING_INT)
        *(int64_t *)field_of(c, r) = (int64_t)v;
    else
        *(double *)field_of(c, r) = v;
    return NF_OK;
}

/* Sets `key` in a list of (key, value) pairs, replacing an earlier value. */
static int list_slot(char (*keys)[32], int *n, const char *key)
{
    for (int i = 0; i < *n; i++)
        if (!strcmp(keys[i], key))
            return i;
    if (*n == NF_TRAIN_MAX_HPARAMS || strlen(key) >= sizeof keys[0])
        return -1;
    snprintf(keys[*n], sizeof keys[0], "%s", key);
    return (*n)++;
}

static nf_status set_schedule_key(nf_train_config *c, const char *key, const char *value, nf_error *err)
{
    nf_schedule *probe;
    nf_status st = nf_schedule_new("constant", 1.0, &probe, err);
    if (st == NF_OK)
        st = nf_schedule_set_text(probe, key, value, err); /* checks the key and the value */
    nf_schedule_free(probe);
    if (st != NF_OK)
        return st;
    int i = strlen(value) < sizeof c->schedule_value[0] ? list_slot(c->schedule_key, &c->n_schedule, key) : -1;
    if (i < 0)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "too many or too long schedule settings");
    snprintf(c->schedule_value[i], sizeof c->schedule_value[0], "%s", value);
    return NF_OK;
}

nf_status nf_train_config_set(nf_train_config *c, const char *key, const char *value, nf_error *err)
{
    if (!c || !key || !value)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_train_config_set: NULL argument");
    const row *r = find_row(key);
    if (r)
        return set_table_value(c, r, value, err);
    if (!strncmp(key, "schedule.", 9))
        return set_schedule_key(c, key + 9, value, err);
    double v;
    const char *wrong = nf_parse_number(value, &v);
    if (wrong)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "'%s' = %s %s", key, value, wrong);
    int i = list_slot(c->hparam_key, &c->n_hparams, key);
    if (i < 0)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "too many or too long settings");
    c->hparam_value[i] = v;
    return NF_OK;
}

/* A table setting as a C program may have filled it: a name within its
 * field and among its choices, a number in its range. */
static nf_status check_row(const nf_train_config *c, const row *r, nf_error *err)
{
    const void *f = cfield_of(c, r);
    if (r->pub.type == NF_SETTING_NAME) {
        if (!memchr(f, '\0', r->size))
            return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "'%s' is not a terminated name", r->pub.key);
        nf_train_config probe;
        return set_name(&probe, r, f, err);
    }
    double v = r->pub.type == NF_SETTING_NUMBER ? *(const double *)f : (double)*(const int64_t *)f;
    char range[96];
    range_text(r, range, sizeof range);
    if (r->pub.type == NF_SETTING_BOOL ? v != 0 && v != 1 : !in_range(&r->pub, v))
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "'%s' is %g; it must be %s", r->pub.key, v,
                       r->pub.type == NF_SETTING_BOOL ? "0 or 1" : range);
    return NF_OK;
}

/* The optimizer's settings together (nesterov without momentum, say);
 * *bad points at the setting to blame when the config gives it. */
static nf_status check_combination(const nf_train_config *c, const nf_optimizer_type *type, int *bad, nf_error *err)
{
    double h[NF_MAX_HPARAMS];
    for (int k = 0; k < type->n_hparams; k++)
        h[k] = type->hparams[k].def;
    for (int i = 0; i < c->n_hparams; i++) {
        int k = nf_optimizer_type_hparam(type, c->hparam_key[i]);
        if (k >= 0)
            h[k] = c->hparam_value[i];
    }
    const char *blame;
    nf_status st = nf_optimizer_type_check_together(type, h, &blame, err);
    for (int i = 0; st != NF_OK && bad && blame && i < c->n_hparams; i++)
        if (!strcmp(c->hparam_key[i], blame))
            *bad = i;
    return st;
}

nf_status nf_train_config_check(const nf_train_config *c, int *bad, nf_error *err)
{
    if (bad)
        *bad = -1;
    for (int i = 0; i < TABLE_SIZE; i++) {
        nf_status st = is_given(c, &table[i]) ? check_row(c, &table[i], err) : NF_OK;
        if (st != NF_OK)
            return st;
    }
    if (c->n_hparams < 0 || c->n_hparams > NF_TRAIN_MAX_HPARAMS || c->n_schedule < 0 ||
        c->n_schedule > NF_TRAIN_MAX_HPARAMS)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "the config holds %d optimizer and %d schedule settings (at most %d each)",
                       c->n_hparams, c->n_schedule, NF_TRAIN_MAX_HPARAMS);
    for (int i = 0; i < c->n_schedule; i++) {
        nf_train_config probe;
        nf_train_config_init(&probe);
        if (!memchr(c->schedule_key[i], '\0', sizeof c->schedule_key[i]) ||
            !memchr(c->schedule_value[i], '\0', sizeof c->schedule_value[i]))
            return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "schedule setting %d is not terminated text", i);
        nf_status st = set_schedule_key(&probe, c->schedule_key[i], c->schedule_value[i], err);
        if (st != NF_OK)
            return st;
    }
    const nf_optimizer_type *type = nf_optimizer_type_find(c->optimizer[0] ? c->optimizer : "sgd");
    for (int i = 0; type && i < c->n_hparams; i++) {
        if (!memchr(c->hparam_key[i], '\0', sizeof c->hparam_key[i]))
            return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "optimizer setting %d is not terminated text", i);
        nf_status st = nf_optimizer_key_check(type, c->hparam_key[i], c->hparam_value[i], err);
        if (st == NF_OK)
            continue;
        if (bad)
            *bad = i;
        const char *names[TABLE_SIZE + NF_MAX_HPARAMS + 1];
        int n = 0;
        for (int k = 0; k < TABLE_SIZE; k++)
            names[n++] = table[k].pub.key;
        for (int k = 0; k < type->n_hparams; k++)
            names[n++] = type->hparams[k].name;
        names[n] = NULL;
        const char *near = nf_optimizer_type_hparam(type, c->hparam_key[i]) < 0 ? nf_suggest(c->hparam_key[i], names)
                                                                                 : NULL; /* a bad value */
        if (near && err) {
            char message[sizeof err->message];
            snprintf(message, sizeof message, "%s", err->message);
            nf_fail(err, st, "%s; did you mean '%s'?", message, near);
        }
        return st;
    }
    return type ? check_combination(c, type, bad, err) : NF_OK;
}

int nf_train_config_has(const nf_train_config *c, const char *key)
{
    const row *r = find_row(key);
    if (r)
        return is_given(c, r);
    for (int i = 0; !strncmp(key, "schedule.", 9) && i < c->n_schedule; i++)
        if (!strcmp(c->schedule_key[i], key + 9))
            return 1;
    for (int i = 0; i < c->n_hparams; i++)
        if (!strcmp(c->hparam_key[i], key))
            return 1;
    return 0;
}

nf_status nf_train_config_merge(nf_train_config *base, const nf_train_config *top, nf_error *err)
{
    nf_train_config merged = *base;
    if (top->optimizer[0] && strcmp(top->optimizer, base->optimizer[0] ? base->optimizer : top->optimizer) != 0)
        merged.n_hparams = 0; /* the file's settings were for another optimizer */
    if (top->schedule[0] && strcmp(top->schedule, base->schedule[0] ? base->schedule : top->schedule) != 0)
        merged.n_schedule = 0;
    for (int i = 0; i < TABLE_SIZE; i++) {
        const row *r = &table[i];
        if (!is_given(top, r))
            continue;
        size_t size = r->pub.type == NF_SETTING_NAME ? r->size : r->pub.type == NF_SETTING_NUMBER ? sizeof(double) : sizeof(int64_t);
        memcpy(field_of(&merged, r), cfield_of(top, r), size);
    }
    for (int i = 0; i < top->n_hparams; i++) {
        int k = list_slot(merged.hparam_key, &merged.n_hparams, top->hparam_key[i]);
        if (k < 0)
            return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "more than %d optimizer settings", NF_TRAIN_MAX_HPARAMS);
        merged.hparam_value[k] = top->hparam_value[i];
    }
    for (int i = 0; i < top->n_schedule; i++) {
        int k = list_slot(merged.schedule_key, &merged.n_schedule, top->schedule_key[i]);
        if (k < 0)
            return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "more than %d schedule settings", NF_TRAIN_MAX_HPARAMS);
        snprintf(merged.schedule_value[k], sizeof merged.schedule_value[0], "%s", top->schedule_value[i]);
    }
    *base = merged;
    return NF_OK;
}

void nf_train_config_defaults(nf_train_config *c)
{
    for (int i = 0; i < TABLE_SIZE; i++)
        if (table[i].pub.def && !is_given(c, &table[i]))
            set_table_value(c, &table[i], table[i].pub.def, NULL); /* the table's own values: valid */
}

/* ---- writing ------------------------------------------------------------ */

static void write_row(nf_text *t, const nf_train_config *c, const row *r)
{
    const void *f = cfield_of(c, r);
    char num[40];
    switch (r->pub.type) {
    case NF_SETTING_NAME: nf_text_printf(t, "%s = %s\n", r->pub.key, (const char *)f); break;
    case NF_SETTING_NUMBER:
        nf_format_double(num, sizeof num, *(const double *)f);
        nf_text_printf(t, "%s = %s\n", r->pub.key, num);
        break;
    case NF_SETTING_BOOL: nf_text_printf(t, "%s = %s\n", r->pub.key, *(const int64_t *)f ? "true" : "false"); break;
    default: nf_text_printf(t, "%s = %lld\n", r->pub.key, (long long)*(const int64_t *)f);
    }
}

void nf_train_config_write(nf_text *t, const nf_train_config *c)
{
    int any = c->n_hparams || c->n_schedule;
    for (int i = 0; i < TABLE_SIZE; i++)
        any |= is_given(c, &table[i]);
    if (!any)
        return;
    nf_text_printf(t, "\n[train]\n");
    for (int i = 0; i < TABLE_SIZE; i++) {
        if (is_given(c, &table[i]))
            write_row(t, c, &table[i]);
        if (!strcmp(table[i].pub.key, "lr"))
            for (int k = 0; k < c->n_hparams; k++) {
                char num[40];
                nf_format_double(num, sizeof num, c->hparam_value[k]);
                nf_text_printf(t, "%s = %s\n", c->hparam_key[k], num);
            }
        if (!strcmp(table[i].pub.key, "schedule"))
            for (int k = 0; k < c->n_schedule; k++)
                nf_text_printf(t, "schedule.%s = %s\n", c->schedule_key[k], c->schedule_value[k]);
    }
}

/* ---- the reference ------------------------------------------------------- */

static void option_line(nf_text *t, const row *r)
{
    char head[64];
    snprintf(head, sizeof head, "%s%s%s", r->pub.flag, r->pub.value_doc ? " " : "", r->pub.value_doc ? r->pub.value_doc : "");
    nf_text_printf(t, "  %-22s  %s", head, r->pub.doc);
    if (r->pub.def && r->pub.type != NF_SETTING_BOOL)
        nf_text_printf(t, " (default %s)", r->pub.def);
    nf_text_printf(t, "\n");
}

nf_status nf_train_settings_reference(int markdown, char **text, nf_error *err)
{
    nf_text t = {0};
    if (markdown)
        nf_text_printf(&t, "| setting | option | takes | default | applies to | what it does |\n"
                           "| --- | --- | --- | --- | --- | --- |\n");
    for (int i = 0; i < TABLE_SIZE; i++) {
        const row *r = &table[i];
        char range[96] = "";
        if (r->pub.type == NF_SETTING_NAME)
            snprintf(range, sizeof range, "a name");
        else if (r->pub.type == NF_SETTING_BOOL)
            snprintf(range, sizeof range, "true or false");
        else
            range_text(r, range, sizeof range);
        if (markdown)
            nf_text_printf(&t, "| `%s` | `%s` | %s | %s | %s | %s |\n", r->pub.key, r->pub.flag, range,
                           r->pub.def ? r->pub.def : "none", r->pub.applies_to, r->pub.doc);
        else
            option_line(&t, r);
    }
    if (markdown)
        nf_text_printf(&t, "| `KEY` | `--set KEY=X` | a number | the optimizer's | optimizer | any setting of the optimizer: "
                           "momentum, beta1, ..., lr_mult.NODE, decay_1d, accumulate, bucket_mb |\n"
                           "| `schedule.KEY` | `--set schedule.KEY=V` | text | the schedule's | schedule | a setting of the "
                           "schedule, e.g. schedule.gamma |\n");
    if (t.failed) {
        nf_text_free(&t);
        return nf_fail(err, NF_ERR_NO_MEMORY, "out of memory");
    }
    *text = t.data;
    return NF_OK;
}
