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

#include <stddef.h>
#include <stdint.h>

#include "graph.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NF_TRAIN_MAX_HPARAMS 16

/* The [train] section. Fields not given in the file keep the values of
 * nf_train_config_init: empty names, NAN numbers, 0 or -1 counts. */
typedef struct nf_train_config {
    char optimizer[32];
    double lr;
    int64_t batch;
    int64_t epochs;
    int64_t seed;          /* -1: not given */
    double clip_norm;      /* gradient clipping by global norm; NAN: none */
    double clip_value;     /* gradient clipping by value; NAN: none */
    int64_t early_stop;    /* patience in epochs on the validation loss; 0: none */
    int64_t unroll;        /* time steps of the training plan (nf_plan_set_steps); 0: not given */
    char average[16];      /* "ema" or "polyak"; "": none */
    double average_decay;  /* for ema; NAN: not given */
    char schedule[32];     /* a schedule name (nf_schedule_names); "": none */
    int n_schedule;        /* its settings, "schedule.KEY = VALUE", as text */
    char schedule_key[NF_TRAIN_MAX_HPARAMS][32];
    char schedule_value[NF_TRAIN_MAX_HPARAMS][64];
    int n_hparams;         /* optimizer settings by key (momentum, lr_mult.fc1, accumulate, ...) */
    char hparam_key[NF_TRAIN_MAX_HPARAMS][32];
    double hparam_value[NF_TRAIN_MAX_HPARAMS];
} nf_train_config;

void nf_train_config_init(nf_train_config *config);

/* Parses a model description held in memory (`len` bytes, not necessarily
 * NUL-terminated). `filename` is used in error messages only. On success
 * *out is a validated graph the caller owns; `train` (may be NULL)
 * receives the [train] section. */
nf_status nf_model_parse(const char *text, size_t len, const char *filename, nf_graph **out,
                         nf_train_config *train, nf_error *err);

/* Reads and parses a model file (at most 64 MiB). */
nf_status nf_model_load(const char *path, nf_graph **out, nf_train_config *train, nf_error *err);

/* Writes a graph (and a [train] section, if `train` is non-NULL and has
 * settings) as model-file text; *text is malloc'ed and NUL-terminated, the
 * caller frees it. Parsing the text gives back an identical graph. */
nf_status nf_model_format(const nf_graph *g, const nf_train_config *train, char **text, nf_error *err);

/* Writes the same text to `path` atomically: a temporary file in the same
 * directory is written, flushed, synced and renamed into place. */
nf_status nf_model_save(const nf_graph *g, const nf_train_config *train, const char *path, nf_error *err);

/* The node-type reference (every operation, its inputs, attributes, types
 * and defaults) as Markdown, generated from the node tables; malloc'ed. */
nf_status nf_model_reference(char **text, nf_error *err);

#ifdef __cplusplus
}
#endif
#endif
