/* nodeflow — the pointwise math of recurrent cells, one batch row of one
 * time step. The fast variant uses fastmath.h's polynomial exp and tanh
 * (a few ulps, and loops that vectorize); the reference computes the same
 * formulas in double with libm. */
#include <math.h>

#include "kernels/fastmath.h"
#include "kernels/variants.h"

/* One row of an LSTM step: gate pre-activations in, activations out (in
 * place), the cell state and the output. (Separate restrict pointers, so
 * that the loop vectorizes.) */
void nf_fast_lstm_cell(int64_t h, float *restrict ai, float *restrict af, float *restrict ag, float *restrict ao,
                      const float *restrict cp, float *restrict c, float *restrict y)
{
    for (int64_t j = 0; j < h; j++) {
        float i = nf_fast_sigmoid(ai[j]), f = nf_fast_sigmoid(af[j]), g = nf_fast_tanh(ag[j]), o = nf_fast_sigmoid(ao[j]);
        ai[j] = i, af[j] = f, ag[j] = g, ao[j] = o;
        c[j] = f * cp[j] + i * g;
        y[j] = o * nf_fast_tanh(c[j]);
    }
}

/* One row of an LSTM step backward: gate activations in, gate gradients
 * out (in place); dh_next in, dc_next in and out. */
void nf_fast_lstm_cell_backward(int64_t h, float *restrict ai, float *restrict af, float *restrict ag,
                               float *restrict ao, const float *restrict c, const float *restrict cp,
                               const float *restrict dy, const float *restrict dhn, float *restrict dcn)
{
    for (int64_t j = 0; j < h; j++) {
        float i = ai[j], f = af[j], g = ag[j], o = ao[j];
        float tc = nf_fast_tanh(c[j]), dh = dy[j] + dhn[j];
        float dc = dh * o * (1.0f - tc * tc) + dcn[j];
        ai[j] = dc * g * i * (1.0f - i);
        af[j] = dc * cp[j] * f * (1.0f - f);
        ag[j] = dc * i * (1.0f - g * g);
        ao[j] = dh * tc * o * (1.0f - o);
        dcn[j] = dc * f;
    }
}

/* One row of an LSTM step with peepholes p = (p_i, p_f, p_o) [3 h]
 * (Gers and Schmidhuber; ONNX's P): i = s(ai + p_i cp),
 * f = s(af + p_f cp), g = tanh(ag), c = f cp + i g, o = s(ao + p_o c),
 * y = o tanh(c). */
void nf_fast_lstm_peephole_cell(int64_t h, float *restrict ai, float *restrict af, float *restrict ag,
                                float *restrict ao, const float *restrict p, const float *restrict cp,
                                float *restrict c, float *restrict y)
{
    for (int64_t j = 0; j < h; j++) {
        float i = nf_fast_sigmoid(ai[j] + p[j] * cp[j]), f = nf_fast_sigmoid(af[j] + p[h + j] * cp[j]);
        float g = nf_fast_tanh(ag[j]), cj = f * cp[j] + i * g, o = nf_fast_sigmoid(ao[j] + p[2 * h + j] * cj);
        ai[j] = i, af[j] = f, ag[j] = g, ao[j] = o;
        c[j] = cj;
        y[j] = o * nf_fast_tanh(cj);
    }
}

/* Its backward: dh = dy + dhn, dA_o = dh tanh(c) o(1-o),
 * dc = dh o (1 - tanh^2 c) + dcn + dA_o p_o, then dA_i, dA_f, dA_g as
 * without peepholes; dcn becomes dc f + dA_i p_i + dA_f p_f. */
void nf_fast_lstm_peephole_cell_backward(int64_t h, float *restrict ai, float *restrict af, float *restrict ag,
                                         float *restrict ao, const float *restrict p, const float *restrict c,
                                         const float *restrict cp, const float *restrict dy,
                                         const float *restrict dhn, float *restrict dcn)
{
    for (int64_t j = 0; j < h; j++) {
        float i = ai[j], f = af[j], g = ag[j], o = ao[j];
        float tc = nf_fast_tanh(c[j]), dh = dy[j] + dhn[j], dao = dh * tc * o * (1.0f - o);
        float dc = dh * o * (1.0f - tc * tc) + dcn[j] + dao * p[2 * h + j];
        float dai = dc * g * i * (1.0f - i), daf = dc * cp[j] * f * (1.0f - f);
        ai[j] = dai, af[j] = daf;
        ag[j] = dc * i * (1.0f - g * g);
        ao[j] = dao;
        dcn[j] = dc * f + dai * p[j] + daf * p[h + j];
    }
}

/* One row of a GRU step: r, z, n from the input part (ax, in place) and
 * the hidden part (ah); keeps a_hn; the output. */
void nf_fast_gru_cell(int64_t h, float *restrict xr, float *restrict xz, float *restrict xn, const float *restrict hr,
                     const float *restrict hz, const float *restrict hn_in, float *restrict hn,
                     const float *restrict hp, float *restrict y)
{
    for (int64_t j = 0; j < h; j++) {
        float rg = nf_fast_sigmoid(xr[j] + hr[j]), z = nf_fast_sigmoid(xz[j] + hz[j]);
        float n = nf_fast_tanh(xn[j] + rg * hn_in[j]);
        xr[j] = rg, xz[j] = z, xn[j] = n;
        hn[j] = hn_in[j];
        y[j] = (1.0f - z) * n + z * hp[j];
    }
}

/* One row of a GRU step backward: activations in, input-part gradients
 * out (in place), hidden-part gradients to gr, gz, gn; dh_next in and out
 * (its direct part, dh z). */
void nf_fast_gru_cell_backward(int64_t h, float *restrict ar, float *restrict az, float *restrict an,
                              float *restrict gr, float *restrict gz, float *restrict gn, const float *restrict hn,
                              const float *restrict hp, const float *restrict dy, float *restrict dhn)
{
    for (int64_t j = 0; j < h; j++) {
        float rg = ar[j], z = az[j], n = an[j], dh = dy[j] + dhn[j];
        float dan = dh * (1.0f - z) * (1.0f - n * n);
        float dar = dan * hn[j] * rg * (1.0f - rg), daz = dh * (hp[j] - n) * z * (1.0f - z);
        ar[j] = gr[j] = dar;
        az[j] = gz[j] = daz;
        an[j] = dan;
        gn[j] = dan * rg;
        dhn[j] = dh * z;
    }
}

/* GRU with the reset gate applied before the hidden product (ONNX's
 * linear_before_reset = 0), in two halves around that product:
 * r = s(xr + hr), z = s(xz + hz) (over xr, xz), rh = r hp; then
 * n = tanh(xn + hn) (over xn), y = (1 - z) n + z hp. */
void nf_fast_gru_reset_gates(int64_t h, float *restrict xr, float *restrict xz, const float *restrict hr,
                             const float *restrict hz, const float *restrict hp, float *restrict rh)
{
    for (int64_t j = 0; j < h; j++) {
        float rg = nf_fast_sigmoid(xr[j] + hr[j]);
        xr[j] = rg, xz[j] = nf_fast_sigmoid(xz[j] + hz[j]);
        rh[j] = rg * hp[j];
    }
}

void nf_fast_gru_reset_output(int64_t h, const float *restrict z, float *restrict xn, const float *restrict hn,
                              const float *restrict hp, float *restrict y)
{
    for (int64_t j = 0; j < h; j++) {
        float n = nf_fast_tanh(xn[j] + hn[j]);
        xn[j] = n;
        y[j] = (1.0f - z[j]) * n + z[j] * hp[j];
    }
}

/* Their backward, in reverse order: dh = dy + dhn; dan = dh (1 - z)(1 - n^2)
 * and daz = dh (hp - n) z(1-z) over an, az and to gn, gz; dhn becomes dh z.
 * Then, with drh = dan W_hn: dar = drh hp r(1-r) over ar and to gr;
 * dhn += drh r. */
void nf_fast_gru_reset_output_backward(int64_t h, float *restrict az, float *restrict an, float *restrict gz,
                                       float *restrict gn, const float *restrict hp, const float *restrict dy,
                                       float *restrict dhn)
{
    for (int64_t j = 0; j < h; j++) {
        float z = az[j], n = an[j], dh = dy[j] + dhn[j];
        float dan = dh * (1.0f - z) * (1.0f - n * n), daz = dh * (hp[j] - n) * z * (1.0f - z);
        az[j] = gz[j] = daz;
        an[j] = gn[j] = dan;
        dhn[j] = dh * z;
    }
}

void nf_fast_gru_reset_gates_backward(int64_t h, float *restrict ar, float *restrict gr, const float *restrict drh,
                                      const float *restrict hp, float *restrict dhn)
{
    for (int64_t j = 0; j < h; j++) {
        float rg = ar[j];
        ar[j] = gr[j] = drh[j] * hp[j] * rg * (1.0f - rg);
        dhn[j] += drh[j] * rg;
    }
}

static double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

void nf_reference_lstm_cell(int64_t h, float *ai, float *af, float *ag, float *ao, const float *cp, float *c, float *y)
{
    for (int64_t j = 0; j < h; j++) {
        double i = sigmoid(ai[j]), f = sigmoid(af[j]), g = tanh(ag[j]), o = sigmoid(ao[j]);
        double cj = f * cp[j] + i * g;
        ai[j] = (float)i, af[j] = (float)f, ag[j] = (float)g, ao[j] = (float)o;
        c[j] = (float)cj;
        y[j] = (float)(o * tanh(cj));
    }
}

void nf_reference_lstm_cell_backward(int64_t h, float *ai, float *af, float *ag, float *ao, const float *c,
                                     const float *cp, const float *dy, const float *dhn, float *dcn)
{
    for (int64_t j = 0; j < h; j++) {
        double i = ai[j], f = af[j], g = ag[j], o = ao[j];
        double tc = tanh(c[j]), dh = (double)dy[j] + dhn[j];
        double dc = dh * o * (1.0 - tc * tc) + dcn[j];
        ai[j] = (float)(dc * g * i * (1.0 - i));
        af[j] = (float)(dc * cp[j] * f * (1.0 - f));
        ag[j] = (float)(dc * i * (1.0 - g * g));
        ao[j] = (float)(dh * tc * o * (1.0 - o));
        dcn[j] = (float)(dc * f);
    }
}

void nf_reference_gru_cell(int64_t h, float *xr, float *xz, float *xn, const float *hr, const float *hz,
                           const float *hn_in, float *hn, const float *hp, float *y)
{
    for (int64_t j = 0; j < h; j++) {
        double r = sigmoid((double)xr[j] + hr[j]), z = sigmoid((double)xz[j] + hz[j]);
        double n = tanh(xn[j] + r * hn_in[j]);
        xr[j] = (float)r, xz[j] = (float)z, xn[j] = (float)n;
        hn[j] = hn_in[j];
        y[j] = (float)((1.0 - z) * n + z * hp[j]);
    }
}

void nf_reference_gru_cell_backward(int64_t h, float *ar, float *az, float *an, float *gr, float *gz, float *gn,
                                    const float *hn, const float *hp, const float *dy, float *dhn)
{
    for (int64_t j = 0; j < h; j++) {
        double r = ar[j], z = az[j], n = an[j], dh = (double)dy[j] + dhn[j];
        double dan = dh * (1.0 - z) * (1.0 - n * n);
        double dar = dan * hn[j] * r * (1.0 - r), daz = dh * (hp[j] - n) * z * (1.0 - z);
        ar[j] = gr[j] = (float)dar;
        az[j] = gz[j] = (float)daz;
        an[j] = (float)dan;
        gn[j] = (float)(dan * r);
        dhn[j] = (float)(dh * z);
    }
}

void nf_reference_gru_reset_gates(int64_t h, float *xr, float *xz, const float *hr, const float *hz, const float *hp,
                                  float *rh)
{
    for (int64_t j = 0; j < h; j++) {
        double r = sigmoid((double)xr[j] + hr[j]);
        xr[j] = (float)r, xz[j] = (float)sigmoid((double)xz[j] + hz[j]);
        rh[j] = (float)(r * hp[j]);
    }
}

void nf_reference_gru_reset_output(int64_t h, const float *z, float *xn, const float *hn, const float *hp, float *y)
{
    for (int64_t j = 0; j < h; j++) {
        double n = tanh((double)xn[j] + hn[j]);
        xn[j] = (float)n;
        y[j] = (float)((1.0 - z[j]) * n + (double)z[j] * hp[j]);
    }
}

void nf_reference_gru_reset_output_backward(int64_t h, float *az, float *an, float *gz, float *gn, const float *hp,
                                            const float *dy, float *dhn)
{
    for (int64_t j = 0; j < h; j++) {
        double z = az[j], n = an[j], dh = (double)dy[j] + dhn[j];
        az[j] = gz[j] = (float)(dh * (hp[j] - n) * z * (1.0 - z));
        an[j] = gn[j] = (float)(dh * (1.0 - z) * (1.0 - n * n));
        dhn[j] = (float)(dh * z);
    }
}

void nf_reference_gru_reset_gates_backward(int64_t h, float *ar, float *gr, const float *drh, const float *hp,
                                           float *dhn)
{
    for (int64_t j = 0; j < h; j++) {
        double r = ar[j];
        ar[j] = gr[j] = (float)((double)drh[j] * hp[j] * r * (1.0 - r));
        dhn[j] = (float)((double)dhn[j] + (double)drh[j] * r);
    }
}

void nf_reference_lstm_peephole_cell(int64_t h, float *ai, float *af, float *ag, float *ao, const float *p,
                                     const float *cp, float *c, float *y)
{
    for (int64_t j = 0; j < h; j++) {
        double i = sigmoid(ai[j] + (double)p[j] * cp[j]), f = sigmoid(af[j] + (double)p[h + j] * cp[j]);
        double g = tanh(ag[j]), cj = f * cp[j] + i * g, o = sigmoid(ao[j] + (double)p[2 * h + j] * cj);
        ai[j] = (float)i, af[j] = (float)f, ag[j] = (float)g, ao[j] = (float)o;
        c[j] = (float)cj;
        y[j] = (float)(o * tanh(cj));
    }
}

void nf_reference_lstm_peephole_cell_backward(int64_t h, float *ai, float *af, float *ag, float *ao, const float *p,
                                              const float *c, const float *cp, const float *dy, const float *dhn,
                                              float *dcn)
{
    for (int64_t j = 0; j < h; j++) {
        double i = ai[j], f = af[j], g = ag[j], o = ao[j];
        double tc = tanh(c[j]), dh = (double)dy[j] + dhn[j], dao = dh * tc * o * (1.0 - o);
        double dc = dh * o * (1.0 - tc * tc) + dcn[j] + dao * p[2 * h + j];
        double dai = dc * g * i * (1.0 - i), daf = dc * cp[j] * f * (1.0 - f);
        ai[j] = (float)dai, af[j] = (float)daf;
        ag[j] = (float)(dc * i * (1.0 - g * g));
        ao[j] = (float)dao;
        dcn[j] = (float)(dc * f + dai * p[j] + daf * p[h + j]);
    }
}
