/* nodeflow — training checkpoints: every component of a run (the graph,
 * the optimizer, the batcher, the schedule, the average) writes its own
 * state into one record, which io/ stores as a file. Resuming reads the
 * record, lets every component check its part, and only then restores
 * them all, so that a bad checkpoint changes nothing. */
#include <stdio.h>
#include <string.h>

#include "data/data_internal.h"
#include "io/checkpoint_file.h"
#include "optim/optimizer.h"
#include "train/train_internal.h"

nf_status nf_training_save_state(const nf_graph *g, const nf_training *t, nf_record *r, nf_error *err)
{
    nf_status st = nf_graph_save_state(g, r, err);
    if (st == NF_OK)
        st = nf_optimizer_save_state(t->opt, r, err);
    if (st == NF_OK)
        st = nf_batcher_save_state(t->batches, r, err);
    if (st == NF_OK)
        st = nf_schedule_save_state(t->schedule, r, err);
    if (st == NF_OK)
        st = nf_average_save_state(t->average, r, err);
    nf_record_put_int(r, "epoch", t->progress.epoch);
    nf_record_put_int(r, "step", t->progress.step);
    if (st == NF_OK && nf_record_failed(r))
        st = nf_fail(err, NF_ERR_NO_MEMORY, "out of memory writing a checkpoint");
    return st;
}

nf_status nf_training_load_state(nf_graph *g, nf_training *t, const nf_record *r, int apply, nf_error *err)
{
    nf_progress progress;
    nf_status st = nf_optimizer_load_state(t->opt, r, apply, err);
    if (st == NF_OK)
        st = nf_record_int(r, "epoch", 0, NF_MAX_COUNT, &progress.epoch, err);
    if (st == NF_OK)
        st = nf_record_int(r, "step", 0, NF_MAX_COUNT, &progress.step, err);
    if (st == NF_OK)
        st = nf_batcher_load_state(t->batches, r, apply, err);
    if (st == NF_OK)
        st = nf_schedule_load_state(t->schedule, r, apply, err);
    if (st == NF_OK)
        st = nf_average_load_state(t->average, r, apply, err);
    if (st == NF_OK)
        st = nf_graph_load_state(g, r, apply, err);
    if (st == NF_OK && apply)
        t->progress = progress;
    return st;
}

nf_status nf_training_check(const nf_graph *g, const nf_training *t, const char *what, nf_error *err)
{
    if (!g || !t || !t->opt || !t->batches)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "%s: NULL argument", what);
    if (!nf_optimizer_belongs_to(t->opt, g))
        return nf_fail(err, NF_ERR_STATE, "the optimizer does not belong to this graph as it is now");
    return NF_OK;
}

/* Adds the checkpoint's path in front of a component's message. */
nf_status nf_fail_in(const char *path, nf_status st, nf_error *err)
{
    if (st != NF_OK && err) {
        char message[sizeof err->message];
        snprintf(message, sizeof message, "%s", err->message);
        if (strncmp(message, path, strlen(path)) != 0)
            nf_fail(err, st, "%s: %s", path, message);
    }
    return st;
}

nf_status nf_checkpoint_save(const char *path, const nf_graph *g, const nf_training *t, nf_error *err)
{
    nf_status st = path ? nf_training_check(g, t, "nf_checkpoint_save", err)
                        : nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_checkpoint_save: NULL argument");
    if (st != NF_OK)
        return st;
    nf_record *r = nf_record_new();
    if (!r)
        return nf_fail(err, NF_ERR_NO_MEMORY, "out of memory writing a checkpoint");
    st = nf_training_save_state(g, t, r, err);
    if (st == NF_OK)
        st = nf_checkpoint_write(path, g, r, err);
    nf_record_free(r);
    return st;
}

nf_status nf_training_resume(const char *path, nf_graph *g, nf_training *t, nf_record_loader extra, void *ctx,
                             nf_error *err)
{
    nf_status st = path ? nf_training_check(g, t, "resuming", err)
                        : nf_fail(err, NF_ERR_INVALID_ARGUMENT, "resuming: no checkpoint path");
    nf_record *r = NULL;
    if (st == NF_OK)
        st = nf_checkpoint_read(path, g, &r, err);
    if (st == NF_OK)
        st = nf_training_load_state(g, t, r, 0, err);
    if (st == NF_OK && extra)
        st = extra(ctx, r, 0, err);
    if (st == NF_OK) { /* everything checked: restoring cannot fail */
        nf_training_load_state(g, t, r, 1, NULL);
        if (extra)
            extra(ctx, r, 1, NULL);
    }
    nf_record_free(r);
    return nf_fail_in(path, st, err);
}

nf_status nf_checkpoint_load(const char *path, nf_graph *g, nf_training *t, nf_error *err)
{
    return nf_training_resume(path, g, t, NULL, NULL, err);
}
