/* nodeflow — weights and checkpoints in the safetensors format.
 *
 * Tensor names are "<node>.<param>" ("fc1.weight") and layouts are
 * PyTorch's (Linear weight [out, in]), so weights move between PyTorch and
 * nodeflow unchanged (tools/torch_to_safetensors.py exports a state_dict).
 * Every save goes to a temporary file in the same directory, is flushed,
 * synced and renamed into place: a crash or a full disk never leaves a
 * truncated file under the final name. */
#ifndef NODEFLOW_WEIGHTS_H
#define NODEFLOW_WEIGHTS_H

#include "export.h"

#include <stdint.h>

#include "data.h"
#include "graph.h"
#include "optim.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Saves every parameter of a validated graph. */
NF_API nf_status nf_weights_save(const nf_graph *g, const char *path, nf_error *err);

enum nf_weights_flags {
    NF_WEIGHTS_STRICT = 0,
    NF_WEIGHTS_ALLOW_EXTRA = 1u << 0,     /* ignore tensors the graph does not have */
    NF_WEIGHTS_ALLOW_NONFINITE = 1u << 1  /* load NaN and infinite values (refused otherwise) */
};

/* Loads parameters by name into a graph (validated here if needed). The
 * file is checked completely before anything is copied: on any error
 * (truncated file, bad header, unknown dtype, bad offsets, a missing or an
 * extra tensor, a shape mismatch naming both shapes, a value that is not a
 * finite float32) the graph keeps its values. */
NF_API nf_status nf_weights_load(nf_graph *g, const char *path, unsigned flags, nf_error *err);

/* What nf_weights_init did: parameters loaded from the file, parameters
 * left at their initialisation (not in the file, or in it with another
 * shape), and tensors of the file it skipped (no such parameter, or
 * another shape). The two lists name those not loaded, "name [shape]"
 * joined by ", " (cut with "..." when longer than the buffer). */
typedef struct nf_init_report {
    int loaded, left, skipped;
    char left_names[512];
    char skipped_names[512];
} nf_init_report;

/* Fine-tuning and transfer learning: every parameter of a validated graph
 * whose name and shape match a tensor of the file takes its values; the
 * others keep theirs. The file is checked whole first (format, finite
 * values of what is loaded): on an error nothing changes. */
NF_API nf_status nf_weights_init(nf_graph *g, const char *path, nf_init_report *report, nf_error *err);

/* Where training stands, kept in a checkpoint besides the weights. */
typedef struct nf_progress {
    int64_t epoch;     /* epochs completed */
    int64_t step;      /* optimizer steps taken in all */
} nf_progress;

/* What a training run carries besides the weights. */
typedef struct nf_training {
    nf_optimizer *opt;        /* required */
    nf_batcher *batches;      /* required */
    nf_schedule *schedule;    /* or NULL */
    nf_average *average;      /* or NULL */
    nf_progress progress;
} nf_training;

/* A checkpoint: the parameters, the optimizer's state, hyper-parameters
 * and gradients accumulated so far, the batcher's shuffle state and
 * position, the schedule's position (and plateau state), the averaged
 * weights, and `progress`. Resuming from it continues training exactly as
 * if it had not stopped (the same losses, bit for bit, at the same thread
 * count). */
NF_API nf_status nf_checkpoint_save(const char *path, const nf_graph *g, const nf_training *t, nf_error *err);
/* Restores all of that into objects built the same way (same graph, same
 * optimizer type, a batcher over the same dataset and batch size, a
 * schedule and averager of the same kinds, or none if none were saved). */
NF_API nf_status nf_checkpoint_load(const char *path, nf_graph *g, nf_training *t, nf_error *err);

#ifdef __cplusplus
}
#endif
#endif
