/* nodeflow — the training loop (forward, backward, step per batch) and
 * evaluation over a whole dataset. */
#include <math.h>
#include <string.h>

#include "data/data_internal.h"
#include "engine/plan_internal.h"
#include "optim/optimizer.h"
#include "train/metrics.h"
#include "train/train_internal.h"

/* Class-index labels per sample: 1, or T for a sequence of T positions
 * (times the steps of an unrolled plan). */
static int64_t positions_of(const nf_plan *plan, const nf_binding *bind)
{
    if (!bind->scores)
        return 1;
    const nf_shape *s = &bind->scores->shape;
    if (s->rank < 1 || s->dim[s->rank - 1] < 1) /* (no elements: refused by check_binding) */
        return 0;
    return nf_shape_size(s) / s->dim[s->rank - 1] * nf_plan_steps(plan);
}

/* The per-sample shape of a plan's input: [steps, shape] for a sequence
 * input of an unrolled plan. 0 if the node is not one of its inputs. */
static int input_sample(const nf_plan *plan, const nf_node *node, nf_shape *per_sample)
{
    nf_tensor view;
    if (nf_plan_input((nf_plan *)plan, node, &view, NULL) != NF_OK || view.shape.rank < 1)
        return 0;
    *per_sample = view.shape;
    per_sample->rank--;
    memmove(per_sample->dim, per_sample->dim + 1, (size_t)per_sample->rank * sizeof(int64_t));
    return 1;
}

/* Floats per sample of a plan's input, or -1. */
static int64_t input_floats(const nf_plan *plan, const nf_node *node)
{
    nf_shape per_sample;
    return input_sample(plan, node, &per_sample) ? nf_shape_size(&per_sample) : -1;
}

/* Whether accuracy means something: [..., C] scores per sample (times the
 * steps of an unrolled plan) with one class-index label per position, or
 * one score per position against 0/1 labels. Other targets (regression,
 * multi-label, per-step values) train and evaluate by their loss alone. */
static int classifies(const nf_plan *plan, const nf_dataset *ds, const nf_binding *bind)
{
    if (!bind->scores || bind->scores->shape.rank < 1 || !bind->y || positions_of(plan, bind) != input_floats(plan, bind->y))
        return 0;
    int64_t c = bind->scores->shape.dim[bind->scores->shape.rank - 1];
    return c > 1 || (ds->classes > 0 && ds->classes <= 2); /* C scores and a label each, or 0/1 labels */
}

/* Whether every label is 0 or 1. */
static int labels_binary(const nf_dataset *ds)
{
    int64_t n = ds->count * nf_shape_size(&ds->y_shape);
    for (int64_t i = 0; i < n; i++)
        if (ds->y[i] != 0.0f && ds->y[i] != 1.0f)
            return 0;
    return 1;
}

/* What the metrics measure (nf_task): class indices, else one score per
 * target value: 0/1 targets of a loss that reads logits (bce_with_logits)
 * are labels, any others regression targets. */
static nf_task task_of(const nf_plan *plan, const nf_dataset *ds, const nf_binding *bind)
{
    if (classifies(plan, ds, bind))
        return NF_TASK_CLASSES;
    if (!bind->scores || !bind->y || nf_shape_size(&bind->scores->shape) * nf_plan_steps(plan) != input_floats(plan, bind->y))
        return NF_TASK_LOSS_ONLY;
    /* with several label inputs the scores' share of the labels is not told apart here: regression */
    int binary = bind->n_y == 1 && bind->threshold == 0.0 && labels_binary(ds);
    return binary ? NF_TASK_MULTI_LABEL : NF_TASK_REGRESSION;
}

/* The inputs' per-sample floats must add up to the data's: "input 'x'
 * takes [784] per sample but the data's features are [2]" (several:
 * "inputs 'a' [784] and 'b' [3] take 787 floats per sample ..."). */
static nf_status check_part(const nf_plan *plan, const nf_node *const *nodes, int n, const nf_shape *data,
                            const char *what, nf_error *err)
{
    int64_t total = 0;
    char names[512] = "", shape[64];
    for (int i = 0; i < n; i++) {
        nf_shape per_sample;
        if (!input_sample(plan, nodes[i], &per_sample))
            return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "'%s' is not an input of the plan", nodes[i]->name);
        total += nf_shape_size(&per_sample);
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s'%s'%s%s",
                 i == 0 ? "" : i == n - 1 ? " and " : ", ", nodes[i]->name, n > 1 ? " " : "",
                 n > 1 ? nf_shape_format(&per_sample, shape, sizeof shape) : "");
        if (n == 1)
            nf_shape_format(&per_sample, shape, sizeof shape);
    }
    if (total == nf_shape_size(data))
        return NF_OK;
    char have[64];
    nf_shape_format(data, have, sizeof have);
    if (n == 1)
        return nf_fail(err, NF_ERR_SHAPE, "input %s takes %s per sample but the data's %s are %s", names, shape, what,
                       have);
    return nf_fail(err, NF_ERR_SHAPE, "inputs %s take %lld floats per sample together but the data's %s are %s",
                   names, (long long)total, what, have);
}

/* The dataset's per-sample sizes must match the bound input nodes. */
static nf_status check_binding(const nf_plan *plan, const nf_dataset *ds, const nf_binding *bind,
                               nf_error *err)
{
    if (!plan || !ds || !bind || bind->n_x < 1 || bind->n_y < 1)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "training needs a plan, data and bound x and y inputs");
    if (bind->scores && nf_shape_size(&bind->scores->shape) == 0)
        return nf_fail(err, NF_ERR_SHAPE, "the scores '%s' have no elements (tensors with no elements are for "
                       "inference only)", bind->scores->name);
    nf_status st = check_part(plan, bind->xs, bind->n_x, &ds->x_shape, "features", err);
    if (st == NF_OK)
        st = check_part(plan, bind->ys, bind->n_y, &ds->y_shape, "labels", err);
    if (st != NF_OK)
        return st;
    if (bind->scores) {
        nf_tensor view;
        nf_status st = nf_plan_value(plan, bind->scores, &view, err);
        if (st != NF_OK)
            return st;
        if (plan->time_steps > 1 && !(bind->scores->op->flags & NF_OP_OUTPUT))
            return nf_fail(err, NF_ERR_SHAPE, "with %lld time steps the scores must be an output node ('%s' is %s)",
                           (long long)plan->time_steps, bind->scores->name, bind->scores->op->name);
        int64_t c = bind->scores->shape.dim[bind->scores->shape.rank - 1];
        if (classifies(plan, ds, bind) && bind->n_y == 1 && ds->classes > c && c > 1)
            return nf_fail(err, NF_ERR_SHAPE, "the data has %lld classes but '%s' scores %lld", (long long)ds->classes,
                           bind->scores->name, (long long)c);
    }
    return NF_OK;
}

/* Each label one of the C classes the scores give, else an error naming
 * its file and row (a bad label used to end in a NaN loss). Once per
 * batcher and class count: training calls this for every batch. */
static nf_status check_labels(int scored_classes, const nf_dataset *ds, const nf_binding *bind, int64_t *checked,
                              nf_error *err)
{
    if (!scored_classes || bind->n_y > 1) /* several label inputs: the losses see their own */
        return NF_OK;
    int64_t c = bind->scores->shape.dim[bind->scores->shape.rank - 1];
    if (c <= 1 || (checked && *checked == c))
        return NF_OK;
    nf_status st = nf_dataset_check_classes(ds, c, err);
    if (st == NF_OK && checked)
        *checked = c;
    return st;
}


/* x - x is 0 for a finite x and NaN for NaN or Inf, so the sum of those
 * over every gradient is 0 exactly when all are finite (in float lanes,
 * so that it vectorizes; it cannot overflow). */
static int grads_finite(const nf_graph *g)
{
    enum { LANES = 16 };
    float lane[LANES] = {0};
    int64_t n = g->param_floats, whole = n / LANES * LANES;
    const float *x = g->grads;
    for (int64_t i = 0; i < whole; i += LANES)
        for (int j = 0; j < LANES; j++)
            lane[j] += x[i + j] - x[i + j];
    float sum = 0.0f;
    for (int j = 0; j < LANES; j++)
        sum += lane[j];
    for (int64_t i = whole; i < n; i++)
        sum += x[i] - x[i];
    return sum == 0.0f;
}

/* The batch went non-finite: run it again (same dropout masks) checking
 * every node, so that the error names where it started. */
static nf_status diagnose(nf_plan *plan, nf_optimizer *opt, double scale, uint64_t runs, int64_t index,
                          double loss, nf_error *err)
{
    nf_error where = {0};
    if (plan->sum_across) /* data parallel: a run checking node by node could stop in one process alone */
        return nf_fail(err, NF_ERR_NUMERIC, "batch %lld: the loss (%g here) or a gradient is not finite in some "
                       "process", (long long)index + 1, loss);
    plan->graph->runs = runs;
    nf_plan_set_check_finite(plan, 1);
    nf_status st = nf_plan_forward(plan, &where);
    if (st == NF_OK && opt)
        st = nf_plan_backward_ex(plan, scale, 0, &where);
    nf_plan_set_check_finite(plan, 0);
    if (plan->buf.state_floats) /* as before the batch */
        nf_plan_keep_state(plan, 0);
    if (st == NF_ERR_NUMERIC)
        return nf_fail(err, NF_ERR_NUMERIC, "batch %lld: %s", (long long)index + 1, where.message);
    return nf_fail(err, NF_ERR_NUMERIC, "batch %lld: the loss is %g (are labels valid class indices?)",
                   (long long)index + 1, loss);
}

/* Forward; when training, backward and (every `accumulate` batches) an
 * optimizer step; `weight` says how much of a full batch's share this
 * process's rows are (nf_optimizer_batch_scale). A non-finite loss or
 * gradient stops with an error that says where, or skips the batch
 * (*skipped). */
static nf_status run_batch(nf_plan *plan, nf_optimizer *opt, double weight, int64_t index, double *loss,
                           int *skipped, nf_error *err)
{
    double scale = opt ? nf_optimizer_batch_scale(opt, weight) : 1.0;
    uint64_t runs = plan->graph->runs;
    *skipped = 0;
    if (plan->buf.state_floats) /* a bad batch must not leave NaN in the carried state */
        nf_plan_keep_state(plan, 1);
    nf_status st = nf_plan_forward(plan, err);
    if (st != NF_OK)
        return st;
    *loss = nf_plan_loss(plan);
    int finite = isfinite(*loss);
    /* sums that overlap backward are collectives inside it: every process
     * must run backward, or none (a process whose loss is not finite
     * would skip it) */
    if (opt && nf_optimizer_overlaps(opt) && (st = nf_comm_all(opt->comm, &finite, err)) != NF_OK)
        return st;
    if (finite && opt) {
        /* each batch's gradient whole: the optimizer adds it to those gathered */
        st = nf_optimizer_begin_backward(opt, plan, err);
        if (st == NF_OK)
            st = nf_plan_backward_ex(plan, scale, 0, err);
        nf_status sum = nf_optimizer_end_backward(opt, plan, st == NF_OK ? err : NULL);
        if (st == NF_OK)
            st = sum;
        if (st != NF_OK)
            return st;
        finite = grads_finite(plan->graph);
    }
    /* data parallel: every process skips or stops together */
    if (opt && (st = nf_comm_all(opt->comm, &finite, err)) != NF_OK)
        return st;
    if (!finite && plan->buf.state_floats)
        nf_plan_keep_state(plan, 0);
    if (!finite && plan->skip_nonfinite) {
        *skipped = 1;
        if (opt) /* drop this batch's gradients and those accumulated with them */
            nf_optimizer_drop_pending(opt);
        return NF_OK;
    }
    if (!finite)
        return diagnose(plan, opt, scale, runs, index, *loss, err);
    return opt ? nf_optimizer_add_batch(opt, err) : NF_OK;
}

/* The scores' last axis (classes) and size per sample (all steps). */
static int64_t score_classes(const nf_binding *bind)
{
    return bind->scores ? bind->scores->shape.dim[bind->scores->shape.rank - 1] : 0;
}

static int64_t score_width(const nf_plan *plan, const nf_binding *bind)
{
    return bind->scores ? nf_shape_size(&bind->scores->shape) * nf_plan_steps(plan) : 0;
}

/* A batch's accuracy and task metrics, from the scores and labels the
 * plan holds. */
static void add_batch_metrics(nf_epoch_stats *s, nf_task task, const nf_plan *plan, const nf_binding *bind)
{
    if (task == NF_TASK_LOSS_ONLY)
        return;
    nf_tensor scores, labels;
    nf_plan_value(plan, bind->scores, &scores, NULL);
    nf_plan_value(plan, bind->y, &labels, NULL);
    if (task == NF_TASK_CLASSES) /* one row per position, C scores each */
        nf_metrics_add(s, task, scores.data, labels.data, plan->batch * positions_of(plan, bind), score_classes(bind),
                       bind->threshold);
    else
        nf_metrics_add(s, task, scores.data, labels.data, plan->batch, score_width(plan, bind), bind->threshold);
}

static void finish_stats(nf_epoch_stats *s, const nf_plan *plan, const nf_binding *bind, nf_task task)
{
    double scored = (double)s->samples * (double)positions_of(plan, bind);
    s->task = task;
    s->loss = s->samples ? s->loss_sum / (double)s->samples : 0.0;
    s->accuracy = task == NF_TASK_CLASSES && s->samples ? (double)s->correct / scored : -1.0;
    nf_metrics_finish(s, score_classes(bind), score_width(plan, bind), (int64_t)scored);
}

/* Text windows continue a stream from batch to batch: they must come in
 * order, `streams` at a time, and recurrent state starts from zeros at
 * the first window. */
static nf_status check_streams(const nf_dataset *ds, int64_t batch, int shuffle, nf_error *err)
{
    if (ds->streams > 0 && (batch != ds->streams || shuffle))
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT,
                       "the text data has %lld streams: it needs unshuffled batches of %lld, not %s batches of %lld",
                       (long long)ds->streams, (long long)ds->streams, shuffle ? "shuffled" : "unshuffled",
                       (long long)batch);
    return NF_OK;
}

/* A binding filled by hand with x and y only (n_x, n_y 0) stands for
 * one feature and one label input. */
static nf_binding normalized(const nf_binding *bind)
{
    nf_binding b = *bind;
    if (b.n_x == 0 && b.x)
        b.xs[b.n_x++] = b.x;
    if (b.n_y == 0 && b.y)
        b.ys[b.n_y++] = b.y;
    return b;
}

/* Samples (index[r], or start + r when index is NULL) of `src`, `width`
 * floats each, into the inputs `nodes` one after another. */
static void feed_part(nf_plan *plan, const nf_node *const *nodes, int n, const float *src, int64_t width,
                      const int64_t *index, int64_t start, int64_t rows)
{
    int64_t at = 0;
    for (int i = 0; i < n; i++) {
        nf_tensor view;
        nf_plan_input(plan, nodes[i], &view, NULL);
        int64_t size = input_floats(plan, nodes[i]);
        for (int64_t r = 0; r < rows; r++) {
            int64_t sample = index ? index[r] : start + r;
            memcpy(view.data + r * size, src + sample * width + at, (size_t)size * sizeof(float));
        }
        at += size;
    }
}

/* Features always; labels when the data has them for the label inputs. */
static void feed(nf_plan *plan, const nf_binding *bind, const nf_dataset *ds, const int64_t *index, int64_t start,
                 int64_t rows, int labels)
{
    feed_part(plan, bind->xs, bind->n_x, ds->x, nf_shape_size(&ds->x_shape), index, start, rows);
    if (labels)
        feed_part(plan, bind->ys, bind->n_y, ds->y, nf_shape_size(&ds->y_shape), index, start, rows);
}

nf_status nf_binding_feed(nf_plan *plan, const nf_binding *bind, const nf_dataset *ds, int64_t start, int64_t rows,
                          nf_error *err)
{
    if (!plan || !bind || !ds)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_binding_feed: NULL argument");
    nf_binding whole = normalized(bind);
    bind = &whole;
    if (bind->n_x < 1)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_binding_feed: the binding has no feature input");
    if (start < 0 || rows < 0 || start > ds->count - rows || rows > plan->capacity)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_binding_feed: samples [%lld, %lld) of %lld in a plan for %lld",
                       (long long)start, (long long)(start + rows), (long long)ds->count, (long long)plan->capacity);
    nf_status st = check_part(plan, bind->xs, bind->n_x, &ds->x_shape, "features", err);
    if (st != NF_OK)
        return st;
    nf_error ignored;
    int labels = bind->n_y > 0 && check_part(plan, bind->ys, bind->n_y, &ds->y_shape, "labels", &ignored) == NF_OK;
    feed(plan, bind, ds, NULL, start, rows, labels);
    return NF_OK;
}

nf_status nf_train_batches(nf_plan *plan, nf_optimizer *opt, nf_batcher *b, const nf_binding *bind,
                           int64_t max_batches, nf_epoch_stats *stats, int *epoch_done, nf_error *err)
{
    nf_epoch_stats local = {0};
    if (!stats)
        stats = &local;
    if (epoch_done)
        *epoch_done = 0;
    if (!plan || !opt || !b || !bind)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_train_batches: NULL argument");
    nf_binding whole = normalized(bind);
    bind = &whole;
    if (b->batch > plan->capacity)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "batches of %lld do not fit a plan compiled for %lld",
                       (long long)b->batch, (long long)plan->capacity);
    nf_status st = check_binding(plan, b->ds, bind, err);
    if (st == NF_OK && !b->values_checked && (st = nf_dataset_check_finite(b->ds, err)) == NF_OK) {
        b->values_checked = 1; /* once per batcher: training calls this for every batch */
        b->task = (int)task_of(plan, b->ds, bind);
    }
    nf_task task = (nf_task)b->task;
    if (st == NF_OK)
        st = check_labels(task == NF_TASK_CLASSES, b->ds, bind, &b->labels_checked, err);
    if (st == NF_OK) /* (shared out: every process's rows of a global batch) */
        st = check_streams(b->ds, b->batch * (b->shards > 1 ? b->shards : 1), b->shuffle, err);
    if (st != NF_OK)
        return st;
    for (int64_t done = 0; max_batches <= 0 || done < max_batches; done++) {
        if (b->ds->streams > 0 && b->next == 0)
            nf_plan_reset_state(plan);
        const int64_t *index;
        int64_t rows = nf_batcher_take(b, &index);
        feed(plan, bind, b->ds, index, 0, rows, 1);
        if (rows == 0) { /* the epoch is over: shuffle for the next one */
            nf_batcher_rewind(b);
            if (epoch_done)
                *epoch_done = 1;
            st = nf_optimizer_flush(opt, err); /* a short last group steps on what it gathered */
            break;
        }
        double loss;
        int skipped = 0;
        /* a share of a short global batch weighs its part of it: N
         * processes then take the mean over the global batch's rows */
        int shards = b->shards > 1 ? b->shards : 1;
        double weight = (double)rows * shards / (double)b->global_rows;
        st = nf_plan_set_batch(plan, rows, err);
        if (st == NF_OK)
            st = run_batch(plan, opt, weight, stats->batches + stats->skipped, &loss, &skipped, err);
        if (st != NF_OK)
            break;
        if (skipped) {
            stats->skipped++;
            continue;
        }
        add_batch_metrics(stats, task, plan, bind);
        stats->loss_sum += loss * (double)rows;
        stats->samples += rows;
        stats->batches++;
    }
    nf_plan_set_batch(plan, plan->capacity, NULL);
    finish_stats(stats, plan, bind, task);
    return st;
}

nf_status nf_train_epoch(nf_plan *plan, nf_optimizer *opt, nf_batcher *b, const nf_binding *bind,
                         nf_epoch_stats *stats, nf_error *err)
{
    nf_epoch_stats local;
    memset(&local, 0, sizeof local);
    nf_status st = nf_train_batches(plan, opt, b, bind, 0, &local, NULL, err);
    if (stats)
        *stats = local;
    return st;
}

/* The running sums of a stats record, as doubles (counts below 2^53 are
 * exact), in a fixed order: what processes sum. */
#define SHARED_SUMS (12 + 7 + 3 * NF_STATS_CLASSES + 4 * NF_STATS_OUTPUTS)

static void pack_sums(double *v, nf_epoch_stats *s, int unpack)
{
    nf_metric_sums *m = &s->sums;
    int64_t *counts[] = {&s->samples, &s->batches, &s->correct, &s->skipped, &m->top5, &m->labels,
                         &m->label_correct, &m->rows, &m->rows_correct, &m->label_tp, &m->label_fp, &m->label_fn};
    double *reals[] = {&s->loss_sum, &m->n, &m->sse, &m->sae, &m->sum_y, &m->sum_y2, &m->out_n};
    int at = 0;
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++, at++)
        unpack ? (void)(*counts[i] = (int64_t)v[at]) : (void)(v[at] = (double)*counts[i]);
    for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++, at++)
        unpack ? (void)(*reals[i] = v[at]) : (void)(v[at] = *reals[i]);
    int64_t *per_class[] = {m->tp, m->fp, m->fn};
    for (int k = 0; k < 3; k++)
        for (int c = 0; c < NF_STATS_CLASSES; c++, at++)
            unpack ? (void)(per_class[k][c] = (int64_t)v[at]) : (void)(v[at] = (double)per_class[k][c]);
    double *per_output[] = {m->out_sse, m->out_sae, m->out_y, m->out_y2};
    for (int k = 0; k < 4; k++)
        for (int o = 0; o < NF_STATS_OUTPUTS; o++, at++)
            unpack ? (void)(per_output[k][o] = v[at]) : (void)(v[at] = per_output[k][o]);
}

nf_status nf_stats_share(nf_epoch_stats *stats, const nf_plan *plan, const nf_binding *bind, const nf_comm *comm,
                         nf_error *err)
{
    if (nf_comm_size(comm) < 2)
        return NF_OK;
    double v[SHARED_SUMS] = {0};
    pack_sums(v, stats, 0);
    nf_status st = nf_comm_sum_doubles(comm, v, SHARED_SUMS, err);
    if (st != NF_OK)
        return st;
    pack_sums(v, stats, 1);
    nf_binding whole = normalized(bind);
    finish_stats(stats, plan, &whole, stats->task);
    return NF_OK;
}

/* Runs samples [first, end) of ds through the plan, into acc's sums. */
static nf_status evaluate_rows(nf_plan *plan, const nf_dataset *ds, const nf_binding *bind, nf_task task,
                               int64_t first, int64_t end, nf_epoch_stats *acc, nf_error *err)
{
    nf_status st = NF_OK;
    int64_t batches = 0, start;
    for (start = first; start < end && st == NF_OK; start += plan->capacity, batches++) {
        int64_t rows = end - start < plan->capacity ? end - start : plan->capacity;
        double loss;
        int skipped;
        feed(plan, bind, ds, NULL, start, rows, 1);
        st = nf_plan_set_batch(plan, rows, err);
        if (st == NF_OK)
            st = run_batch(plan, NULL, 1.0, batches, &loss, &skipped, err);
        if (st != NF_OK)
            break;
        if (skipped) /* a plan that skips non-finite batches: this one counts for nothing */
            continue;
        add_batch_metrics(acc, task, plan, bind);
        acc->loss_sum += loss * (double)rows;
    }
    acc->samples = st == NF_OK ? end - first : start - first;
    acc->batches = batches;
    return st;
}

nf_status nf_evaluate_shared(nf_plan *plan, const nf_dataset *ds, const nf_binding *bind, const nf_comm *comm,
                             nf_epoch_stats *stats, nf_error *err)
{
    if (!bind)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_evaluate: NULL binding");
    nf_binding whole = normalized(bind);
    bind = &whole;
    nf_status st = check_binding(plan, ds, bind, err);
    nf_task task = st == NF_OK ? task_of(plan, ds, bind) : NF_TASK_LOSS_ONLY;
    if (st == NF_OK)
        st = nf_dataset_check_finite(ds, err);
    if (st == NF_OK)
        st = check_labels(task == NF_TASK_CLASSES, ds, bind, NULL, err);
    if (st == NF_OK)
        st = check_streams(ds, plan->capacity, 0, err);
    if (st != NF_OK)
        return st;
    nf_plan_reset_state(plan);
    int training = nf_plan_training(plan);
    nf_plan_set_training(plan, 0); /* evaluation: no dropout, running statistics */
    nf_epoch_stats local; /* large (the metrics' sums): zeroed, not initialised on the stack twice */
    nf_epoch_stats *acc = stats ? stats : &local;
    memset(acc, 0, sizeof *acc);
    /* process r of n takes the samples [r count / n, (r + 1) count / n) */
    int64_t rank = nf_comm_rank(comm), n = nf_comm_size(comm);
    st = evaluate_rows(plan, ds, bind, task, ds->count * rank / n, ds->count * (rank + 1) / n, acc, err);
    nf_plan_set_batch(plan, plan->capacity, NULL);
    nf_plan_set_training(plan, training);
    acc->task = task;
    /* every process sums, even one that failed, so that none waits; then all fail */
    int ok = st == NF_OK;
    nf_error shared;
    nf_status cst = nf_comm_all(comm, &ok, &shared);
    if (cst == NF_OK && ok)
        cst = nf_stats_share(acc, plan, bind, comm, &shared);
    if (st == NF_OK && cst == NF_OK && !ok)
        return nf_fail(err, NF_ERR_STATE, "another process failed while evaluating");
    if (st == NF_OK && cst != NF_OK && err)
        *err = shared;
    if (st == NF_OK)
        st = cst;
    finish_stats(acc, plan, bind, task);
    return st;
}

nf_status nf_evaluate(nf_plan *plan, const nf_dataset *ds, const nf_binding *bind, nf_epoch_stats *stats,
                      nf_error *err)
{
    return nf_evaluate_shared(plan, ds, bind, NULL, stats, err);
}

static int is_loss_target(const nf_graph *g, const nf_node *node)
{
    for (int i = 0; i < g->n_nodes; i++)
        if ((g->nodes[i]->op->flags & NF_OP_LOSS) && g->nodes[i]->inputs[1] == node)
            return 1;
    return 0;
}

/* The node an output node marks (itself for any other node). */
static const nf_node *behind_outputs(const nf_node *node)
{
    while (node->op->flags & NF_OP_OUTPUT)
        node = node->inputs[0];
    return node;
}

static nf_status find_binding(const nf_graph *g, nf_binding *bind, int need_labels, nf_error *err)
{
    if (!g || !bind)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_binding_find: NULL argument");
    memset(bind, 0, sizeof *bind);
    const nf_node *first_loss = NULL;
    for (int i = 0; i < g->n_nodes; i++) {
        const nf_node *node = g->nodes[i];
        if ((node->op->flags & NF_OP_LOSS) && !first_loss)
            first_loss = node;
        if ((node->op->flags & NF_OP_OUTPUT) && !bind->scores)
            bind->scores = node;
        if (!(node->op->flags & NF_OP_INPUT))
            continue;
        int label = is_loss_target(g, node);
        int *n = label ? &bind->n_y : &bind->n_x;
        if (*n == NF_BIND_MAX)
            return nf_fail(err, NF_ERR_GRAPH, "input '%s': more than %d %s inputs", node->name, NF_BIND_MAX,
                           label ? "label" : "feature");
        (label ? bind->ys : bind->xs)[(*n)++] = node;
    }
    bind->x = bind->n_x ? bind->xs[0] : NULL;
    bind->y = bind->n_y ? bind->ys[0] : NULL;
    if (!bind->scores && first_loss)
        bind->scores = first_loss->inputs[0];
    for (int i = 0; bind->scores && i < g->n_nodes; i++) { /* metrics: the labels of the loss on the scores */
        const nf_node *node = g->nodes[i];
        if ((node->op->flags & NF_OP_LOSS) && node->n_inputs > 1 && (node->inputs[1]->op->flags & NF_OP_INPUT) &&
            behind_outputs(node->inputs[0]) == behind_outputs(bind->scores)) {
            bind->y = node->inputs[1];
            break;
        }
    }
    bind->threshold = 0.5;
    for (int i = 0; bind->scores && i < g->n_nodes; i++) { /* a loss that reads the scores as logits? */
        const nf_node *node = g->nodes[i];
        if ((node->op->flags & NF_OP_READS_LOGITS) && behind_outputs(node->inputs[0]) == behind_outputs(bind->scores))
            bind->threshold = 0.0;
    }
    if (!bind->x)
        return nf_fail(err, NF_ERR_GRAPH, "the model has no feature input (an input that is not a loss target)");
    if (!bind->y && need_labels)
        return nf_fail(err, NF_ERR_GRAPH, "the model has no label input: no loss takes an input as its target");
    if (!bind->scores)
        return nf_fail(err, NF_ERR_GRAPH, "the model has no output node and no loss: nothing to compute");
    return NF_OK;
}

nf_status nf_binding_find(const nf_graph *g, nf_binding *bind, nf_error *err)
{
    return find_binding(g, bind, 1, err);
}

nf_status nf_binding_find_inference(const nf_graph *g, nf_binding *bind, nf_error *err)
{
    return find_binding(g, bind, 0, err);
}
