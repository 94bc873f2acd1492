/* nodeflow train: trains a model file on a dataset, with validation,
 * progress, a CSV log, checkpoints, resuming and clean interruption. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

static const char train_intro[] =
    "usage: nodeflow train MODEL.nfg --data SPEC [options]\n\n"
    "Trains the model's parameters. Settings come from the model's [train]\n"
    "section; --set KEY=VALUE overrides the file, and an option overrides both.\n"
    "  --data SPEC             training data (required), e.g. fashion-mnist:train\n"
    "  --val SPEC              validation data, evaluated after every epoch\n";

static const char train_outro[] =
    "  --set KEY=VALUE         any setting above by its [train] key (lr=0.1, batch=64), an\n"
    "                          optimizer's (momentum=0.9, lr_mult.fc1=0.1, decay_1d=0,\n"
    "                          accumulate=4) or a schedule's (schedule.gamma=0.5)\n"
    "  --accumulate K          sum the gradients of K batches per step (= --set accumulate=K)\n"
    "  --threads N             threads for OpenMP and OpenBLAS together (default: all cores)\n"
    "  --out FILE              write the trained weights (safetensors)\n"
    "  --save-average          write the averaged weights to --out instead\n"
    "  --checkpoint FILE       write a checkpoint after every epoch (and on interrupt)\n"
    "  --resume FILE           continue from a checkpoint exactly where it stopped; optimizer\n"
    "                          settings given here replace the checkpoint's, with a notice\n"
    "  --init FILE             start from these weights (fine-tuning): each parameter whose\n"
    "                          name and shape match takes them, the others keep their\n"
    "                          initialisation; a line says what was loaded, left and skipped\n"
    "  --freeze NODE,...       keep these nodes' parameters fixed (= --set lr_mult.NODE=0)\n"
    "  --log FILE              a CSV line per epoch: losses, the task's metrics, learning rate, seconds\n"
    "  --json                  each epoch's line as JSON: loss and the task's metrics, train and val\n"
    "  --quiet                 print nothing but errors and notices\n"
    "  --folds K               K-fold cross-validation instead: each fold trained from the same\n"
    "                          initialisation on the others and validated on itself; per fold and\n"
    "                          mean +- sd of every validation metric at each fold's best epoch\n"
    "                          (under mpirun the folds are shared out among the processes)\n"
    "  --stratified            with --folds: every fold holds its share of every class\n"
    "  --samples N             with --folds: the first N samples of --data only\n\n"
    "Metrics follow the task: class-index labels give accuracy, top-5 accuracy\n"
    "(more than 5 classes) and macro F1; 0/1 targets with one score each give\n"
    "per-label and subset accuracy and micro F1; other targets give MSE, MAE\n"
    "and R^2 (with --json also per output).\n\n"
    "SIGINT or SIGTERM stop after the current batch and write a checkpoint (one\n"
    "that comes during the set-up stops after the first batch).\n\n"
    "Under mpirun -np N (a build with MPI) N processes train one model together:\n"
    "batch is per process, gradients are summed before every step, rank 0 alone\n"
    "prints and writes; one thread per process unless --threads (docs/distributed.md).\n"
    "--comm-timeout S (default 600, 0: none) ends the job when a process does not\n"
    "answer for S seconds (one stopped, hung or on a dead node).\n\n"
    "text data is cut into windows of the model's input length. A model that\n"
    "carries state (lstm or gru with carry=true, --unroll) reads one stream per\n"
    "batch row in order, so that the state follows the text; any other model (a\n"
    "transformer) gets the windows as samples, shuffled. The vocabulary is saved\n"
    "with the weights (for nodeflow generate).\n";

static void print_help(void)
{
    nf_error err;
    char *options = NULL;
    fputs(train_intro, stdout);
    if (nf_train_settings_reference(0, &options, &err) == NF_OK)
        fputs(options, stdout);
    free(options);
    fputs(train_outro, stdout);
    cli_print_specs(stdout);
}

typedef struct train_options {
    const char *model, *data, *val, *out, *checkpoint, *resume, *log, *init;
    long long threads;
    double comm_timeout;     /* --comm-timeout; < 0: the default */
    int quiet, save_average, json;
    long long folds, samples; /* --folds K (cross-validation), --samples N */
    int stratified;
    nf_train_config given;   /* settings from options and --set: over the file's */
    nf_train_config set;     /* --set alone: over the file's, under the options */
} train_options;

static volatile sig_atomic_t interrupted;
static nf_session *volatile running;

/* SIGINT and SIGTERM are taken by a thread of our own (sigwait), never by
 * a handler: every other thread, OpenMP's and the libraries' included,
 * starts with them blocked. A handler may run on any thread, and one run
 * on a thread inside oneDNN's products corrupted the heap now and then (3
 * of 50 interruptions at 2 threads, none at 1). */
static void *watch_signals(void *set)
{
    int sig;
    while (sigwait(set, &sig) == 0) {
        interrupted = 1;
        if (running)
            nf_session_stop(running);
    }
    return NULL;
}

/* Before any other thread exists: they inherit the blocked signals. */
static void watch_for_stop(void)
{
    static sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_t watcher;
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) == 0 && pthread_create(&watcher, NULL, watch_signals, &set) == 0)
        pthread_detach(watcher);
}

static const char *const path_flags[] = {"--data", "--val", "--out", "--checkpoint", "--resume", "--log", "--init", NULL};

/* The settings table's option for `flag`, or NULL. */
static const nf_train_setting *setting_of(const char *flag)
{
    for (int i = 0; i < nf_train_setting_count(); i++)
        if (nf_train_setting_at(i)->flag && !strcmp(nf_train_setting_at(i)->flag, flag))
            return nf_train_setting_at(i);
    return NULL;
}

static int takes_value(const char *name)
{
    const nf_train_setting *s = setting_of(name);
    if (s)
        return s->type != NF_SETTING_BOOL;
    for (int i = 0; path_flags[i]; i++)
        if (!strcmp(name, path_flags[i]))
            return 1;
    return !strcmp(name, "--set") || !strcmp(name, "--threads") || !strcmp(name, "--accumulate") ||
           !strcmp(name, "--freeze") || !strcmp(name, "--comm-timeout") || !strcmp(name, "--folds") ||
           !strcmp(name, "--samples");
}

static int set_value(nf_train_config *c, const char *key, const char *value)
{
    nf_error err;
    if (nf_train_config_set(c, key, value, &err) != NF_OK)
        return cli_usage("train", "%s", err.message);
    return EXIT_OK;
}

/* --freeze a,b: each node's parameters get a learning-rate multiplier of
 * 0 (the optimizer checks that the node exists and has parameters). */
static int freeze(train_options *o, const char *list)
{
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, ",");
        char key[96];
        if (n == 0 || n + 8 >= sizeof key)
            return cli_usage("train", "--freeze takes node names joined by ',', not '%s'", list);
        snprintf(key, sizeof key, "lr_mult.%.*s", (int)n, p);
        int rc = set_value(&o->given, key, "0");
        if (rc != EXIT_OK)
            return rc;
        p += n + (p[n] == ',');
    }
    return EXIT_OK;
}

static int parse_option(train_options *o, const char *flag, const char *v)
{
    const char **slot[] = {&o->data, &o->val, &o->out, &o->checkpoint, &o->resume, &o->log, &o->init};
    for (int i = 0; path_flags[i]; i++)
        if (!strcmp(flag, path_flags[i])) {
            if (!v || !*v)
                return cli_usage("train", "%s needs a value", flag);
            *slot[i] = v;
            return EXIT_OK;
        }
    const nf_train_setting *s = setting_of(flag);
    if (s && s->type == NF_SETTING_BOOL)
        return v ? cli_usage("train", "%s takes no value", flag) : set_value(&o->given, s->key, "true");
    if (s)
        return v ? set_value(&o->given, s->key, v) : cli_usage("train", "%s needs a value", flag);
    if (!strcmp(flag, "--freeze"))
        return v && *v ? freeze(o, v) : cli_usage("train", "--freeze needs NODE[,NODE...]");
    if (!strcmp(flag, "--accumulate"))
        return v ? set_value(&o->given, "accumulate", v) : cli_usage("train", "%s needs a value", flag);
    if (!strcmp(flag, "--set")) {
        const char *eq = v ? strchr(v, '=') : NULL;
        char key[64];
        if (!eq || eq == v || (size_t)(eq - v) >= sizeof key)
            return cli_usage("train", "--set takes KEY=VALUE, not '%s'", v ? v : "(none)");
        snprintf(key, sizeof key, "%.*s", (int)(eq - v), v);
        return set_value(&o->set, key, eq + 1);
    }
    if (!strcmp(flag, "--threads") && cli_parse_int(v, 1, 1024, &o->threads))
        return EXIT_OK;
    if (!strcmp(flag, "--folds") && cli_parse_int(v, 2, 1000, &o->folds))
        return EXIT_OK;
    if (!strcmp(flag, "--samples") && cli_parse_int(v, 1, INT64_MAX, &o->samples))
        return EXIT_OK;
    if (!strcmp(flag, "--stratified") && !v) {
        o->stratified = 1;
        return EXIT_OK;
    }
    if (!strcmp(flag, "--comm-timeout") && cli_parse_double(v, &o->comm_timeout) && o->comm_timeout >= 0)
        return EXIT_OK;
    if (!strcmp(flag, "--save-average") && !v) {
        o->save_average = 1;
        return EXIT_OK;
    }
    if (!strcmp(flag, "--quiet") && !v) {
        o->quiet = 1;
        return EXIT_OK;
    }
    if (!strcmp(flag, "--json") && !v) {
        o->json = 1;
        return EXIT_OK;
    }
    if (takes_value(flag) || !strcmp(flag, "--quiet") || !strcmp(flag, "--save-average") || !strcmp(flag, "--json"))
        return cli_usage("train", "bad value for %s: '%s'", flag, v ? v : "(none)");
    return cli_usage("train", "unknown option '%s'", flag);
}

static int parse_options(int argc, char **argv, train_options *o)
{
    memset(o, 0, sizeof *o);
    o->threads = -1;
    o->comm_timeout = -1;
    nf_train_config_init(&o->given);
    nf_train_config_init(&o->set);
    cli_args a = {argc, argv, 1, "train"};
    const char *flag, *value;
    while (cli_next(&a, &flag, &value, takes_value)) {
        if (flag && !strcmp(flag, "--help")) {
            print_help();
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
    /* one precedence for every setting: options over --set over the file */
    nf_train_config options = o->given;
    nf_error err;
    o->given = o->set;
    if (nf_train_config_merge(&o->given, &options, &err) != NF_OK)
        return cli_usage("train", "%s", err.message);
    if (!o->model)
        return cli_usage("train", "which model? 'nodeflow train MODEL.nfg --data SPEC'");
    if (!o->data)
        return cli_usage("train", "--data SPEC is required");
    if (o->given.checkpoint_every > 0 && !o->checkpoint)
        return cli_usage("train", "--checkpoint-every needs --checkpoint FILE");
    if (o->save_average && !o->out)
        return cli_usage("train", "--save-average needs --out FILE");
    if (o->init && o->resume)
        return cli_usage("train", "--init starts a new training and --resume continues one: give one of them");
    if ((o->stratified || o->samples) && !o->folds)
        return cli_usage("train", "--stratified and --samples go with --folds K");
    if (o->folds && (o->val || o->out || o->checkpoint || o->resume || o->init || o->log))
        return cli_usage("train", "--folds validates on each fold in turn: --val, --out, --checkpoint, --resume, "
                                  "--init and --log do not go with it");
    return EXIT_OK;
}

/* The log is appended to as the run goes (not saved whole at the end):
 * any file we may write, a FIFO or a terminal included, or a new file in
 * a directory we may write. */
static int check_log(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return cli_usage("train", "--log %s: is a directory", path);
        if (access(path, W_OK) != 0)
            return cli_usage("train", "--log %s: %s", path, strerror(errno));
        return EXIT_OK;
    }
    const char *slash = strrchr(path, '/');
    char dir[4096];
    snprintf(dir, sizeof dir, "%.*s", slash ? (slash == path ? 1 : (int)(slash - path)) : 1, slash ? path : ".");
    if (access(dir, W_OK | X_OK) != 0)
        return cli_usage("train", "--log %s: cannot create it in %s: %s", path, dir, strerror(errno));
    return EXIT_OK;
}

/* The files the run reads: the model and the data specs' files. */
static int reads_file(const train_options *o, const char *path)
{
    if (nf_paths_same_file(path, o->model))
        return 1;
    const char *specs[] = {o->data, o->val};
    for (int i = 0; i < 2; i++) {
        const char *colon = specs[i] ? strchr(specs[i], ':') : NULL;
        for (const char *p = colon ? colon + 1 : NULL; p && *p;) {
            size_t n = strcspn(p, ",");
            char piece[4096];
            snprintf(piece, sizeof piece, "%.*s", (int)n, p);
            if (!strchr(piece, '=') && access(piece, F_OK) == 0 && nf_paths_same_file(path, piece))
                return 1;
            p += n + (p[n] == ',');
        }
    }
    return 0;
}

/* Every file the run will write can be written; no two of them are the
 * same file, nor the weights and the checkpoint it resumes from, nor any
 * of them a file the run reads: checked before any training that a bad
 * path would waste. */
static int check_outputs(const train_options *o)
{
    const char *flags[] = {"--out", "--checkpoint", "--log"};
    const char *paths[] = {o->out, o->checkpoint, o->log};
    nf_error err;
    for (int i = 0; i < 3; i++) {
        if (paths[i] && i < 2 && nf_output_path_check(paths[i], &err) != NF_OK)
            return cli_usage("train", "%s %s", flags[i], err.message);
        if (paths[i] && i == 2 && check_log(paths[i]) != EXIT_OK)
            return EXIT_USAGE;
        if (paths[i] && reads_file(o, paths[i]))
            return cli_usage("train", "%s %s would overwrite a file the run reads", flags[i], paths[i]);
        for (int j = 0; j < i; j++)
            if (paths[i] && paths[j] && nf_paths_same_file(paths[i], paths[j]))
                return cli_usage("train", "%s and %s name the same file (%s); give each its own", flags[j], flags[i],
                                 paths[i]);
    }
    if (o->resume && o->out && nf_paths_same_file(o->resume, o->out))
        return cli_usage("train", "--out would overwrite the checkpoint given to --resume (%s)", o->out);
    if (o->resume && o->log && nf_paths_same_file(o->resume, o->log))
        return cli_usage("train", "--log would write into the checkpoint given to --resume (%s)", o->log);
    return EXIT_OK;
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
    nf_comm *comm;       /* the processes of an mpirun job (one: alone) */
    int collective_end;  /* every process ends the same way: none needs to be aborted */
    nf_graph *g;
    nf_session *session;
    FILE *log;
    int log_errno;       /* a write to the log failed: why (the run stops) */
    progress_view view;
} run;

/* Flushes the log and notes a failed write (errno's value). */
static int log_flushed(run *r)
{
    errno = 0;
    if (fflush(r->log) != 0 || ferror(r->log)) {
        r->log_errno = errno ? errno : EIO;
        return 0;
    }
    return 1;
}

static int log_failure(const run *r)
{
    fprintf(stderr, "nodeflow: %s: cannot write the log: %s\n", r->o.log, strerror(r->log_errno));
    return EXIT_RUNTIME;
}

static void run_free(run *r)
{
    if (r->log)
        fclose(r->log); /* checked where it mattered: log_flushed */
    running = NULL;
    nf_session_free(r->session);
    nf_graph_free(r->g);
    nf_comm_free(r->comm);
}

static int open_log(run *r)
{
    if (!r->o.log)
        return EXIT_OK;
    int fresh = !r->o.resume || access(r->o.log, F_OK) != 0;
    r->log = fopen(r->o.log, fresh ? "w" : "a");
    if (!r->log) {
        fprintf(stderr, "nodeflow: %s: cannot open the log for writing: %s\n", r->o.log, strerror(errno));
        return EXIT_USAGE;
    }
    if (fresh) {
        fprintf(r->log, "epoch,train_loss");
        cli_metrics_csv_header(r->log, "train");
        fprintf(r->log, ",val_loss");
        cli_metrics_csv_header(r->log, "val");
        fprintf(r->log, ",lr,seconds\n");
    }
    return log_flushed(r) ? EXIT_OK : log_failure(r);
}

static void on_batch(void *ctx, const nf_session_progress *p)
{
    run *r = ctx;
    if (p->batches == 1) { /* a new epoch */
        r->view.start = cli_now() - p->seconds;
        r->view.total = p->epoch_batches;
        r->view.shown_tenth = 0;
    }
    show_progress(&r->view, p->epoch, p->epochs, p->train);
}

static void on_epoch(void *ctx, const nf_session_progress *p)
{
    run *r = ctx;
    const nf_epoch_stats *fit = p->train, *val = p->val;
    if (r->view.tty && !r->o.quiet)
        fprintf(stderr, "\r%*s\r", 110, "");
    if (!r->o.quiet && r->o.json) {
        char n[32];
        printf("{\"epoch\": %lld, \"train\": {", (long long)p->epoch);
        cli_metrics_json(stdout, fit);
        printf(", \"skipped\": %lld}", (long long)fit->skipped);
        if (val) {
            printf(", \"val\": {");
            cli_metrics_json(stdout, val);
            printf("}");
        }
        printf(", \"lr\": %s", cli_json_number(n, sizeof n, p->lr));
        printf(", \"seconds\": %s}\n", cli_json_number(n, sizeof n, p->seconds));
        fflush(stdout);
    } else if (!r->o.quiet) {
        printf("epoch %lld/%lld  train loss %.4f", (long long)p->epoch, (long long)p->epochs, fit->loss);
        cli_metrics_text(stdout, fit);
        if (val) {
            printf("  val loss %.4f", val->loss);
            cli_metrics_text(stdout, val);
        }
        if (fit->skipped)
            printf("  (%lld non-finite batches skipped)", (long long)fit->skipped);
        printf("  %.1f s\n", p->seconds);
        fflush(stdout);
    }
    if (r->log) {
        fprintf(r->log, "%lld,%.6f", (long long)p->epoch, fit->loss);
        cli_metrics_csv(r->log, fit);
        if (val)
            fprintf(r->log, ",%.6f", val->loss);
        else
            fputc(',', r->log);
        cli_metrics_csv(r->log, val);
        fprintf(r->log, ",%.6g,%.3f\n", p->lr, p->seconds);
        if (!log_flushed(r))
            nf_session_stop(r->session); /* stopped() says why */
    }
}

/* Early stopping is part of the report; a setting that changes a resumed
 * run is a warning. */
static void on_notice(void *ctx, nf_notice kind, const char *message)
{
    run *r = ctx;
    if (kind != NF_NOTICE_EARLY_STOP)
        fprintf(stderr, "nodeflow: %s%s\n", cli_who, message);
    else if (!r->o.quiet)
        printf("%s\n", message);
}

static int set_up(run *r)
{
    nf_train_config config;
    int rc = cli_load_model(r->o.model, &r->g, &config);
    if (rc != EXIT_OK)
        return rc;
    nf_error err;
    if (nf_train_config_merge(&config, &r->o.given, &err) != NF_OK)
        return cli_usage("train", "%s", err.message);
    if (config.early_stop > 0 && !r->o.val)
        return cli_usage("train", "early stopping watches the validation loss: give --val SPEC");
    if (!strcmp(config.schedule, "plateau") && !r->o.val)
        return cli_usage("train", "the plateau schedule watches the validation loss: give --val SPEC");
    cli_set_threads(r->comm, r->o.threads);
    nf_session_events events = {r, on_batch, on_epoch, on_notice};
    if (nf_session_new(r->g, &config, &r->session, &err) != NF_OK ||
        nf_session_set_comm(r->session, r->comm, &err) != NF_OK)
        return cli_fail(&err);
    nf_session_set_events(r->session, &events);
    nf_init_report report;
    if (r->o.init && nf_session_init_weights(r->session, r->o.init, &report, &err) != NF_OK)
        return cli_fail(&err);
    if (r->o.init && !r->o.quiet) {
        printf("weights from %s: %d loaded", r->o.init, report.loaded);
        if (report.left)
            printf("; %d left at their initialisation (%s)", report.left, report.left_names);
        if (report.skipped)
            printf("; %d of the file's skipped (%s)", report.skipped, report.skipped_names);
        printf("\n");
    }
    if (nf_session_load_data(r->session, r->o.data, r->o.val, &err) != NF_OK ||
        (r->o.resume && nf_session_resume(r->session, r->o.resume, &r->o.given, &err) != NF_OK) ||
        nf_session_set_checkpoint(r->session, r->o.checkpoint, &err) != NF_OK)
        return cli_fail(&err);
    return open_log(r);
}

static const char *interrupt_path(const run *r, char *buf, size_t size)
{
    if (r->o.checkpoint)
        return r->o.checkpoint;
    snprintf(buf, size, "%s.ckpt", r->o.out ? r->o.out : "nodeflow-interrupted");
    return buf;
}

/* Writes a checkpoint to `path` and says how to continue from it. */
static int save_for_resume(const run *r, const char *how, const char *path)
{
    nf_error err;
    if (nf_session_save_checkpoint(r->session, path, &err) != NF_OK)
        return cli_fail(&err);
    fprintf(stderr, "nodeflow: %s after %lld batches; checkpoint written to %s (continue with --resume %s)\n", how,
            (long long)nf_session_training(r->session)->progress.step, path, path);
    return EXIT_RUNTIME;
}

/* The run stopped with an error: say what, and where to pick it up. */
static int stopped(run *r, const nf_error *failure)
{
    const nf_training *t = nf_session_training(r->session);
    if (r->view.tty && !r->o.quiet)
        fprintf(stderr, "\n");
    if (failure->code == NF_ERR_INTERRUPTED && r->log_errno && !interrupted) {
        /* the log failed: stop there, with a checkpoint only where one was asked for */
        log_failure(r);
        return r->o.checkpoint ? save_for_resume(r, "stopped", r->o.checkpoint) : EXIT_RUNTIME;
    }
    if (failure->code == NF_ERR_INTERRUPTED) {
        char buf[4096];
        if (nf_comm_size(r->comm) == 1)
            return save_for_resume(r, "interrupted", interrupt_path(r, buf, sizeof buf));
        /* every process stopped at the same batch: rank 0 writes, the others wait for it */
        int rc = nf_comm_rank(r->comm) == 0 ? save_for_resume(r, "interrupted", interrupt_path(r, buf, sizeof buf))
                                            : EXIT_RUNTIME;
        r->collective_end = 1;
        return nf_comm_barrier(r->comm) == NF_OK ? rc : EXIT_RUNTIME;
    }
    if (failure->code != NF_ERR_NUMERIC)
        return cli_fail(failure);
    int kept = r->o.checkpoint && access(r->o.checkpoint, F_OK) == 0;
    fprintf(stderr, "nodeflow: epoch %lld, %s%s%s\n", (long long)t->progress.epoch + 1, failure->message,
            kept ? "; the last checkpoint is kept: " : "", kept ? r->o.checkpoint : "");
    return EXIT_RUNTIME;
}

int cmd_train(int argc, char **argv)
{
    /* first, so that a signal during the set-up is not lost */
    watch_for_stop();
    run r;
    memset(&r, 0, sizeof r);
    int rc = parse_options(argc, argv, &r.o);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    if ((rc = check_outputs(&r.o)) != EXIT_OK)
        return rc;
    nf_error err;
    if ((rc = cli_join(&r.comm, r.o.comm_timeout)) != EXIT_OK)
        return rc;
    if (r.o.folds) {
        cli_set_threads(r.comm, r.o.threads);
        rc = cli_cross_validate(r.o.model, r.o.data, r.o.samples, (int)r.o.folds, r.o.stratified, &r.o.given, r.comm,
                                r.o.quiet || nf_comm_rank(r.comm) != 0, r.o.json);
        cli_end(r.comm, rc);
        nf_comm_free(r.comm);
        return rc;
    }
    if (nf_comm_rank(r.comm) != 0) { /* rank 0 alone reports and writes */
        r.o.quiet = 1;
        r.o.log = NULL;
        r.o.out = NULL;
        r.o.json = 0;
    }
    r.view = (progress_view){isatty(STDERR_FILENO), r.o.quiet, cli_now(), 0, 0, 0};
    rc = set_up(&r);
    if (rc == EXIT_OK && !r.o.quiet && nf_comm_size(r.comm) > 1)
        printf("%d processes (MPI), %d threads per process; batch %lld per process, %lld in all\n",
               nf_comm_size(r.comm), nf_threads(), (long long)nf_session_config(r.session)->batch,
               (long long)nf_session_config(r.session)->batch * nf_comm_size(r.comm));
    if (rc == EXIT_OK && !r.o.quiet) {
        const nf_train_config *c = nf_session_config(r.session);
        const nf_training *t = nf_session_training(r.session);
        printf("training %s: %s lr %g, batch %lld, %lld epochs, seed %lld, %d threads, %lld samples%s\n", r.o.model,
               c->optimizer, nf_optimizer_lr(t->opt), (long long)c->batch, (long long)c->epochs, (long long)c->seed,
               nf_threads(), (long long)nf_session_train_data(r.session)->count, r.o.resume ? " (resumed)" : "");
        fflush(stdout);
    }
    if (rc == EXIT_OK) {
        running = r.session;
        if (interrupted)
            nf_session_stop(r.session);
        if (nf_session_run(r.session, &err) != NF_OK)
            rc = stopped(&r, &err);
        running = NULL;
    }
    if (rc == EXIT_OK && r.o.out && nf_session_save_weights(r.session, r.o.out, r.o.save_average, &err) != NF_OK)
        rc = cli_fail(&err);
    if (rc == EXIT_OK && r.o.out && !r.o.quiet)
        printf("weights written to %s\n", r.o.out);
    if (rc == EXIT_OK && r.log_errno) /* the last epoch's line failed: the run ended anyway */
        rc = log_failure(&r);
    if (!r.collective_end)
        cli_end(r.comm, rc);
    run_free(&r);
    return rc;
}
