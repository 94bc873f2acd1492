/* nodeflow — the task metrics of nf_epoch_stats as the commands show
 * them: one line of text, CSV fields, JSON members. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

/* The metrics a task has, in the order they are shown. */
typedef struct metric {
    const char *name;   /* CSV column suffix and JSON key */
    const char *label;  /* in the progress line */
    int percent;        /* shown as a percentage */
} metric;

static const metric metrics[] = {
    {"accuracy", "acc", 1},        {"top5", "top5", 1},       {"f1", "f1", 0},
    {"label_accuracy", "label-acc", 1}, {"subset_accuracy", "subset-acc", 1},
    {"mse", "mse", 0},             {"mae", "mae", 0},         {"r2", "r2", 0},
};

enum { N_METRICS = sizeof metrics / sizeof metrics[0] };

static double value_of(const nf_epoch_stats *s, int i)
{
    const double v[N_METRICS] = {s->accuracy, s->top5, s->f1, s->label_accuracy, s->subset_accuracy,
                                 s->mse, s->mae, s->r2};
    return v[i];
}

/* Whether metric i applies: it is computed for this task (-1 otherwise;
 * R^2 and F1 may be negative or 0 but are then still defined). */
static int applies(const nf_epoch_stats *s, int i)
{
    switch (s->task) {
    case NF_TASK_CLASSES:
        return i == 0 || (i == 1 && s->top5 >= 0) || (i == 2 && s->f1 >= 0);
    case NF_TASK_MULTI_LABEL:
        return i >= 2 && i <= 4;
    case NF_TASK_REGRESSION:
        return i >= 5;
    default:
        return 0;
    }
}

void cli_metrics_text(FILE *out, const nf_epoch_stats *s)
{
    for (int i = 0; i < N_METRICS; i++) {
        if (!applies(s, i))
            continue;
        if (metrics[i].percent)
            fprintf(out, " %s %.2f%%", metrics[i].label, 100 * value_of(s, i));
        else
            fprintf(out, " %s %.4g", metrics[i].label, value_of(s, i));
    }
}

void cli_metrics_csv_header(FILE *out, const char *prefix)
{
    for (int i = 0; i < N_METRICS; i++)
        fprintf(out, ",%s_%s", prefix, metrics[i].name);
}

void cli_metrics_csv(FILE *out, const nf_epoch_stats *s)
{
    for (int i = 0; i < N_METRICS; i++) {
        if (s && applies(s, i))
            fprintf(out, ",%.6g", value_of(s, i));
        else
            fputc(',', out);
    }
}

void cli_metrics_json(FILE *out, const nf_epoch_stats *s)
{
    char n[32];
    fprintf(out, "\"loss\": %s, \"task\": \"%s\"", cli_json_number(n, sizeof n, s->loss),
            s->task == NF_TASK_CLASSES       ? "classes"
            : s->task == NF_TASK_MULTI_LABEL ? "multi-label"
            : s->task == NF_TASK_REGRESSION  ? "regression"
                                             : "loss");
    for (int i = 0; i < N_METRICS; i++)
        if (applies(s, i))
            fprintf(out, ", \"%s\": %s", metrics[i].name, cli_json_number(n, sizeof n, value_of(s, i)));
    if (s->task != NF_TASK_REGRESSION || s->outputs == 0)
        return;
    const char *names[3] = {"output_mse", "output_mae", "output_r2"};
    const double *values[3] = {s->output_mse, s->output_mae, s->output_r2};
    for (int k = 0; k < 3; k++) {
        fprintf(out, ", \"%s\": [", names[k]);
        for (int j = 0; j < s->outputs; j++)
            fprintf(out, "%s%s", j ? ", " : "", cli_json_number(n, sizeof n, values[k][j]));
        fputc(']', out);
    }
}
