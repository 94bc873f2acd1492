/* nodeflow — a sequence model's window, and sampling from scores. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "engine/internal.h"
#include "engine/rng.h"

nf_status nf_graph_set_window(nf_graph *g, int64_t steps, nf_error *err)
{
    if (!g)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_graph_set_window: NULL graph");
    if (steps < 1 || steps > (1 << 24))
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "a window of %lld steps is not in 1 .. 2^24", (long long)steps);
    for (int i = 0; i < g->n_nodes; i++) {
        nf_node *node = g->nodes[i];
        nf_status st = NF_OK;
        if ((node->op->flags & NF_OP_INPUT) && node->dims.rank >= 1) {
            char dims[32 * NF_MAX_RANK] = "", *at = dims;
            for (int d = 0; d < node->dims.rank; d++)
                at += snprintf(at, sizeof dims - (size_t)(at - dims), "%s%lld", d ? "x" : "",
                               (long long)(d ? node->dims.dim[d] : steps));
            st = nf_node_set_attr(g, node, "shape", dims);
        } else if (node->op->flags & NF_OP_CARRY_OPTION) {
            st = nf_node_set_attr(g, node, "carry", "true");
        }
        if (st != NF_OK)
            return nf_graph_status(g, err);
    }
    return nf_graph_validate(g, err);
}

int64_t nf_sample(const float *scores, int64_t n, double temperature, uint64_t *rng)
{
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (scores[i] > scores[best])
            best = i;
    if (temperature <= 0 || n < 2)
        return best;
    /* p_i = exp((s_i - s_max) / T) / sum: the largest term is 1 */
    double total = 0;
    for (int64_t i = 0; i < n; i++)
        total += exp(((double)scores[i] - scores[best]) / temperature);
    nf_rng r;
    nf_rng_seed(&r, *rng);
    *rng = nf_rng_next(&r);
    double u = nf_rng_uniform(&r) * total;
    for (int64_t i = 0; i < n; i++) {
        u -= exp(((double)scores[i] - scores[best]) / temperature);
        if (u < 0)
            return i;
    }
    return best;
}
