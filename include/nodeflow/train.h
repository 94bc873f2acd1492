/* nodeflow — the training loop and evaluation over a dataset. */
#ifndef NODEFLOW_TRAIN_H
#define NODEFLOW_TRAIN_H

#include "export.h"

#include "data.h"
#include "optim.h"
#include "plan.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What the metrics of a model measure, decided from its scores and the
 * data's labels (see nf_binding_find): */
typedef enum nf_task {
    NF_TASK_LOSS_ONLY = 0,   /* no scores to compare with the labels: the loss alone */
    NF_TASK_CLASSES,         /* class-index labels ([..., C] scores, or 0/1 against one score) */
    NF_TASK_MULTI_LABEL,     /* 0/1 targets, one score each (a score above the threshold is 1) */
    NF_TASK_REGRESSION       /* any other targets, one score each */
} nf_task;

#define NF_STATS_OUTPUTS 16   /* regression outputs described one by one */
#define NF_STATS_CLASSES 256  /* classes counted for the macro F1 */

/* The running sums behind the task metrics (nf_epoch_stats.sums). */
typedef struct nf_metric_sums {
    int64_t top5;                                    /* classes: label among the 5 best scores */
    int64_t tp[NF_STATS_CLASSES], fp[NF_STATS_CLASSES], fn[NF_STATS_CLASSES]; /* per class */
    int64_t labels, label_correct, rows, rows_correct; /* multi-label: labels, rows of them */
    int64_t label_tp, label_fp, label_fn;
    double n, sse, sae, sum_y, sum_y2;               /* regression, over every output */
    double out_n, out_sse[NF_STATS_OUTPUTS], out_sae[NF_STATS_OUTPUTS], out_y[NF_STATS_OUTPUTS],
        out_y2[NF_STATS_OUTPUTS];
} nf_metric_sums;

typedef struct nf_epoch_stats {
    double loss;      /* mean loss per sample over the epoch */
    double accuracy;  /* fraction of samples whose arg-max matched, or -1 */
    int64_t samples;
    int64_t batches;
    double loss_sum;  /* running sums behind loss and accuracy */
    int64_t correct;
    int64_t skipped;  /* batches skipped for a non-finite loss or gradient */
    /* Metrics that follow the task; -1 where they do not apply:
     * classes: accuracy (above), top5 (the label among the 5 best scores;
     *   -1 with 5 classes or fewer), f1 (macro over the classes; -1 past
     *   NF_STATS_CLASSES classes);
     * multi-label: label_accuracy (of every 0/1 label), subset_accuracy
     *   (rows whose every label is right), f1 (micro: over every label);
     * regression: mse, mae and r2 = 1 - SS_res / SS_tot over every target
     *   value pooled, and per output (element of the per-sample target,
     *   the first NF_STATS_OUTPUTS) output_mse, output_mae, output_r2. */
    nf_task task;
    double top5, f1, label_accuracy, subset_accuracy, mse, mae, r2;
    int outputs;
    double output_mse[NF_STATS_OUTPUTS], output_mae[NF_STATS_OUTPUTS], output_r2[NF_STATS_OUTPUTS];
    nf_metric_sums sums;
} nf_epoch_stats;

/* When a batch's loss or gradients are NaN or Inf, training stops with an
 * error that names the batch and the first node whose output or gradient
 * went non-finite (the default), or, with skip, leaves the weights as they
 * were (the batch's gradients, and any accumulated with them, are
 * dropped) and counts the batch in nf_epoch_stats.skipped. */
NF_API void nf_plan_set_skip_nonfinite(nf_plan *plan, int skip);

/* Which nodes a dataset feeds and which node is scored. A model may have
 * several feature inputs and several label inputs (of any shapes): a
 * sample's features are the feature inputs' values one after another, in
 * the order the model declares the inputs, and its labels likewise. */
#define NF_BIND_MAX 8
typedef struct nf_binding {
    const nf_node *x;       /* the first input fed with features */
    const nf_node *y;       /* the labels metrics read: the target of the loss on the scores
                               (else the first label input), or NULL */
    const nf_node *scores;  /* node whose arg-max is the prediction, or NULL */
    double threshold;       /* one score per sample predicts class 1 above this:
                               0 for a logit (the loss reads logits), else 0.5 */
    int n_x, n_y;           /* every feature and label input, in the model's order */
    const nf_node *xs[NF_BIND_MAX], *ys[NF_BIND_MAX];
} nf_binding;

/* Finds the binding of a validated graph by convention: label inputs are
 * those a loss takes as its target, feature inputs all others, scores the
 * first output node (else the first loss's first input). Fails naming
 * what is missing or ambiguous. Accuracy, in training, validation and
 * nf_evaluate alike, counts the positions whose arg-max score (or, with
 * one score, score > threshold) equals the label; it is computed for
 * class-index labels (one per position of [..., C] scores, or 0/1 labels
 * against one score) and is -1 for other targets (regression outputs,
 * multi-label vectors), which train by their loss alone. */
NF_API nf_status nf_binding_find(const nf_graph *g, nf_binding *bind, nf_error *err);
/* The same for running a model forward only: y is NULL when no loss takes
 * an input as its target (a model with no loss, or one whose labels are
 * not needed), and scores is the first output node (else the first loss's
 * first input). An inference plan (NF_PLAN_INFERENCE) computes the loss
 * only when the model has one; its label input, if any, may be left as it
 * is (zeros): the outputs do not depend on it. */
NF_API nf_status nf_binding_find_inference(const nf_graph *g, nf_binding *bind, nf_error *err);

/* Copies samples [start, start + rows) of ds into the bound inputs of a
 * plan whose batch is `rows` (nf_plan_set_batch): each sample's features
 * split across the feature inputs, its labels across the label inputs
 * (left as they are when the data has none, as for inference). Fails,
 * naming the inputs, when the sizes do not add up. */
NF_API nf_status nf_binding_feed(nf_plan *plan, const nf_binding *bind, const nf_dataset *ds, int64_t start,
                                 int64_t rows, nf_error *err);

/* One epoch: for each batch of `b`, forward, backward and an optimizer
 * step. `plan` must be a NF_PLAN_TRAINING plan with capacity for the
 * batcher's batch size. Stops with NF_ERR_NUMERIC if the loss is not
 * finite. `stats` may be NULL. At the end of the epoch the batcher
 * reshuffles for the next one. A batcher left in the middle of an epoch
 * (by nf_train_batches, or restored from a checkpoint) finishes that
 * epoch. */
NF_API nf_status nf_train_epoch(nf_plan *plan, nf_optimizer *opt, nf_batcher *b,
                         const nf_binding *bind, nf_epoch_stats *stats, nf_error *err);

/* The same for at most `max_batches` batches (0: to the end of the
 * epoch), adding to `stats` (zero it at the start of an epoch).
 * *epoch_done (may be NULL) tells whether the epoch ended. */
NF_API nf_status nf_train_batches(nf_plan *plan, nf_optimizer *opt, nf_batcher *b, const nf_binding *bind,
                           int64_t max_batches, nf_epoch_stats *stats, int *epoch_done, nf_error *err);

/* Mean loss and accuracy of the graph on every sample of `ds`, in batches
 * of the plan's capacity. Works with inference and training plans. */
NF_API nf_status nf_evaluate(nf_plan *plan, const nf_dataset *ds, const nf_binding *bind,
                      nf_epoch_stats *stats, nf_error *err);

#ifdef __cplusplus
}
#endif
#endif
