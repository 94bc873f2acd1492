/* nodeflow — upsample: [C, H, W] -> [C, OH, OW] as PyTorch's nn.Upsample
 * (F.interpolate), to a size or by an integer scale.
 *
 * nearest: output (y, x) takes input (floor(y s_h), floor(x s_w)), s the
 *   input-to-output ratio in float (in / out), clamped to the input.
 * bilinear, align_corners=false: the source coordinate of y is
 *   max(s_h (y + 0.5) - 0.5, 0), y0 its floor, y1 = min(y0 + 1, H - 1),
 *   weights 1 - f and f with f = source - y0 (likewise for x);
 *   align_corners=true: source = y (H - 1) / (OH - 1).
 * The ratios are computed in float, as PyTorch's CPU kernels do, so that
 * the same positions are chosen. */
#include <math.h>

#include "nodes/op.h"

enum { UP_SCALE, UP_SIZE, UP_MODE, UP_ALIGN };

static const char *const up_modes[] = {"nearest", "bilinear", NULL};

static const nf_attr_spec upsample_attrs[] = {
    [UP_SCALE] = NF_ATTR_INT2_DEF("scale", 0, 0, 1 << 16, "integer scale factor: 2, or 2x3 (0: give size)"),
    [UP_SIZE] = NF_ATTR_INT2_DEF("size", 0, 0, 1 << 24, "output size: 56, or 56x40 (0: give scale)"),
    [UP_MODE] = NF_ATTR_ENUM_DEF("mode", 0, up_modes, "nearest or bilinear"),
    [UP_ALIGN] = NF_ATTR_BOOL_DEF("align_corners", 0, "bilinear: the corner pixels' centres align"),
};

static nf_status upsample_infer(nf_infer *ctx)
{
    const nf_shape *in = ctx->in[0];
    const nf_node *n = ctx->node;
    char s[64];
    if (in->rank != 3)
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "input '%s' is %s; upsample needs [channels, height, width]",
                             ctx->in_name[0], nf_shape_format(in, s, sizeof s));
    int by_scale = n->attr[UP_SCALE] > 0 || n->attr_w[UP_SCALE] > 0;
    int by_size = n->attr[UP_SIZE] > 0 || n->attr_w[UP_SIZE] > 0;
    if (by_scale == by_size)
        return nf_infer_fail(ctx, NF_ERR_INVALID_ARGUMENT, "give one of scale and size");
    int which = by_scale ? UP_SCALE : UP_SIZE;
    if (n->attr[which] < 1 || n->attr_w[which] < 1)
        return nf_infer_fail(ctx, NF_ERR_INVALID_ARGUMENT, "%s needs a height and a width of at least 1",
                             upsample_attrs[which].name);
    if (n->attr[UP_ALIGN] != 0 && n->attr[UP_MODE] == 0)
        return nf_infer_fail(ctx, NF_ERR_INVALID_ARGUMENT, "align_corners is for bilinear mode");
    int64_t oh = by_scale ? nf_mul_checked(in->dim[1], (int64_t)n->attr[UP_SCALE]) : (int64_t)n->attr[UP_SIZE];
    int64_t ow = by_scale ? nf_mul_checked(in->dim[2], (int64_t)n->attr_w[UP_SCALE]) : (int64_t)n->attr_w[UP_SIZE];
    int64_t out = nf_mul3_checked(in->dim[0], oh, ow);
    if (out < 0 || out > NF_MAX_SAMPLE_ELEMENTS)
        return nf_infer_fail(ctx, NF_ERR_SHAPE, "its output would have more than 2^31 elements per sample");
    ctx->out = (nf_shape){3, {in->dim[0], oh, ow}};
    return NF_OK;
}

/* One axis: for each output position its two sources and the second's
 * weight (nearest: one source, weight 0). */
typedef struct taps {
    int64_t lo, hi;
    float frac;
} taps;

static taps axis_taps(int64_t o, int64_t in, int64_t out, int bilinear, int align)
{
    if (!bilinear) {
        float ratio = (float)in / (float)out;
        int64_t src = (int64_t)floorf((float)o * ratio);
        src = src < in - 1 ? src : in - 1;
        return (taps){src, src, 0.0f};
    }
    float src;
    if (align)
        src = out > 1 ? (float)o * ((float)(in - 1) / (float)(out - 1)) : 0.0f;
    else {
        src = ((float)in / (float)out) * ((float)o + 0.5f) - 0.5f;
        src = src < 0.0f ? 0.0f : src;
    }
    int64_t lo = (int64_t)src;
    lo = lo < in - 1 ? lo : in - 1;
    int64_t hi = lo + 1 < in ? lo + 1 : lo;
    return (taps){lo, hi, src - (float)lo};
}

static void upsample_move(const nf_exec *e, int backward)
{
    const nf_shape *in = e->in_shape[0], *out = e->out_shape;
    int64_t h = in->dim[1], w = in->dim[2], oh = out->dim[1], ow = out->dim[2], planes = e->batch * in->dim[0];
    int bilinear = e->attr[UP_MODE] != 0, align = e->attr[UP_ALIGN] != 0;
    #pragma omp parallel for if (planes * oh * ow > NF_PARALLEL_MIN) schedule(static)
    for (int64_t p = 0; p < planes; p++)
        for (int64_t y = 0; y < oh; y++) {
            taps ty = axis_taps(y, h, oh, bilinear, align);
            for (int64_t x = 0; x < ow; x++) {
                taps tx = axis_taps(x, w, ow, bilinear, align);
                float wy[2] = {1.0f - ty.frac, ty.frac}, wx[2] = {1.0f - tx.frac, tx.frac};
                int64_t ys[2] = {ty.lo, ty.hi}, xs[2] = {tx.lo, tx.hi};
                int64_t at = (p * oh + y) * ow + x;
                float sum = 0.0f;
                for (int a = 0; a < 2; a++)
                    for (int b = 0; b < 2; b++) {
                        float weight = wy[a] * wx[b];
                        if (weight == 0.0f && (a || b))
                            continue;
                        int64_t from = (p * h + ys[a]) * w + xs[b];
                        if (backward)
                            e->in_grad[0][from] += weight * e->out_grad[at];
                        else
                            sum += weight * e->in[0][from];
                    }
                if (!backward)
                    e->out[at] = sum;
            }
        }
}

static void upsample_forward(const nf_exec *e) { upsample_move(e, 0); }

static void upsample_backward(const nf_exec *e)
{
    if (e->in_grad[0])
        upsample_move(e, 1);
}

static double upsample_flops(const nf_node *node)
{
    return (double)nf_shape_size(&node->shape) * (node->attr[UP_MODE] != 0 ? 8.0 : 1.0);
}

const nf_op nf_op_upsample = {
    .name = "upsample", .summary = "[C, H, W] resized by an integer scale or to a size: nearest or bilinear "
                                   "(PyTorch's nn.Upsample)",
    .min_inputs = 1, .max_inputs = 1, .attrs = upsample_attrs, .n_attrs = NF_COUNT(upsample_attrs),
    .flags = NF_OP_GRAD_NO_INPUTS | NF_OP_GRAD_NO_OUTPUT,
    .infer = upsample_infer, .forward = upsample_forward, .backward = upsample_backward,
    .flops = upsample_flops,
};
