/* nodeflow — the metrics that follow the task (nf_epoch_stats): top-5
 * accuracy and macro F1 for classes, per-label and subset accuracy and
 * micro F1 for multi-label targets, MSE, MAE and R^2 for regression,
 * gathered batch by batch as running sums and finished at the end. */
#include <math.h>
#include <string.h>

#include "nodeflow/train.h"
#include "train/metrics.h"

/* Rows of C scores against one class index each: the rows right (the
 * arg-max, or one score above the threshold), top-5 and the per-class
 * true/false positives and false negatives. */
static void add_classes(nf_metric_sums *m, int64_t *correct, const float *scores, const float *labels, int64_t rows,
                        int64_t c, double threshold)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *s = scores + r * c;
        float raw = labels[r];
        if (!(raw >= 0.0f && raw < (float)(c > 1 ? c : 2)) || raw != floorf(raw))
            continue; /* not a class index of these scores (checked at load where it can be) */
        int64_t label = (int64_t)raw, best = 0, above = 0;
        for (int64_t j = 1; j < c; j++)
            best = s[j] > s[best] ? j : best;
        if (c == 1) /* one score: class 1 above the threshold */
            best = s[0] > threshold;
        for (int64_t j = 0; c > 5 && j < c; j++) /* among the 5 best when fewer than 5 beat it */
            above += s[j] > s[label];
        m->top5 += c > 5 && above < 5;
        *correct += best == label;
        if (label < NF_STATS_CLASSES && best < NF_STATS_CLASSES) {
            m->tp[label] += best == label;
            m->fn[label] += best != label;
            m->fp[best] += best != label;
        }
    }
}

/* Rows of `width` scores against as many 0/1 labels. */
static void add_multi_label(nf_metric_sums *m, const float *scores, const float *labels, int64_t rows,
                            int64_t width, double threshold)
{
    for (int64_t r = 0; r < rows; r++) {
        int64_t right = 0;
        for (int64_t j = 0; j < width; j++) {
            int predicted = scores[r * width + j] > threshold, actual = labels[r * width + j] > 0.5f;
            right += predicted == actual;
            m->label_tp += predicted && actual;
            m->label_fp += predicted && !actual;
            m->label_fn += !predicted && actual;
        }
        m->label_correct += right;
        m->rows_correct += right == width;
    }
    m->labels += rows * width;
    m->rows += rows;
}

static void add_regression(nf_metric_sums *m, const float *pred, const float *y, int64_t rows, int64_t width)
{
    int64_t described = width < NF_STATS_OUTPUTS ? width : NF_STATS_OUTPUTS;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < width; j++) {
            double t = y[r * width + j], d = (double)pred[r * width + j] - t;
            m->sse += d * d;
            m->sae += fabs(d);
            m->sum_y += t;
            m->sum_y2 += t * t;
            if (j < described) {
                m->out_sse[j] += d * d;
                m->out_sae[j] += fabs(d);
                m->out_y[j] += t;
                m->out_y2[j] += t * t;
            }
        }
    m->n += (double)(rows * width);
    m->out_n += (double)rows;
}

void nf_metrics_add(nf_epoch_stats *s, nf_task task, const float *scores, const float *labels, int64_t rows,
                    int64_t width, double threshold)
{
    if (task == NF_TASK_CLASSES)
        add_classes(&s->sums, &s->correct, scores, labels, rows, width, threshold);
    else if (task == NF_TASK_MULTI_LABEL)
        add_multi_label(&s->sums, scores, labels, rows, width, threshold);
    else if (task == NF_TASK_REGRESSION)
        add_regression(&s->sums, scores, labels, rows, width);
}

/* F1 = 2 tp / (2 tp + fp + fn), 0 when there is nothing to find */
static double f1_of(int64_t tp, int64_t fp, int64_t fn)
{
    return tp + fp + fn > 0 ? 2.0 * (double)tp / (double)(2 * tp + fp + fn) : 0.0;
}

/* R^2 = 1 - SS_res / SS_tot, SS_tot = sum y^2 - (sum y)^2 / n; 0 for
 * constant targets (sklearn's choice for a perfect fit aside) */
static double r2_of(double sse, double sum_y, double sum_y2, double n)
{
    double tot = sum_y2 - sum_y * sum_y / n; /* (under 1e-12 of sum y^2: rounding of constant targets) */
    return n > 0 && tot > 1e-12 * sum_y2 ? 1.0 - sse / tot : 0.0;
}

/* Macro F1 over the classes that occur (as a label or a prediction). */
static double macro_f1(const nf_metric_sums *m, int64_t classes)
{
    if (classes > NF_STATS_CLASSES)
        return -1.0;
    double sum = 0.0;
    int64_t seen = 0;
    for (int64_t c = 0; c < classes; c++) {
        if (m->tp[c] + m->fp[c] + m->fn[c] == 0)
            continue;
        sum += f1_of(m->tp[c], m->fp[c], m->fn[c]);
        seen++;
    }
    return seen ? sum / (double)seen : 0.0;
}

void nf_metrics_finish(nf_epoch_stats *s, int64_t classes, int64_t width, int64_t scored)
{
    const nf_metric_sums *m = &s->sums;
    s->top5 = s->f1 = s->label_accuracy = s->subset_accuracy = s->mse = s->mae = s->r2 = -1.0;
    s->outputs = 0;
    if (s->task == NF_TASK_CLASSES) {
        s->top5 = classes > 5 && scored > 0 ? (double)m->top5 / (double)scored : -1.0;
        s->f1 = macro_f1(m, classes > 1 ? classes : 2);
    } else if (s->task == NF_TASK_MULTI_LABEL && m->labels > 0) {
        s->label_accuracy = (double)m->label_correct / (double)m->labels;
        s->subset_accuracy = (double)m->rows_correct / (double)m->rows;
        s->f1 = f1_of(m->label_tp, m->label_fp, m->label_fn);
    } else if (s->task == NF_TASK_REGRESSION && m->n > 0) {
        s->mse = m->sse / m->n;
        s->mae = m->sae / m->n;
        s->r2 = r2_of(m->sse, m->sum_y, m->sum_y2, m->n);
        s->outputs = (int)(width < NF_STATS_OUTPUTS ? width : NF_STATS_OUTPUTS);
        for (int j = 0; j < s->outputs; j++) {
            s->output_mse[j] = m->out_sse[j] / m->out_n;
            s->output_mae[j] = m->out_sae[j] / m->out_n;
            s->output_r2[j] = r2_of(m->out_sse[j], m->out_y[j], m->out_y2[j], m->out_n);
        }
    }
}
