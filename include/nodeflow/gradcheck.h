/* nodeflow — numerical gradient checking.
 *
 * Compares the gradients computed by back-propagation with central
 * differences, (L(w + h) - L(w - h)) / 2h, for every parameter and every
 * input that asked for its gradient. Elements within h of a kink (a relu
 * input near 0, a clamp's edge), where the differences with steps h and
 * h/2 disagree, are skipped and counted. */
#ifndef NODEFLOW_GRADCHECK_H
#define NODEFLOW_GRADCHECK_H

#include "export.h"

#include "plan.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nf_gradcheck_options {
    double step;        /* h; 0 means 1e-2 */
    double abs_floor;   /* denominators below this use it; 0 means 1e-2 */
    int64_t max_per_tensor; /* elements checked per tensor; 0 means all */
} nf_gradcheck_options;

typedef struct nf_gradcheck_result {
    double max_rel_error;       /* max |a - n| / max(|a|, |n|, abs_floor) */
    char worst[NF_NAME_MAX * 2]; /* "fc1.weight[12]" where it occurred */
    int64_t checked;
    int64_t skipped_kinks;
} nf_gradcheck_result;

/* Runs the check on `plan` (a NF_PLAN_TRAINING plan whose inputs the
 * caller has filled). Parameters are restored afterwards. `opts` may be
 * NULL for the defaults. */
NF_API nf_status nf_gradcheck(nf_plan *plan, const nf_gradcheck_options *opts,
                       nf_gradcheck_result *result, nf_error *err);

#ifdef __cplusplus
}
#endif
#endif
