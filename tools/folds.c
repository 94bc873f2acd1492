/* nodeflow train --folds K: K-fold cross-validation (nf_cross_validate),
 * each fold's validation figures at its best epoch, then their mean and
 * standard deviation. Under mpirun the folds are shared out (fold k on
 * rank k mod N, each a training of its own) and rank 0 reports. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* The figures kept per fold (summed across processes: each fold's come
 * from one of them). */
enum { F_TRAIN, F_VAL, F_BEST, F_LOSS, F_ACC, F_TOP5, F_F1, F_LABEL_ACC, F_SUBSET, F_MSE, F_MAE, F_R2, F_TASK,
       N_FIGURES };

static const struct {
    int figure;
    const char *name;
    int task;   /* the task it belongs to; 0: every task */
} columns[] = {
    {F_LOSS, "val_loss", 0},          {F_ACC, "accuracy", NF_TASK_CLASSES},
    {F_TOP5, "top5", NF_TASK_CLASSES}, {F_F1, "f1", NF_TASK_CLASSES},
    {F_LABEL_ACC, "label_accuracy", NF_TASK_MULTI_LABEL}, {F_SUBSET, "subset_accuracy", NF_TASK_MULTI_LABEL},
    {F_F1, "f1", NF_TASK_MULTI_LABEL}, {F_MSE, "mse", NF_TASK_REGRESSION},
    {F_MAE, "mae", NF_TASK_REGRESSION}, {F_R2, "r2", NF_TASK_REGRESSION},
};

static void keep(const nf_fold_report *r, double *f)
{
    const nf_epoch_stats *b = &r->best;
    double v[N_FIGURES] = {(double)r->train_samples, (double)r->val_samples, (double)r->best_epoch, b->loss,
                           b->accuracy, b->top5, b->f1, b->label_accuracy, b->subset_accuracy, b->mse, b->mae, b->r2,
                           (double)b->task};
    memcpy(f, v, sizeof v);
}

/* Whether column c is shown: its task, and (top-5) a value. */
static int shown(int c, const double *figures, int folds)
{
    int task = (int)figures[F_TASK];
    if (columns[c].task && columns[c].task != task)
        return 0;
    for (int k = 0; k < folds; k++)
        if (figures[k * N_FIGURES + columns[c].figure] < 0 && columns[c].figure != F_R2)
            return 0;
    return 1;
}

typedef struct folds_run {
    int quiet, rank, size;
    double *figures;      /* folds x N_FIGURES */
} folds_run;

static void fold_done(void *ctx, const nf_fold_report *r)
{
    folds_run *f = ctx;
    keep(r, f->figures + r->fold * N_FIGURES);
    if (!f->quiet && f->size == 1)
        printf("fold %d: best epoch %lld, validation loss %.4f\n", r->fold + 1, (long long)r->best_epoch,
               r->best.loss);
    fflush(stdout);
}

static void report(const double *figures, int folds, const char *model, int64_t samples, int stratified,
                   long long seed, int json)
{
    int n = (int)(sizeof columns / sizeof columns[0]);
    if (json) {
        printf("{\"folds\": %d, \"samples\": %lld, \"stratified\": %s, \"seed\": %lld, \"per_fold\": [", folds,
               (long long)samples, stratified ? "true" : "false", seed);
        for (int k = 0; k < folds; k++) {
            const double *f = figures + k * N_FIGURES;
            printf("%s{\"fold\": %d, \"train\": %.0f, \"val\": %.0f, \"best_epoch\": %.0f", k ? ", " : "", k + 1,
                   f[F_TRAIN], f[F_VAL], f[F_BEST]);
            char num[32];
            for (int c = 0; c < n; c++)
                if (shown(c, figures, folds))
                    printf(", \"%s\": %s", columns[c].name, cli_json_number(num, sizeof num, f[columns[c].figure]));
            printf("}");
        }
        printf("], \"mean\": {");
    } else {
        printf("%d-fold cross-validation of %s on %lld samples (%sseed %lld; every fold trained from the same "
               "initialisation), validation at each fold's best epoch (lowest validation loss):\n\n"
               "fold   train     val  best epoch",
               folds, model, (long long)samples, stratified ? "stratified by class, " : "", seed);
        for (int c = 0; c < n; c++)
            if (shown(c, figures, folds))
                printf(" %15s", columns[c].name);
        printf("\n");
        for (int k = 0; k < folds; k++) {
            const double *f = figures + k * N_FIGURES;
            printf("%4d %7.0f %7.0f %11.0f", k + 1, f[F_TRAIN], f[F_VAL], f[F_BEST]);
            for (int c = 0; c < n; c++)
                if (shown(c, figures, folds))
                    printf(" %15.4f", f[columns[c].figure]);
            printf("\n");
        }
        printf("mean +- sd  ");
    }
    int first = 1;
    for (int c = 0; c < n; c++) {
        if (!shown(c, figures, folds))
            continue;
        double mean = 0, square = 0;
        for (int k = 0; k < folds; k++)
            mean += figures[k * N_FIGURES + columns[c].figure] / folds;
        for (int k = 0; k < folds; k++) {
            double d = figures[k * N_FIGURES + columns[c].figure] - mean;
            square += d * d;
        }
        double sd = sqrt(square / (folds - 1)); /* (the sample standard deviation) */
        char a[32], b[32];
        if (json)
            printf("%s\"%s\": {\"mean\": %s, \"sd\": %s}", first ? "" : ", ", columns[c].name,
                   cli_json_number(a, sizeof a, mean), cli_json_number(b, sizeof b, sd));
        else
            printf("%s%s %.4f +- %.4f", first ? "" : ", ", columns[c].name, mean, sd);
        first = 0;
    }
    printf(json ? "}}\n" : "\n");
}

int cli_cross_validate(const char *model, const char *data, long long samples, int folds, int stratified,
                       const nf_train_config *given, nf_comm *comm, int quiet, int json)
{
    nf_train_config config;
    nf_graph *g = NULL;
    nf_dataset *ds = NULL;
    nf_error err;
    int rc = cli_load_model(model, &g, &config);
    if (rc == EXIT_OK && nf_train_config_merge(&config, given, &err) != NF_OK)
        rc = cli_usage("train", "%s", err.message);
    if (rc == EXIT_OK && nf_dataset_load_spec(data, &ds, &err) != NF_OK)
        rc = cli_fail(&err);
    if (rc == EXIT_OK && samples > 0 && samples < ds->count)
        nf_dataset_truncate(ds, samples);
    folds_run f = {quiet, nf_comm_rank(comm), nf_comm_size(comm), calloc((size_t)folds * N_FIGURES, sizeof(double))};
    nf_fold_report *reports = calloc((size_t)folds, sizeof *reports);
    if (rc == EXIT_OK && (!f.figures || !reports)) {
        fprintf(stderr, "nodeflow: out of memory\n");
        rc = EXIT_RUNTIME;
    }
    if (rc == EXIT_OK) {
        /* under mpirun: this process's folds, one training each; the others' figures stay 0 here */
        nf_cv_options cv = {.folds = folds, .stratified = stratified, .fold_done = fold_done, .ctx = &f,
                            .first = f.rank, .step = f.size};
        if (nf_cross_validate(g, &config, ds, &cv, reports, &err) != NF_OK)
            rc = cli_fail(&err);
    }
    if (rc == EXIT_OK && f.size > 1 && nf_comm_sum_doubles(comm, f.figures, (int64_t)folds * N_FIGURES, &err) != NF_OK)
        rc = cli_fail(&err);
    if (rc == EXIT_OK && f.rank == 0)
        report(f.figures, folds, model, ds->count, stratified, (long long)config.seed, json);
    free(reports);
    free(f.figures);
    nf_dataset_free(ds);
    nf_graph_free(g);
    return rc;
}
