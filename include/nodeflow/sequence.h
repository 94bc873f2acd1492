/* nodeflow — running sequence models a window at a time, and sampling.
 *
 * A text model reads [T] token ids per sample. To generate text one token
 * at a time, set its window to 1: the state carried by recurrent layers
 * (lstm and gru with carry=true, memory nodes) is kept between runs of a
 * plan, and nf_plan_reset_state starts over. */
#ifndef NODEFLOW_SEQUENCE_H
#define NODEFLOW_SEQUENCE_H

#include "export.h"

#include <stdint.h>
#include "graph.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Sets the first (time) axis of every input with at least one axis to
 * `steps`, and turns on carry=true in every lstm and gru, so that each run
 * continues the sequence where the last one stopped. Parameters keep
 * their values; the graph is validated again. */
NF_API nf_status nf_graph_set_window(nf_graph *g, int64_t steps, nf_error *err);

/* Draws an index from softmax(scores / temperature) over n scores
 * (temperature 0: the arg-max), with the generator state *rng (any seed
 * value; advanced by the call). */
NF_API int64_t nf_sample(const float *scores, int64_t n, double temperature, uint64_t *rng);

#ifdef __cplusplus
}
#endif
#endif
