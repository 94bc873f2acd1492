/* nodeflow — shapes and aligned tensor memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"

nf_status nf_shape_make(nf_shape *out, int rank, const int64_t *dims, nf_error *err)
{
    if (!out)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_shape_make: out is NULL");
    if (rank < 0 || rank > NF_MAX_RANK)
        return nf_fail(err, NF_ERR_SHAPE, "rank %d is outside 0..%d", rank, NF_MAX_RANK);
    if (rank > 0 && !dims)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "rank %d shape without dimensions", rank);
    memset(out, 0, sizeof *out);
    out->rank = rank;
    int64_t size = 1;
    for (int i = 0; i < rank; i++) {
        if (dims[i] <= 0)
            return nf_fail(err, NF_ERR_SHAPE, "dimension %d is %lld; dimensions must be positive",
                           i, (long long)dims[i]);
        size = nf_mul_checked(size, dims[i]);
        if (size < 0)
            return nf_fail(err, NF_ERR_SHAPE, "shape has more than 2^62 elements");
        out->dim[i] = dims[i];
    }
    return NF_OK;
}

int64_t nf_shape_size(const nf_shape *shape)
{
    int64_t size = 1;
    for (int i = 0; i < shape->rank; i++)
        size *= shape->dim[i];
    return size;
}

int nf_shape_equal(const nf_shape *a, const nf_shape *b)
{
    if (a->rank != b->rank)
        return 0;
    for (int i = 0; i < a->rank; i++)
        if (a->dim[i] != b->dim[i])
            return 0;
    return 1;
}

char *nf_shape_format(const nf_shape *shape, char *buf, int buf_size)
{
    int used = snprintf(buf, (size_t)buf_size, "[");
    for (int i = 0; i < shape->rank && used < buf_size; i++)
        used += snprintf(buf + used, (size_t)(buf_size - used), "%s%lld",
                         i ? ", " : "", (long long)shape->dim[i]);
    if (used < buf_size)
        snprintf(buf + used, (size_t)(buf_size - used), "]");
    return buf;
}

void *nf_aligned_alloc(size_t bytes)
{
    void *ptr = NULL;
    if (posix_memalign(&ptr, 64, bytes ? bytes : 64) != 0)
        return NULL;
    return ptr;
}

void nf_aligned_free(void *ptr) { free(ptr); }

nf_status nf_tensor_new(nf_tensor *out, const nf_shape *shape, nf_error *err)
{
    if (!out || !shape)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_tensor_new: NULL argument");
    nf_status st = nf_shape_make(&out->shape, shape->rank, shape->dim, err);
    if (st != NF_OK)
        return st;
    int64_t size = nf_shape_size(shape);
    if (size > (int64_t)(SIZE_MAX / sizeof(float)))
        return nf_fail(err, NF_ERR_NO_MEMORY, "tensor of %lld floats is too large", (long long)size);
    out->data = nf_aligned_alloc((size_t)size * sizeof(float));
    if (!out->data)
        return nf_fail(err, NF_ERR_NO_MEMORY, "could not allocate a tensor of %lld floats",
                       (long long)size);
    memset(out->data, 0, (size_t)size * sizeof(float));
    return NF_OK;
}

void nf_tensor_free(nf_tensor *tensor)
{
    if (!tensor)
        return;
    nf_aligned_free(tensor->data);
    tensor->data = NULL;
}
