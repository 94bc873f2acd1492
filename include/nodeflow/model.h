/* nodeflow — model description files (.nfg).
 *
 * A plain-text format: the first line is "nodeflow 1"; then one node per
 * line, "name = op input1 input2 ... key=value ...", '#' starting a
 * comment; then an optional [train] section of "key = value" lines. See
 * docs/model-format.md for the grammar and every node type's attributes.
 *
 *     nodeflow 1
 *     x      = input shape=784
 *     y      = input shape=scalar
 *     fc1    = linear x out=256
 *     h1     = relu fc1
 *     logits = linear h1 out=10
 *     loss   = cross_entropy logits y
 *     [train]
 *     optimizer = sgd
 *     lr = 0.05
 *     momentum = 0.9
 *
 * Errors are reported as "file:line:col: error: ..." followed by the line
 * and a caret under the offending token, with a suggestion for misspelled
 * names ("did you mean 'out'?"). */
#ifndef NODEFLOW_MODEL_H
#define NODEFLOW_MODEL_H

#include "export.h"

#include <stddef.h>
#include <stdint.h>

#include "graph.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NF_TRAIN_MAX_HPARAMS 16

/* The [train] section: every setting of a training run. nf_train_config_init
 * leaves each one unset: empty names, NAN numbers, -1 counts. The table of
 * settings (nf_train_setting_at) says what each one is; optimizer settings
 * other than lr (momentum, beta2, lr_mult.fc1, decay_1d, accumulate, ...)
 * and schedule settings ("schedule.KEY") are kept by key. */
typedef struct nf_train_config {
    char optimizer[32];
    double lr;
    int64_t batch;
    int64_t epochs;
    int64_t steps;         /* stop after this many batches in all */
    int64_t seed;
    double clip_norm;      /* gradient clipping by global norm */
    double clip_value;     /* gradient clipping by value */
    int64_t early_stop;    /* patience in epochs on the validation loss */
    int64_t unroll;        /* time steps of the training plan (nf_plan_set_steps) */
    char average[16];      /* "ema" or "polyak" */
    double average_decay;  /* for ema */
    char schedule[32];     /* a schedule name (nf_schedule_names) */
    int64_t checkpoint_every; /* batches between checkpoints (besides one per epoch) */
    int64_t skip_nonfinite;   /* 1: skip batches whose loss or gradients are not finite */
    int n_schedule;        /* schedule settings, "schedule.KEY = VALUE", as text */
    char schedule_key[NF_TRAIN_MAX_HPARAMS][32];
    char schedule_value[NF_TRAIN_MAX_HPARAMS][64];
    int n_hparams;         /* optimizer settings by key */
    char hparam_key[NF_TRAIN_MAX_HPARAMS][32];
    double hparam_value[NF_TRAIN_MAX_HPARAMS];
} nf_train_config;

NF_API void nf_train_config_init(nf_train_config *config);

/* Sets one setting from text, as a [train] line or `--set KEY=VALUE`
 * does: a key of the table, "schedule.KEY", or an optimizer setting
 * (checked against the optimizer by nf_train_config_check). A value out of
 * range or of the wrong kind is NF_ERR_INVALID_ARGUMENT, naming the key
 * and what it takes. Setting a key again replaces its value. */
NF_API nf_status nf_train_config_set(nf_train_config *config, const char *key, const char *value, nf_error *err);

/* Checks a whole config, as a C program may have filled it: every table
 * setting given is in its range or among its choices, the schedule
 * settings are the schedule's, and the optimizer settings are the
 * optimizer's (its default when none is named); *bad (may be NULL)
 * receives the index of a failing optimizer setting in hparam_key, else
 * -1. nf_session_new checks its config so. */
NF_API nf_status nf_train_config_check(const nf_train_config *config, int *bad, nf_error *err);

/* Puts every setting given in `top` over `base`: `top` wins (the command
 * line over the model file). When `top` names another optimizer or
 * schedule than `base`, base's settings of the old one are dropped.
 * NF_ERR_INVALID_ARGUMENT (base unchanged) when the optimizer or schedule
 * settings of both together are more than NF_TRAIN_MAX_HPARAMS. */
NF_API nf_status nf_train_config_merge(nf_train_config *base, const nf_train_config *top, nf_error *err);

/* Gives every setting that is not given its default (the table's). */
NF_API void nf_train_config_defaults(nf_train_config *config);

/* Whether setting `key` (a table key, or an optimizer or schedule key) is
 * given in `config`. */
NF_API int nf_train_config_has(const nf_train_config *config, const char *key);

typedef enum nf_setting_type {
    NF_SETTING_NAME,      /* one of `choices` */
    NF_SETTING_INT,       /* a whole number in [min, max] */
    NF_SETTING_NUMBER,    /* a number in its range (see range) */
    NF_SETTING_BOOL       /* true, false, 1 or 0 */
} nf_setting_type;

/* One row of the settings table. */
typedef struct nf_train_setting {
    const char *key;          /* as in [train] and --set */
    const char *flag;         /* the `nodeflow train` option, or NULL */
    nf_setting_type type;
    double min, max;          /* for numbers */
    int open_min, open_max;   /* 1: min (max) itself is excluded */
    const char *value_doc;    /* what the option takes, e.g. "N" or "X" */
    const char *def;          /* the default, as a value; NULL: none (unset) */
    const char *doc;
    const char *applies_to;   /* "session", "optimizer", "schedule" or "average" */
} nf_train_setting;

/* The table: its length, and row i (NULL past the end). */
NF_API int nf_train_setting_count(void);
NF_API const nf_train_setting *nf_train_setting_at(int index);

/* The settings reference as Markdown (a table of every setting), and as
 * the `nodeflow train --help` list of options; malloc'ed. */
NF_API nf_status nf_train_settings_reference(int markdown, char **text, nf_error *err);

/* Parses a model description held in memory (`len` bytes, not necessarily
 * NUL-terminated). `filename` is used in error messages only. On success
 * *out is a validated graph the caller owns; `train` (may be NULL)
 * receives the [train] section. */
NF_API nf_status nf_model_parse(const char *text, size_t len, const char *filename, nf_graph **out,
                         nf_train_config *train, nf_error *err);

/* Reads and parses a model file (at most 64 MiB). */
NF_API nf_status nf_model_load(const char *path, nf_graph **out, nf_train_config *train, nf_error *err);

/* Writes a graph (and a [train] section, if `train` is non-NULL and has
 * settings) as model-file text; *text is malloc'ed and NUL-terminated, the
 * caller frees it. Parsing the text gives back an identical graph. */
NF_API nf_status nf_model_format(const nf_graph *g, const nf_train_config *train, char **text, nf_error *err);

/* Writes the same text to `path` atomically: a temporary file in the same
 * directory is written, flushed, synced and renamed into place. */
NF_API nf_status nf_model_save(const nf_graph *g, const nf_train_config *train, const char *path, nf_error *err);

/* The node-type reference (every operation, its inputs, attributes, types
 * and defaults) and the [train] settings as Markdown, generated from the
 * node tables and the settings table; malloc'ed. */
NF_API nf_status nf_model_reference(char **text, nf_error *err);

#ifdef __cplusplus
}
#endif
#endif
