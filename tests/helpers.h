/* Shared helpers of the cmocka suites: fixtures written by PyTorch,
 * random inputs, and the gradient check every node type goes through. */
#ifndef NF_TESTS_HELPERS_H
#define NF_TESTS_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <nodeflow/nodeflow.h>

/* A fixture file: "name rank dims..." lines, each followed by a line of
 * values (see tests/fixtures/make_torch.py). */
typedef struct fixture_tensor {
    char name[64];
    nf_shape shape;
    float *data;
} fixture_tensor;

typedef struct fixture {
    fixture_tensor *tensors;
    int count;
} fixture;

/* Loads tests/fixtures/<file>; fails the test if it cannot. */
void fixture_load(fixture *f, const char *file);
/* The tensor named `name`; fails the test if it is missing. */
const fixture_tensor *fixture_get(const fixture *f, const char *name);
void fixture_free(fixture *f);

/* Fails the test unless |actual - expected| <= rtol * max|expected| for
 * every element, naming the tensor and the worst element. */
void assert_close(const char *what, const float *actual, const float *expected, int64_t n, double rtol);

/* Deterministic fills. */
void fill_normal(float *data, int64_t n, uint64_t *state);
void fill_uniform(float *data, int64_t n, double lo, double hi, uint64_t *state);

/* Fills every input of the plan's graph: inputs whose name starts with
 * "label" get whole numbers in [0, classes), "prob" rows summing to 1,
 * "unit" values in [0, 1], all others standard normals. */
void fill_inputs(nf_plan *plan, nf_graph *g, int64_t classes, uint64_t seed);

/* Compiles g at `batch`, fills its inputs, runs nf_gradcheck and asserts
 * a maximum relative error below `tol` with most elements checked. */
void assert_gradients(nf_graph *g, int64_t batch, double tol);

/* Asserts that an nf_status is NF_OK, printing the error otherwise. */
#define assert_ok(call, err)                                                     \
    do {                                                                         \
        nf_status st_ = (call);                                                  \
        if (st_ != NF_OK)                                                        \
            fail_msg("%s failed: %s", #call, (err)->message);                    \
    } while (0)

#endif
