/* nodeflow — the task metrics' running sums (train/metrics.c). */
#ifndef NF_TRAIN_METRICS_H
#define NF_TRAIN_METRICS_H

#include "nodeflow/train.h"

/* Adds `rows` rows of scores and labels: for classes, `width` (C) scores
 * and one class index per row (s->correct counts the rows right);
 * otherwise `width` scores and as many labels per row. threshold: one
 * score's class-1 boundary. */
void nf_metrics_add(nf_epoch_stats *s, nf_task task, const float *scores, const float *labels, int64_t rows,
                    int64_t width, double threshold);
/* Turns the sums into the metrics; `scored` rows were classified. */
void nf_metrics_finish(nf_epoch_stats *s, int64_t classes, int64_t width, int64_t scored);

#endif
