/* nodeflow — what the ONNX reader offers inside the library and its tests. */
#ifndef NF_IO_ONNX_INTERNAL_H
#define NF_IO_ONNX_INTERNAL_H

#include "engine/internal.h"

/* A serialized TensorProto (the ONNX test data's input_N.pb, output_N.pb)
 * as floats (integers converted); *values malloc'ed. */
nf_status nf_onnx_tensor_parse(const void *data, size_t size, nf_shape *shape, float **values, nf_error *err);

/* The distinct operator types of a model's graph, joined by ',' (the
 * backend tests sort them out by operator). */
nf_status nf_onnx_op_types(const void *data, size_t size, char *out, size_t out_size, nf_error *err);

/* The names of a model's graph inputs that are not initializers, in
 * order, at most `max` of them (each cut to name_size), in *n, and the
 * axis each has its batch at when imported without options. */
nf_status nf_onnx_input_names(const void *data, size_t size, char *names, size_t name_size, int max, int *n,
                              int *batch_axes, nf_error *err);

#endif
