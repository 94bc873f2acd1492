/* nodeflow train: trains a model file on a dataset, with validation,
 * progress, a CSV log, checkpoints, resuming and clean interruption. */
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const char train_help[] =
    "usage: nodeflow train MODEL.nfg --data SPEC [options]\n\n"
    "Trains the model's parameters. Settings come from the model's [train]\n"
    "section; these options override them:\n"
    "  --data SPEC             training data (required), e.g. fashion-mnist:train\n"
    "  --val SPEC              validation data, evaluated after every epoch\n"
    "  --epochs N              epochs to train (default 1)\n"
    "  --steps N               stop after N batches in all (the last epoch may end early)\n"
    "  --unroll T              run the graph over T time steps per sample (inputs with\n"
    "                          sequence=true take T values; backpropagation through time)\n"
    "  --batch N               mini-batch size (default 32)\n"
    "  --optimizer NAME        optimizer (default sgd)\n"
    "  --lr X                  learning rate\n"
    "  --set KEY=VALUE         an optimizer setting, e.g. momentum=0.9, lr_mult.fc1=0.1,\n"
    "                          decay_1d=0, accumulate=4, or a schedule's, e.g. schedule.gamma=0.5\n"
    "  --schedule NAME         learning-rate schedule per epoch: constant, step, multistep,\n"
    "                          exponential, cosine, restarts, plateau (on the validation loss)\n"
    "  --accumulate K          sum the gradients of K batches per step\n"
    "  --clip-norm X           clip gradients to global norm X\n"
    "  --clip-value X          clip each gradient element to [-X, X]\n"
    "  --average KIND          average the weights (ema or polyak) for validation and --save-average\n"
    "  --average-decay X       decay of the ema (default 0.999)\n"
    "  --early-stop N          stop when the validation loss has not improved for N epochs,\n"
    "                          keeping the best weights\n"
    "  --seed N                seed of initialisation and shuffling (default 0)\n"
    "  --threads N             threads for OpenMP and OpenBLAS together (default: all cores)\n"
    "  --out FILE              write the trained weights (safetensors)\n"
    "  --save-average          write the averaged weights to --out instead\n"
    "  --checkpoint FILE       write a checkpoint after every epoch (and on interrupt)\n"
    "  --checkpoint-every N    ... and every N batches\n"
    "  --resume FILE           continue from a checkpoint exactly where it stopped\n"
    "  --log FILE              a CSV line per epoch: losses, accuracies, seconds\n"
    "  --skip-nonfinite        skip a batch whose loss or gradients are NaN or Inf (counted)\n"
    "                          instead of stopping with an error that names the node\n"
    "  --quiet                 print nothing but errors\n\n"
    "SIGINT or SIGTERM stop after the current batch and write a checkpoint.\n"
    "data SPEC: fashion-mnist:train | fashion-mnist:test | idx:IMAGES,LABELS |\n"
    "           csv:FILE[,label=COLUMN] | npy:X.npy[,Y.npy] | text:FILE-OR-DIRECTORY\n"
    "text data is cut into windows of the model's input length, one stream per\n"
    "batch row, taken in order so that carried recurrent state follows the text;\n"
    "its vocabulary is saved with the weights (for nodeflow generate).\n";

typedef struct train_options {
    const char *model, *data, *val, *out, *checkpoint, *resume, *log;
    long long epochs, steps, unroll, batch, seed, threads, checkpoint_every, accumulate, early_stop;
    const char *optimizer, *schedule, *average;
    double lr, clip_norm, clip_value, average_decay;
    int quiet, save_average, skip_nonfinite, n_set;
    const char *set[NF_TRAIN_MAX_HPARAMS];
} train_options;

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static int takes_value(const char *name)
{
    static const char *const flags[] = {"--data", "--val", "--epochs", "--steps", "--unroll", "--batch", "--optimizer", "--lr", "--set",
                                        "--clip-norm", "--clip-value", "--seed", "--threads", "--out", "--checkpoint",
                                        "--checkpoint-every", "--resume", "--log", "--schedule", "--accumulate",
                                        "--average", "--average-decay", "--early-stop", NULL};
    for (int i = 0; flags[i]; i++)
        if (!strcmp(name, flags[i]))
            return 1;
    return 0;
}

static int parse_option(train_options *o, const char *flag, const char *v)
{
    const char *const text[] = {"--data", "--val", "--out", "--checkpoint", "--resume", "--log", "--optimizer",
                                "--schedule", "--average"};
    const char **slot[] = {&o->data, &o->val, &o->out, &o->checkpoint, &o->resume, &o->log, &o->optimizer,
                           &o->schedule, &o->average};
    for (int i = 0; i < 9; i++)
        if (!strcmp(flag, text[i])) {
            if (!v || !*v)
                return cli_usage("train", "%s needs a value", flag);
            *slot[i] = v;
            return EXIT_OK;
        }
    if (!strcmp(flag, "--epochs") && cli_parse_int(v, 1, 1000000, &o->epochs))
        return EXIT_OK;
    if (!strcmp(flag, "--steps") && cli_parse_int(v, 1, 1LL << 40, &o->steps))
        return EXIT_OK;
    if (!strcmp(flag, "--unroll") && cli_parse_int(v, 1, 1 << 20, &o->unroll))
        return EXIT_OK;
    if (!strcmp(flag, "--batch") && cli_parse_int(v, 1, 1 << 20, &o->batch))
        return EXIT_OK;
    if (!strcmp(flag, "--seed") && cli_parse_int(v, 0, 1LL << 53, &o->seed))
        return EXIT_OK;
    if (!strcmp(flag, "--threads") && cli_parse_int(v, 1, 1024, &o->threads))
        return EXIT_OK;
    if (!strcmp(flag, "--checkpoint-every") && cli_parse_int(v, 1, 1LL << 40, &o->checkpoint_every))
        return EXIT_OK;
    if (!strcmp(flag, "--lr") && cli_parse_double(v, &o->lr) && o->lr >= 0)
        return EXIT_OK;
    if (!strcmp(flag, "--clip-norm") && cli_parse_double(v, &o->clip_norm) && o->clip_norm > 0)
        return EXIT_OK;
    if (!strcmp(flag, "--clip-value") && cli_parse_double(v, &o->clip_value) && o->clip_value > 0)
        return EXIT_OK;
    if (!strcmp(flag, "--average-decay") && cli_parse_double(v, &o->average_decay) && o->average_decay > 0 &&
        o->average_decay < 1)
        return EXIT_OK;
    if (!strcmp(flag, "--accumulate") && cli_parse_int(v, 1, 1000000, &o->accumulate))
        return EXIT_OK;
    if (!strcmp(flag, "--early-stop") && cli_parse_int(v, 1, 1000000, &o->early_stop))
        return EXIT_OK;
    if (!strcmp(flag, "--save-average") && !v) {
        o->save_average = 1;
        return EXIT_OK;
    }
    if (!strcmp(flag, "--skip-nonfinite") && !v) {
        o->skip_nonfinite = 1;
        return EXIT_OK;
    }
    if (!strcmp(flag, "--set") && v && strchr(v, '=') && o->n_set < NF_TRAIN_MAX_HPARAMS) {
        o->set[o->n_set++] = v;
        return EXIT_OK;
    }
    if (!strcmp(flag, "--quiet") && !v) {
        o->quiet = 1;
        return EXIT_OK;
    }
    if (takes_value(flag) || !strcmp(flag, "--quiet") || !strcmp(flag, "--save-average") ||
        !strcmp(flag, "--skip-nonfinite"))
        return cli_usage("train", "bad value for %s: '%s'", flag, v ? v : "(none)");
    return cli_usage("train", "unknown option '%s'", flag);
}

static int parse_options(int argc, char **argv, train_options *o)
{
    memset(o, 0, sizeof *o);
    o->epochs = o->batch = o->seed = o->threads = o->accumulate = o->early_stop = -1;
    o->lr = o->clip_norm = o->clip_value = o->average_decay = NAN;
    cli_args a = {argc, argv, 1, "train"};
    const char *flag, *value;
    while (cli_next(&a, &flag, &value, takes_value)) {
        if (flag && !strcmp(flag, "--help")) {
            fputs(train_help, stdout);
            return -1;
        }
        int rc = flag ? parse_option(o, flag, value) : EXIT_OK;
        if (!flag && o->model)
            return cli_usage("train", "one model file, please ('%s' and '%s')", o->model, value);
        if (!flag)
            o->model = value;
        if (rc != EXIT_OK)
            return rc;
    }
    if (!o->model)
        return cli_usage("train", "which model? 'nodeflow train MODEL.nfg --data SPEC'");
    if (!o->data)
        return cli_usage("train", "--data SPEC is required");
    if (o->checkpoint_every > 0 && !o->checkpoint)
        return cli_usage("train", "--checkpoint-every needs --checkpoint FILE");
    if (o->save_average && !o->out)
        return cli_usage("train", "--save-average needs --out FILE");
    return EXIT_OK;
}

/* Command-line values override the model's [train] section. */
static void merge(train_options *o, const nf_train_config *c)
{
    if (!o->optimizer)
        o->optimizer = c->optimizer[0] ? c->optimizer : "sgd";
    if (isnan(o->lr))
        o->lr = c->lr;
    if (o->batch < 0)
        o->batch = c->batch ? c->batch : 32;
    if (o->epochs < 0)
        o->epochs = c->epochs ? c->epochs : 1;
    if (o->seed < 0)
        o->seed = c->seed >= 0 ? c->seed : 0;
    if (isnan(o->clip_norm))
        o->clip_norm = c->clip_norm;
    if (isnan(o->clip_value))
        o->clip_value = c->clip_value;
    if (o->early_stop < 0)
        o->early_stop = c->early_stop;
    if (o->unroll == 0)
        o->unroll = c->unroll ? c->unroll : 1;
    if (!o->average && c->average[0])
        o->average = c->average;
    if (isnan(o->average_decay))
        o->average_decay = isnan(c->average_decay) ? 0.999 : c->average_decay;
    if (!o->schedule && c->schedule[0])
        o->schedule = c->schedule;
}

/* "--set KEY=VALUE" values for keys that start (or not) with "schedule." */
static int for_each_set(const train_options *o, int schedule_keys,
                        int (*apply)(void *target, const char *key, const char *value), void *target)
{
    for (int i = 0; i < o->n_set; i++) {
        char key[64];
        const char *eq = strchr(o->set[i], '=');
        snprintf(key, sizeof key, "%.*s", (int)(eq - o->set[i]), o->set[i]);
        int is_schedule = strncmp(key, "schedule.", 9) == 0;
        if (is_schedule == schedule_keys) {
            int rc = apply(target, is_schedule ? key + 9 : key, eq + 1);
            if (rc != EXIT_OK)
                return rc;
        }
    }
    return EXIT_OK;
}

static int set_optimizer_key(void *target, const char *key, const char *value)
{
    nf_error err;
    double v;
    if (!cli_parse_double(value, &v))
        return cli_usage("train", "--set %s: '%s' is not a number", key, value);
    return nf_optimizer_set(target, key, v, &err) == NF_OK ? EXIT_OK : cli_fail(&err);
}

static int set_schedule_key(void *target, const char *key, const char *value)
{
    nf_error err;
    return nf_schedule_set_text(target, key, value, &err) == NF_OK ? EXIT_OK : cli_fail(&err);
}

static int make_optimizer(nf_graph *g, const train_options *o, const nf_train_config *c, nf_optimizer **opt)
{
    nf_error err;
    if (nf_optimizer_new(g, o->optimizer, opt, &err) != NF_OK)
        return cli_fail(&err);
    int file_optimizer = !c->optimizer[0] || !strcmp(c->optimizer, o->optimizer);
    for (int i = 0; file_optimizer && i < c->n_hparams; i++)
        if (nf_optimizer_set(*opt, c->hparam_key[i], c->hparam_value[i], &err) != NF_OK)
            return cli_fail(&err);
    int rc = for_each_set(o, 0, set_optimizer_key, *opt);
    if (rc != EXIT_OK)
        return rc;
    if (!isnan(o->lr) && nf_optimizer_set(*opt, "lr", o->lr, &err) != NF_OK)
        return cli_fail(&err);
    if (o->accumulate > 0 && nf_optimizer_set(*opt, "accumulate", (double)o->accumulate, &err) != NF_OK)
        return cli_fail(&err);
    if (nf_optimizer_set_clipping(*opt, isnan(o->clip_norm) ? 0 : o->clip_norm,
                                  isnan(o->clip_value) ? 0 : o->clip_value, &err) != NF_OK)
        return cli_fail(&err);
    return EXIT_OK;
}

/* The schedule starts from the optimizer's learning rate. */
static int make_schedule(const train_options *o, const nf_train_config *c, double lr0, nf_schedule **s)
{
    nf_error err;
    if (!o->schedule)
        return EXIT_OK;
    if (nf_schedule_new(o->schedule, lr0, s, &err) != NF_OK)
        return cli_fail(&err);
    int file_schedule = !c->schedule[0] || !strcmp(c->schedule, o->schedule);
    for (int i = 0; file_schedule && i < c->n_schedule; i++)
        if (nf_schedule_set_text(*s, c->schedule_key[i], c->schedule_value[i], &err) != NF_OK)
            return cli_fail(&err);
    return for_each_set(o, 1, set_schedule_key, *s);
}

/* ---- progress -------------------------------------------------------- */

typedef struct progress_view {
    int tty, quiet;
    double start, last;
    int64_t total, shown_tenth;
} progress_view;

static void show_progress(progress_view *v, int64_t epoch, int64_t epochs, const nf_epoch_stats *s)
{
    if (v->quiet)
        return;
    double now = cli_now(), elapsed = now - v->start;
    double rate = elapsed > 0 ? (double)s->samples / elapsed : 0;
    double eta = s->batches ? elapsed * (double)(v->total - s->batches) / (double)s->batches : 0;
    if (v->tty) {
        if (now - v->last < 0.1 && s->batches < v->total)
            return;
        v->last = now;
        int width = 30, done = v->total ? (int)(width * s->batches / v->total) : width;
        char bar[64];
        for (int i = 0; i < width; i++)
            bar[i] = i < done ? '#' : '.';
        bar[width] = '\0';
        fprintf(stderr, "\repoch %lld/%lld [%s] %lld/%lld loss %.4f %.0f samples/s ETA %d:%02d ", (long long)epoch,
                (long long)epochs, bar, (long long)s->batches, (long long)v->total, s->loss, rate, (int)eta / 60,
                (int)eta % 60);
        fflush(stderr);
    } else if (v->total && s->batches * 10 / v->total > v->shown_tenth) {
        v->shown_tenth = s->batches * 10 / v->total;
        fprintf(stderr, "epoch %lld/%lld: %lld/%lld batches, loss %.4f, %.0f samples/s, ETA %.0f s\n",
                (long long)epoch, (long long)epochs, (long long)s->batches, (long long)v->total, s->loss, rate, eta);
    }
}

/* ---- the run ------------------------------------------------------- */

typedef struct run {
    train_options o;
    nf_graph *g;
    nf_train_config config;
    nf_dataset *train, *val;
    nf_plan *plan, *eval_plan;
    nf_training t;            /* optimizer, batches, schedule, average, progress */
    nf_binding bind;
    FILE *log;
    double best_val;          /* early stopping */
    int64_t bad_epochs;
    float *best_weights;
    int stop;
} run;

static void run_free(run *r)
{
    if (r->log)
        fclose(r->log);
    free(r->best_weights);
    nf_batcher_free(r->t.batches);
    nf_optimizer_free(r->t.opt);
    nf_schedule_free(r->t.schedule);
    nf_average_free(r->t.average);
    nf_plan_free(r->plan);
    nf_plan_free(r->eval_plan);
    nf_graph_free(r->g);
    nf_dataset_free(r->train);
    nf_dataset_free(r->val);
}

static int open_log(run *r)
{
    if (!r->o.log)
        return EXIT_OK;
    int fresh = !r->o.resume || access(r->o.log, F_OK) != 0;
    r->log = fopen(r->o.log, fresh ? "w" : "a");
    if (!r->log) {
        fprintf(stderr, "nodeflow: %s: cannot open the log for writing\n", r->o.log);
        return EXIT_USAGE;
    }
    if (fresh)
        fprintf(r->log, "epoch,train_loss,train_accuracy,val_loss,val_accuracy,lr,seconds\n");
    return EXIT_OK;
}

/* Loads a data spec; text gets windows of the model's input length and
 * one stream per row of `batch`. */
static nf_status load_data(const run *r, const char *spec, int64_t batch, nf_dataset **out, nf_error *err)
{
    if (strncmp(spec, "text:", 5) != 0 || strchr(spec, ','))
        return nf_dataset_load_spec(spec, out, err);
    nf_shape x;
    nf_status st = nf_node_shape(r->bind.x, &x, err);
    int unrolled = r->o.unroll > 1;
    if (st == NF_OK && x.rank != (unrolled ? 0 : 1)) {
        err->code = NF_ERR_SHAPE;
        snprintf(err->message, sizeof err->message, "text data needs an input of %s; '%s' is not one",
                 unrolled ? "one token id per step (shape=scalar sequence=true)" : "[T] token ids",
                 nf_node_name(r->bind.x));
        return NF_ERR_SHAPE;
    }
    return st == NF_OK ? nf_dataset_load_text(spec + 5, unrolled ? r->o.unroll : x.dim[0], batch, out, err) : st;
}

/* Validation batches: at least 256 rows, or one per stream of text */
static int64_t eval_batch(const run *r)
{
    if (r->val->streams)
        return r->val->streams;
    return r->o.batch > 256 ? r->o.batch : 256;
}

static int set_up(run *r)
{
    nf_error err;
    int rc = cli_load_model(r->o.model, &r->g, &r->config);
    if (rc != EXIT_OK)
        return rc;
    merge(&r->o, &r->config);
    if (r->o.early_stop > 0 && !r->o.val)
        return cli_usage("train", "early stopping watches the validation loss: give --val SPEC");
    if (r->o.schedule && !strcmp(r->o.schedule, "plateau") && !r->o.val)
        return cli_usage("train", "the plateau schedule watches the validation loss: give --val SPEC");
    nf_set_threads(r->o.threads > 0 ? (int)r->o.threads : 0);
    if (nf_graph_init_params(r->g, (uint64_t)r->o.seed, &err) != NF_OK ||
        nf_binding_find(r->g, &r->bind, &err) != NF_OK ||
        load_data(r, r->o.data, r->o.batch, &r->train, &err) != NF_OK ||
        (r->o.val && load_data(r, r->o.val, r->o.batch, &r->val, &err) != NF_OK) ||
        nf_graph_set_vocab(r->g, r->train->vocab, r->train->vocab_size, &err) != NF_OK ||
        nf_plan_compile(r->g, r->o.batch, NF_PLAN_TRAINING, &r->plan, &err) != NF_OK ||
        nf_plan_set_steps(r->plan, r->o.unroll, &err) != NF_OK ||
        (r->val && nf_plan_compile(r->g, eval_batch(r), NF_PLAN_INFERENCE, &r->eval_plan, &err) != NF_OK) ||
        (r->val && nf_plan_set_steps(r->eval_plan, r->o.unroll, &err) != NF_OK) ||
        nf_batcher_new(r->train, r->o.batch, r->train->streams == 0, (uint64_t)r->o.seed * 2654435761u + 1,
                       &r->t.batches, &err) != NF_OK)
        return cli_fail(&err);
    nf_plan_set_skip_nonfinite(r->plan, r->o.skip_nonfinite);
    if ((rc = make_optimizer(r->g, &r->o, &r->config, &r->t.opt)) != EXIT_OK ||
        (rc = make_schedule(&r->o, &r->config, nf_optimizer_lr(r->t.opt), &r->t.schedule)) != EXIT_OK)
        return rc;
    if (r->o.average && nf_average_new(r->g, r->o.average, r->o.average_decay, &r->t.average, &err) != NF_OK)
        return cli_fail(&err);
    if (r->o.early_stop > 0 && !(r->best_weights = malloc((size_t)nf_graph_param_floats(r->g) * sizeof(float)))) {
        fprintf(stderr, "nodeflow: out of memory\n");
        return EXIT_RUNTIME;
    }
    r->best_val = INFINITY;
    if (r->o.resume && nf_checkpoint_load(r->o.resume, r->g, &r->t, &err) != NF_OK)
        return cli_fail(&err);
    return open_log(r);
}

static int save_checkpoint(run *r, const char *path)
{
    nf_error err;
    if (nf_checkpoint_save(path, r->g, &r->t, &err) != NF_OK) {
        fprintf(stderr, "nodeflow: %s\n", err.message);
        return EXIT_RUNTIME;
    }
    return EXIT_OK;
}

static const char *interrupt_path(const run *r, char *buf, size_t size)
{
    if (r->o.checkpoint)
        return r->o.checkpoint;
    snprintf(buf, size, "%s.ckpt", r->o.out ? r->o.out : "nodeflow-interrupted");
    return buf;
}

static void print_epoch(const run *r, const nf_epoch_stats *fit, const nf_epoch_stats *val, double seconds)
{
    if (r->o.quiet)
        return;
    printf("epoch %lld/%lld  train loss %.4f", (long long)r->t.progress.epoch, (long long)r->o.epochs, fit->loss);
    if (fit->accuracy >= 0)
        printf(" acc %.2f%%", 100 * fit->accuracy);
    if (val)
        printf("  val loss %.4f", val->loss);
    if (val && val->accuracy >= 0)
        printf(" acc %.2f%%", 100 * val->accuracy);
    if (fit->skipped)
        printf("  (%lld non-finite batches skipped)", (long long)fit->skipped);
    printf("  %.1f s\n", seconds);
    fflush(stdout);
}

/* Evaluates `plan` on the validation data, with the averaged weights
 * when averaging. */
static int validate(run *r, nf_epoch_stats *val)
{
    nf_error err;
    if (r->t.average && nf_average_swap(r->t.average, &err) != NF_OK)
        return cli_fail(&err);
    nf_status st = nf_evaluate(r->eval_plan, r->val, &r->bind, val, &err);
    if (r->t.average)
        nf_average_swap(r->t.average, NULL);
    return st == NF_OK ? EXIT_OK : cli_fail(&err);
}

/* Keeps the best weights; stops after early_stop epochs without a better
 * validation loss, restoring them. */
static void early_stopping(run *r, double val_loss)
{
    nf_tensor w;
    nf_graph_param(r->g, 0, NULL, &w, NULL);
    size_t bytes = (size_t)nf_graph_param_floats(r->g) * sizeof(float);
    if (val_loss < r->best_val) {
        r->best_val = val_loss;
        r->bad_epochs = 0;
        memcpy(r->best_weights, w.data, bytes);
        return;
    }
    if (++r->bad_epochs < r->o.early_stop)
        return;
    memcpy(w.data, r->best_weights, bytes);
    r->stop = 1;
    if (!r->o.quiet)
        printf("early stop: no better validation loss for %lld epochs; keeping the best (%.4f)\n",
               r->o.early_stop, r->best_val);
}

static int end_epoch(run *r, const nf_epoch_stats *fit, double seconds)
{
    nf_epoch_stats val = {0};
    int rc = r->val ? validate(r, &val) : EXIT_OK;
    if (rc != EXIT_OK)
        return rc;
    r->t.progress.epoch++;
    print_epoch(r, fit, r->val ? &val : NULL, seconds);
    if (r->log) {
        fprintf(r->log, "%lld,%.6f,%.6f,", (long long)r->t.progress.epoch, fit->loss, fit->accuracy);
        if (r->val)
            fprintf(r->log, "%.6f,%.6f,", val.loss, val.accuracy);
        else
            fprintf(r->log, ",,");
        fprintf(r->log, "%.6g,%.3f\n", nf_optimizer_lr(r->t.opt), seconds);
        fflush(r->log);
    }
    if (r->t.schedule) {
        nf_schedule_step(r->t.schedule, r->val ? val.loss : NAN);
        nf_optimizer_set_lr(r->t.opt, nf_schedule_lr(r->t.schedule));
    }
    if (r->o.early_stop > 0)
        early_stopping(r, val.loss);
    return r->o.checkpoint ? save_checkpoint(r, r->o.checkpoint) : EXIT_OK;
}

static int train_epoch(run *r)
{
    nf_error err;
    nf_epoch_stats fit;
    memset(&fit, 0, sizeof fit);
    progress_view view = {isatty(STDERR_FILENO), r->o.quiet, cli_now(), 0, nf_batcher_batches(r->t.batches), 0};
    int epoch_done = 0;
    while (!epoch_done && !(r->o.steps > 0 && r->t.progress.step >= r->o.steps)) {
        if (nf_train_batches(r->plan, r->t.opt, r->t.batches, &r->bind, 1, &fit, &epoch_done, &err) != NF_OK) {
            if (err.code != NF_ERR_NUMERIC)
                return cli_fail(&err);
            int kept = r->o.checkpoint && access(r->o.checkpoint, F_OK) == 0;
            fprintf(stderr, "nodeflow: epoch %lld, %s%s%s\n", (long long)r->t.progress.epoch + 1, err.message,
                    kept ? "; the last checkpoint is kept: " : "", kept ? r->o.checkpoint : "");
            return EXIT_RUNTIME;
        }
        if (epoch_done)
            break;
        r->t.progress.step++;
        if (r->t.average && nf_average_update(r->t.average, &err) != NF_OK)
            return cli_fail(&err);
        show_progress(&view, r->t.progress.epoch + 1, r->o.epochs, &fit);
        if (r->o.checkpoint_every > 0 && r->t.progress.step % r->o.checkpoint_every == 0 &&
            save_checkpoint(r, r->o.checkpoint) != EXIT_OK)
            return EXIT_RUNTIME;
        if (interrupted) {
            char buf[4096];
            const char *path = interrupt_path(r, buf, sizeof buf);
            if (view.tty && !view.quiet)
                fprintf(stderr, "\n");
            if (save_checkpoint(r, path) != EXIT_OK)
                return EXIT_RUNTIME;
            fprintf(stderr, "nodeflow: interrupted after %lld batches; checkpoint written to %s (continue with --resume %s)\n",
                    (long long)r->t.progress.step, path, path);
            return EXIT_RUNTIME;
        }
    }
    if (view.tty && !view.quiet)
        fprintf(stderr, "\r%*s\r", 110, "");
    return end_epoch(r, &fit, cli_now() - view.start);
}

int cmd_train(int argc, char **argv)
{
    run r;
    memset(&r, 0, sizeof r);
    int rc = parse_options(argc, argv, &r.o);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    rc = set_up(&r);
    if (rc == EXIT_OK && !r.o.quiet) {
        double lr = nf_optimizer_lr(r.t.opt);
        printf("training %s: %s lr %g, batch %lld, %lld epochs, seed %lld, %d threads, %lld samples%s\n", r.o.model,
               r.o.optimizer, lr, r.o.batch, r.o.epochs, r.o.seed, nf_threads(), (long long)r.train->count,
               r.o.resume ? " (resumed)" : "");
    }
    if (rc == EXIT_OK && r.t.schedule)
        nf_optimizer_set_lr(r.t.opt, nf_schedule_lr(r.t.schedule));
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    while (rc == EXIT_OK && r.t.progress.epoch < r.o.epochs && !r.stop &&
           !(r.o.steps > 0 && r.t.progress.step >= r.o.steps))
        rc = train_epoch(&r);
    nf_error err;
    if (rc == EXIT_OK && r.o.save_average && r.t.average && nf_average_swap(r.t.average, &err) != NF_OK)
        rc = cli_fail(&err);
    if (rc == EXIT_OK && r.o.out && nf_weights_save(r.g, r.o.out, &err) != NF_OK)
        rc = cli_fail(&err);
    if (rc == EXIT_OK && r.o.out && !r.o.quiet)
        printf("weights written to %s\n", r.o.out);
    run_free(&r);
    return rc;
}
