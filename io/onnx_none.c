/* nodeflow — ONNX in a build without protobuf-c (the Meson feature
 * `onnx` disabled or not found): every call says so. */
#include "engine/internal.h"
#include "io/onnx_internal.h"
#include "nodeflow/onnx.h"

int nf_onnx_available(void) { return 0; }

static nf_status unavailable(nf_graph **out, nf_error *err)
{
    if (out)
        *out = NULL;
    return nf_fail(err, NF_ERR_STATE, "this nodeflow was built without ONNX; rebuild with libprotobuf-c-dev, "
                   "protobuf-c-compiler and libonnx-dev installed (Meson feature 'onnx')");
}

nf_status nf_onnx_parse(const void *data, size_t size, const char *name, nf_graph **out, nf_error *err)
{
    (void)data, (void)size, (void)name;
    return unavailable(out, err);
}

nf_status nf_onnx_load(const char *path, nf_graph **out, nf_error *err)
{
    (void)path;
    return unavailable(out, err);
}

nf_status nf_onnx_parse_with(const void *data, size_t size, const char *name, const nf_onnx_options *options,
                             nf_graph **out, nf_error *err)
{
    (void)data, (void)size, (void)name, (void)options;
    return unavailable(out, err);
}

nf_status nf_onnx_load_with(const char *path, const nf_onnx_options *options, nf_graph **out, nf_error *err)
{
    (void)path, (void)options;
    return unavailable(out, err);
}

nf_status nf_onnx_tensor_parse(const void *data, size_t size, nf_shape *shape, float **values, nf_error *err)
{
    (void)data, (void)size, (void)shape;
    *values = NULL;
    return unavailable(NULL, err);
}

nf_status nf_onnx_op_types(const void *data, size_t size, char *out, size_t out_size, nf_error *err)
{
    (void)data, (void)size;
    if (out_size)
        out[0] = '\0';
    return unavailable(NULL, err);
}

nf_status nf_onnx_save(nf_graph *g, const char *path, nf_error *err)
{
    (void)g, (void)path;
    return unavailable(NULL, err);
}

nf_status nf_onnx_input_names(const void *data, size_t size, char *names, size_t name_size, int max, int *n,
                              int *batch_axes, nf_error *err)
{
    (void)data, (void)size, (void)names, (void)name_size, (void)max, (void)batch_axes;
    *n = 0;
    return unavailable(NULL, err);
}
