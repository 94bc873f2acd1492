/* nodeflow — gradient clipping, with the semantics of PyTorch's
 * torch.nn.utils.clip_grad_norm_ and clip_grad_value_:
 *
 *   norm = sqrt(sum of g^2 over every parameter gradient)
 *   if max_norm / (norm + 1e-6) < 1: g *= max_norm / (norm + 1e-6)
 */
#include <math.h>

#include "optim/optimizer.h"

double nf_clip_grad_norm(nf_graph *g, double max_norm)
{
    double sum = 0.0;
    for (int k = 0; k < g->n_params; k++) {
        if (g->params[k].spec.buffer)
            continue;
        const float *grad = g->grads + g->params[k].offset;
        for (int64_t i = 0; i < g->params[k].size; i++)
            sum += (double)grad[i] * grad[i];
    }
    double norm = sqrt(sum), coef = max_norm / (norm + 1e-6);
    if (coef < 1.0)
        for (int k = 0; k < g->n_params; k++) { /* buffers' gradients are 0 */
            float *grad = g->grads + g->params[k].offset;
            for (int64_t i = 0; i < g->params[k].size; i++)
                grad[i] = (float)(grad[i] * coef);
        }
    return norm;
}

void nf_clip_grad_value(nf_graph *g, double limit)
{
    float hi = (float)limit, lo = -hi;
    for (int k = 0; k < g->n_params; k++) {
        float *grad = g->grads + g->params[k].offset;
        for (int64_t i = 0; i < g->params[k].size; i++)
            grad[i] = grad[i] > hi ? hi : grad[i] < lo ? lo : grad[i];
    }
}
