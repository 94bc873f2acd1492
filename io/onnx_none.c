/* nodeflow — ONNX in a build without protobuf-c (the Meson feature
 * `onnx` disabled or not found): every call says so. */
#include "engine/internal.h"
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
