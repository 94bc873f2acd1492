/* nodeflow — tensors: float32, row-major, contiguous, 64-byte aligned.
 *
 * The first axis of every activation is the batch. Shapes of graph nodes
 * are given per sample (without the batch axis); a plan adds the batch. */
#ifndef NODEFLOW_TENSOR_H
#define NODEFLOW_TENSOR_H

#include "export.h"

#include <stddef.h>
#include <stdint.h>

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NF_MAX_RANK 6

typedef struct nf_shape {
    int rank;                   /* 0 .. NF_MAX_RANK */
    int64_t dim[NF_MAX_RANK];   /* dim[0] is the outermost axis */
} nf_shape;

/* A view of float32 data with a shape. Tensors made by nf_tensor_new own
 * their data; tensors returned by a plan are views into the plan's memory
 * and stay valid until the plan is freed or recompiled. */
typedef struct nf_tensor {
    nf_shape shape;
    float *data;
} nf_tensor;

/* Builds a shape from `rank` dimensions. Returns NF_ERR_SHAPE for a rank
 * above NF_MAX_RANK or a negative dimension. */
NF_API nf_status nf_shape_make(nf_shape *out, int rank, const int64_t *dims, nf_error *err);

/* Number of elements (1 for rank 0). */
NF_API int64_t nf_shape_size(const nf_shape *shape);

/* 1 when both shapes have the same rank and dimensions. */
NF_API int nf_shape_equal(const nf_shape *a, const nf_shape *b);

/* Writes "[2, 3, 4]" into buf (always NUL-terminated). Returns buf. */
NF_API char *nf_shape_format(const nf_shape *shape, char *buf, int buf_size);

/* Allocates a zero-filled, 64-byte aligned tensor. The caller owns it and
 * releases it with nf_tensor_free. */
NF_API nf_status nf_tensor_new(nf_tensor *out, const nf_shape *shape, nf_error *err);

/* Releases what nf_tensor_new allocated; safe on a zeroed struct. */
NF_API void nf_tensor_free(nf_tensor *tensor);

/* 64-byte aligned allocation used for all tensor memory; NULL on failure.
 * Release with nf_aligned_free. */
NF_API void *nf_aligned_alloc(size_t bytes);
NF_API void nf_aligned_free(void *ptr);

#ifdef __cplusplus
}
#endif
#endif
