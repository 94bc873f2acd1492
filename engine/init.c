/* nodeflow — parameter initialisation, following torch.nn.init. */
#include <math.h>

#include "engine/internal.h"

const char *const nf_init_names[] = {
    "default", "xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal",
    "zeros", "constant", "normal", "sinusoidal", NULL,
};

static void fill_uniform(float *data, int64_t n, double bound, nf_rng *rng)
{
    for (int64_t i = 0; i < n; i++)
        data[i] = (float)((2.0 * nf_rng_uniform(rng) - 1.0) * bound);
}

static void fill_normal(float *data, int64_t n, double std, nf_rng *rng)
{
    for (int64_t i = 0; i < n; i++)
        data[i] = (float)(nf_rng_normal(rng) * std);
}

static void fill_constant(float *data, int64_t n, double value)
{
    for (int64_t i = 0; i < n; i++)
        data[i] = (float)value;
}

/* Vaswani et al. (2017), 3.5: row pos of a [positions, d] table is
 * sin(pos / 10000^(2i/d)) at feature 2i and cos(...) at 2i + 1. A tensor
 * of another rank is read as rows of its last axis. */
static void fill_sinusoidal(float *data, const nf_param *p)
{
    int64_t d = p->shape.rank > 0 ? p->shape.dim[p->shape.rank - 1] : 1, rows = p->size / d;
    for (int64_t pos = 0; pos < rows; pos++)
        for (int64_t j = 0; j < d; j++) {
            double angle = (double)pos / pow(10000.0, (double)(j / 2 * 2) / (double)d);
            data[pos * d + j] = (float)(j % 2 == 0 ? sin(angle) : cos(angle));
        }
}

void nf_param_init(float *data, const nf_param *p, nf_rng *rng)
{
    const nf_param_spec *s = &p->spec;
    double fan_in = s->fan_in > 0 ? (double)s->fan_in : 1.0;
    double fan_out = s->fan_out > 0 ? (double)s->fan_out : 1.0;
    switch (s->init) {
    case NF_INIT_TORCH_DEFAULT:
        /* kaiming_uniform(a = sqrt(5)): gain sqrt(2 / (1 + a^2)), bound
         * gain * sqrt(3 / fan_in) = 1 / sqrt(fan_in); PyTorch's Linear
         * bias uses the same bound. */
        fill_uniform(data, p->size, 1.0 / sqrt(fan_in), rng);
        break;
    case NF_INIT_XAVIER_UNIFORM: /* bound sqrt(6 / (fan_in + fan_out)) */
        fill_uniform(data, p->size, sqrt(6.0 / (fan_in + fan_out)), rng);
        break;
    case NF_INIT_XAVIER_NORMAL: /* std sqrt(2 / (fan_in + fan_out)) */
        fill_normal(data, p->size, sqrt(2.0 / (fan_in + fan_out)), rng);
        break;
    case NF_INIT_KAIMING_UNIFORM: /* gain sqrt(2): bound sqrt(6 / fan_in) */
        fill_uniform(data, p->size, sqrt(6.0 / fan_in), rng);
        break;
    case NF_INIT_KAIMING_NORMAL: /* std sqrt(2 / fan_in) */
        fill_normal(data, p->size, sqrt(2.0 / fan_in), rng);
        break;
    case NF_INIT_ZEROS:
        fill_constant(data, p->size, 0.0);
        break;
    case NF_INIT_CONSTANT:
        fill_constant(data, p->size, s->init_value);
        break;
    case NF_INIT_NORMAL: /* N(0, value^2), value 0 meaning 1 (PyTorch's Embedding) */
        fill_normal(data, p->size, s->init_value > 0 ? s->init_value : 1.0, rng);
        break;
    case NF_INIT_SINUSOIDAL:
        fill_sinusoidal(data, p);
        break;
    }
}
