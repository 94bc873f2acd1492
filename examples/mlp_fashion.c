/* mlp_fashion — the whole nodeflow path on one page: build the W1 MLP
 * (784 -> 256 -> 128 -> 10), compile it, train it on Fashion-MNIST with
 * SGD + momentum, evaluate it on the test set, free everything.
 *
 *   mlp_fashion [epochs] [data-dir]
 */
#include <stdio.h>
#include <stdlib.h>

#include <nodeflow/nodeflow.h>

#define CHECK(call)                                                       \
    do {                                                                  \
        if ((call) != NF_OK) {                                            \
            fprintf(stderr, "mlp_fashion: %s\n", err.message);            \
            return 1;                                                     \
        }                                                                 \
    } while (0)

int main(int argc, char **argv)
{
    int epochs = argc > 1 ? atoi(argv[1]) : 5;
    const char *data_dir = argc > 2 ? argv[2] : NULL; /* NULL: Debian's package */
    nf_error err = {0};
    nf_set_threads(0); /* NODEFLOW_THREADS, or every core */

    /* 1. Data: 60,000 training and 10,000 test images, pixels in [0, 1]. */
    nf_dataset *train, *test;
    CHECK(nf_dataset_load_fashion_mnist(data_dir, 1, &train, &err));
    CHECK(nf_dataset_load_fashion_mnist(data_dir, 0, &test, &err));

    /* 2. The graph. Building only records; errors surface at compile. */
    nf_graph *g = nf_graph_new();
    nf_graph_set_seed(g, 42);
    nf_node *x = nf_input(g, "x", 1, (int64_t[]){784});
    nf_node *y = nf_input(g, "y", 0, NULL); /* class index per image */
    nf_node *h1 = nf_relu(g, "h1", nf_linear(g, "fc1", x, 256));
    nf_node *h2 = nf_relu(g, "h2", nf_linear(g, "fc2", h1, 128));
    nf_node *logits = nf_output(g, "logits", nf_linear(g, "fc3", h2, 10));
    nf_cross_entropy_loss(g, "loss", logits, y);

    /* 3. Plans: one for training at batch 64, one for inference at 256.
     * Both use the graph's parameters. */
    nf_plan *train_plan, *test_plan;
    CHECK(nf_plan_compile(g, 64, NF_PLAN_TRAINING, &train_plan, &err));
    CHECK(nf_plan_compile(g, 256, NF_PLAN_INFERENCE, &test_plan, &err));

    /* 4. SGD with momentum, and batches reshuffled every epoch. */
    nf_optimizer *opt;
    CHECK(nf_optimizer_new(g, "sgd", &opt, &err));
    CHECK(nf_optimizer_set(opt, "lr", 0.05, &err));
    CHECK(nf_optimizer_set(opt, "momentum", 0.9, &err));
    nf_batcher *batches;
    CHECK(nf_batcher_new(train, 64, 1, 1234, &batches, &err));

    /* 5. Train and evaluate. */
    nf_binding bind = {.x = x, .y = y, .scores = logits};
    printf("epoch  train_loss  train_acc  test_loss  test_acc\n");
    for (int epoch = 1; epoch <= epochs; epoch++) {
        nf_epoch_stats fit, eval;
        CHECK(nf_train_epoch(train_plan, opt, batches, &bind, &fit, &err));
        CHECK(nf_evaluate(test_plan, test, &bind, &eval, &err));
        printf("%5d  %10.4f  %9.4f  %9.4f  %8.4f\n", epoch, fit.loss, fit.accuracy, eval.loss,
               eval.accuracy);
        fflush(stdout);
    }

    /* 6. Free, plans and optimizer before their graph. */
    nf_batcher_free(batches);
    nf_optimizer_free(opt);
    nf_plan_free(train_plan);
    nf_plan_free(test_plan);
    nf_graph_free(g);
    nf_dataset_free(train);
    nf_dataset_free(test);
    return 0;
}
