/* libFuzzer target: checkpoints. Each input is resumed into a fresh
 * training session of a small model (Adam, a step schedule, an averaged
 * copy of the weights, early stopping, accumulated gradients), and a
 * checkpoint that is accepted trains one more batch: its counters and
 * numbers then meet the optimizer's, the schedule's and the average's
 * arithmetic. The seeds in corpus/checkpoint are checkpoints of this
 * model written by `nodeflow train` (--epochs 1 and 3, and --steps 4 of 5
 * epochs) on `data` with label=2, the same data as --val. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <nodeflow/nodeflow.h>

#include "tempfile.h"

static const char model[] =
    "nodeflow 1\nx = input shape=2\ny = input shape=scalar\nfc1 = linear x out=4\nh = tanh fc1\n"
    "fc2 = linear h out=2\nscores = output fc2\nloss = cross_entropy scores y\n\n[train]\noptimizer = adam\nlr = 0.01\nbatch = 2\n"
    "epochs = 1000\nseed = 1\nschedule = step\nschedule.step_size = 2\naverage = ema\nearly_stop = 50\n"
    "accumulate = 2\n";
static const char data[] = "0,0,0\n0,1,1\n1,0,1\n1,1,0\n0,0,0\n1,1,0\n";

static void stop_after_one_batch(void *session, const nf_session_progress *p)
{
    (void)p;
    nf_session_stop(session);
}

int LLVMFuzzerTestOneInput(const uint8_t *bytes, size_t size)
{
    static nf_dataset *ds;
    nf_error err;
    if (!ds && nf_dataset_parse_csv(data, sizeof data - 1, "fuzz.csv", "2", &ds, &err) != NF_OK)
        abort();
    const char *path = fuzz_write_temp(bytes, size);
    nf_graph *g;
    nf_train_config cfg;
    nf_session *s;
    if (!path || nf_model_parse(model, sizeof model - 1, "fuzz", &g, &cfg, &err) != NF_OK)
        abort();
    if (nf_session_new(g, &cfg, &s, &err) != NF_OK || nf_session_set_data(s, ds, ds, &err) != NF_OK)
        abort();
    if (nf_session_resume(s, path, NULL, &err) == NF_OK) {
        nf_session_events events = {s, stop_after_one_batch, NULL, NULL};
        nf_session_set_events(s, &events);
        nf_session_run(s, &err);
    }
    nf_session_free(s);
    nf_graph_free(g);
    return 0;
}
