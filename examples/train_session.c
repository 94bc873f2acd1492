/* Trains a model file as `nodeflow train` does, from C: the model's [train]
 * section (optimizer, schedule, averaging, early stopping, ...) run by the
 * library's session.
 *   train_session MODEL.nfg TRAIN-SPEC VAL-SPEC OUT.safetensors */
#include <stdio.h>

#include <nodeflow/nodeflow.h>

static void say(void *ctx, const nf_session_progress *p)
{
    (void)ctx;
    printf("epoch %lld/%lld  train loss %.4f", (long long)p->epoch, (long long)p->epochs, p->train->loss);
    if (p->val)
        printf("  val loss %.4f", p->val->loss);
    printf("\n");
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: train_session MODEL.nfg TRAIN-SPEC VAL-SPEC OUT.safetensors\n");
        return 2;
    }
    nf_error err;
    nf_graph *g = NULL;
    nf_train_config config;
    nf_session *s = NULL;
    nf_session_events events = {NULL, NULL, say, NULL};
    int ok = nf_model_load(argv[1], &g, &config, &err) == NF_OK && nf_session_new(g, &config, &s, &err) == NF_OK;
    if (ok) {
        nf_session_set_events(s, &events);
        ok = nf_session_load_data(s, argv[2], argv[3], &err) == NF_OK && nf_session_run(s, &err) == NF_OK &&
             nf_session_save_weights(s, argv[4], 0, &err) == NF_OK;
    }
    if (!ok)
        fprintf(stderr, "train_session: %s\n", err.message);
    nf_session_free(s);
    nf_graph_free(g);
    return ok ? 0 : 1;
}
