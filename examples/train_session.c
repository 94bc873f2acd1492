/* Trains a model file as `nodeflow train` does, from C: the model's [train]
 * section (optimizer, schedule, averaging, early stopping, ...) run by the
 * library's session. Alone, or as one of the processes of
 * `mpirun -np N train_session ...` (data parallel: nodeflow/dist.h), where
 * rank 0 prints and writes.
 *   train_session MODEL.nfg TRAIN-SPEC VAL-SPEC OUT.safetensors */
#include <stdio.h>

#include <nodeflow/nodeflow.h>

static void say(void *ctx, const nf_session_progress *p)
{
    if (nf_comm_rank(ctx) != 0)
        return;
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
    nf_comm *comm = NULL;
    nf_graph *g = NULL;
    nf_train_config config;
    nf_session *s = NULL;
    int ok = nf_comm_world(&comm, &err) == NF_OK && nf_model_load(argv[1], &g, &config, &err) == NF_OK &&
             nf_session_new(g, &config, &s, &err) == NF_OK && nf_session_set_comm(s, comm, &err) == NF_OK;
    if (ok) {
        nf_session_events events = {comm, NULL, say, NULL};
        nf_session_set_events(s, &events);
        ok = nf_session_load_data(s, argv[2], argv[3], &err) == NF_OK && nf_session_run(s, &err) == NF_OK &&
             (nf_comm_rank(comm) != 0 || nf_session_save_weights(s, argv[4], 0, &err) == NF_OK);
    }
    if (!ok) {
        fprintf(stderr, "train_session: rank %d: %s\n", nf_comm_rank(comm), err.message);
        if (nf_comm_size(comm) > 1)
            nf_comm_abort(comm, 1); /* the other processes would wait for this one */
    }
    nf_session_free(s);
    nf_graph_free(g);
    nf_comm_free(comm);
    return ok ? 0 : 1;
}
