/* nodeflow generate: samples text from a byte-level sequence model with a
 * batch-1 plan. A recurrent model runs one token per run, its window set
 * to one step (the state carries between runs). Any other model (a
 * transformer, whose input is a window of T tokens and whose scores are
 * [T, V]) runs its whole window for every token: the context so far,
 * left-aligned, padded after it, the next token read from the scores of
 * its last position (a causal model does not look at the padding after
 * it; a model that is not causal does). There is no
 * key/value cache: each token costs a forward pass over T positions. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char generate_help[] =
    "usage: nodeflow generate MODEL.nfg --weights FILE [options]\n\n"
    "Samples text from a model trained on text data (its weights hold the\n"
    "vocabulary). The prime is fed one byte at a time, then each sampled\n"
    "byte is printed and fed back.\n"
    "  --weights FILE      trained weights (safetensors, from nodeflow train --out)\n"
    "  --prime TEXT        text to start from (default: a newline)\n"
    "  --length N          bytes to generate (default 200)\n"
    "  --temperature X     softmax temperature; 0 picks the most likely byte (default 0.8)\n"
    "  --seed N            seed of the sampling (default 0)\n"
    "  --threads N         threads (default: all cores)\n"
    "  --allow-nonfinite   load weights that hold NaN or infinities (refused otherwise)\n";

typedef struct generate_options {
    const char *model, *weights, *prime;
    long long length, seed, threads;
    double temperature;
    int allow_nonfinite;
} generate_options;

static int takes_value(const char *name)
{
    return strcmp(name, "--help") != 0 && strcmp(name, "--allow-nonfinite") != 0;
}

static int parse_options(int argc, char **argv, generate_options *o)
{
    *o = (generate_options){NULL, NULL, "\n", 200, 0, 0, 0.8, 0};
    cli_args a = {argc, argv, 1, "generate"};
    const char *flag, *v;
    while (cli_next(&a, &flag, &v, takes_value)) {
        if (!flag && !o->model)
            o->model = v;
        else if (flag && !strcmp(flag, "--help")) {
            fputs(generate_help, stdout);
            return -1;
        } else if (flag && !strcmp(flag, "--allow-nonfinite") && !v) {
            o->allow_nonfinite = 1;
        } else if (flag && !strcmp(flag, "--weights") && v && *v)
            o->weights = v;
        else if (flag && !strcmp(flag, "--prime") && v)
            o->prime = v;
        else if (!(flag && !strcmp(flag, "--length") && cli_parse_int(v, 0, 1LL << 30, &o->length)) &&
                 !(flag && !strcmp(flag, "--seed") && cli_parse_int(v, 0, 1LL << 53, &o->seed)) &&
                 !(flag && !strcmp(flag, "--threads") && cli_parse_int(v, 1, 1024, &o->threads)) &&
                 !(flag && !strcmp(flag, "--temperature") && cli_parse_double(v, &o->temperature) &&
                   o->temperature >= 0 && o->temperature <= 100))
            return flag ? cli_usage("generate", "bad option %s%s%s", flag, v ? " " : "", v ? v : "")
                        : cli_usage("generate", "unexpected argument '%s'", v);
    }
    if (!o->model)
        return cli_usage("generate", "give a model file");
    if (!o->weights)
        return cli_usage("generate", "give --weights FILE");
    return EXIT_OK;
}

typedef struct generator {
    nf_graph *g;
    nf_plan *plan;
    nf_binding bind;
    const unsigned char *vocab;
    int vocab_size;
    int64_t window;        /* 0: one token per run (recurrent); else T */
    float *context;        /* window mode: the last (up to) T token ids */
    int64_t used;          /* ... how many of them there are */
} generator;

static int set_up(const generate_options *o, generator *gen)
{
    nf_error err;
    int rc = cli_load_model(o->model, &gen->g, NULL);
    if (rc != EXIT_OK)
        return rc;
    nf_set_threads(o->threads > 0 ? (int)o->threads : 0);
    int recurrent = nf_graph_has_recurrence(gen->g);
    if ((recurrent && nf_graph_set_window(gen->g, 1, &err) != NF_OK) ||
        nf_weights_load(gen->g, o->weights, o->allow_nonfinite ? NF_WEIGHTS_ALLOW_NONFINITE : 0, &err) != NF_OK ||
        nf_binding_find(gen->g, &gen->bind, &err) != NF_OK)
        return cli_fail(&err);
    gen->vocab = nf_graph_vocab(gen->g, &gen->vocab_size);
    if (gen->vocab_size == 0) {
        fprintf(stderr, "nodeflow: %s holds no vocabulary: train the model on text data (--data text:...)\n",
                o->weights);
        return EXIT_USAGE;
    }
    nf_shape scores, x;
    if (!gen->bind.x || !gen->bind.scores || nf_node_shape(gen->bind.scores, &scores, NULL) != NF_OK ||
        nf_node_shape(gen->bind.x, &x, NULL) != NF_OK || (recurrent ? nf_shape_size(&x) != 1 : x.rank != 1) ||
        nf_shape_size(&x) < 1) {
        fprintf(stderr, "nodeflow: %s does not read %s\n", o->model,
                recurrent ? "one token id per step" : "a window of token ids (shape=T)");
        return EXIT_USAGE;
    }
    int64_t rows = recurrent ? 1 : x.dim[0];
    if (scores.rank < 1 || scores.dim[scores.rank - 1] < gen->vocab_size ||
        nf_shape_size(&scores) != rows * scores.dim[scores.rank - 1]) {
        fprintf(stderr, "nodeflow: %s does not score the %d bytes of the vocabulary%s\n", o->model, gen->vocab_size,
                recurrent ? "" : " at every position of its window");
        return EXIT_USAGE;
    }
    if (!recurrent) {
        gen->window = rows;
        gen->context = calloc((size_t)rows, sizeof(float));
        if (!gen->context)
            return EXIT_RUNTIME;
    }
    if (nf_plan_compile(gen->g, 1, NF_PLAN_INFERENCE, &gen->plan, &err) != NF_OK)
        return cli_fail(&err);
    if (gen->bind.y) { /* the loss still runs: give it a valid label */
        nf_tensor y;
        nf_plan_input(gen->plan, gen->bind.y, &y, NULL);
        memset(y.data, 0, (size_t)nf_shape_size(&y.shape) * sizeof(float));
    }
    return EXIT_OK;
}

/* One step: feed token `id`, leave the next scores in the plan. In
 * window mode the token joins the context (the oldest leaves a full one)
 * and the whole window runs. */
static int step(generator *gen, float id)
{
    nf_error err;
    const float *input = &id;
    if (gen->window) {
        if (gen->used == gen->window)
            memmove(gen->context, gen->context + 1, (size_t)(--gen->used) * sizeof(float));
        gen->context[gen->used++] = id;
        input = gen->context;
    }
    if (nf_plan_set_input(gen->plan, gen->bind.x, input, &err) != NF_OK || nf_plan_forward(gen->plan, &err) != NF_OK)
        return cli_fail(&err);
    return EXIT_OK;
}

/* The scores of the next token: the last position's in window mode. */
static const float *next_scores(const generator *gen, nf_error *err)
{
    nf_tensor scores;
    if (nf_plan_value(gen->plan, gen->bind.scores, &scores, err) != NF_OK)
        return NULL;
    if (!gen->window)
        return scores.data;
    return scores.data + (gen->used - 1) * (nf_shape_size(&scores.shape) / gen->window);
}

static int generate(const generate_options *o, generator *gen)
{
    nf_error err;
    size_t prime_len = strlen(o->prime);
    float *ids = malloc((prime_len ? prime_len : 1) * sizeof(float));
    if (!ids)
        return EXIT_RUNTIME;
    if (nf_text_to_ids(gen->vocab, gen->vocab_size, o->prime, prime_len, ids, &err) != NF_OK) {
        free(ids);
        fprintf(stderr, "nodeflow: --prime: %s\n", err.message);
        return EXIT_USAGE;
    }
    int rc = EXIT_OK;
    for (size_t i = 0; i < prime_len && rc == EXIT_OK; i++)
        rc = step(gen, ids[i]);
    free(ids);
    fputs(o->prime, stdout);
    uint64_t rng = (uint64_t)o->seed;
    if (rc == EXIT_OK && prime_len == 0) /* nothing to continue: start from the first byte of the vocabulary */
        rc = step(gen, 0.0f);
    for (long long i = 0; i < o->length && rc == EXIT_OK; i++) {
        const float *scores = next_scores(gen, &err);
        if (!scores)
            return cli_fail(&err);
        int64_t id = nf_sample(scores, gen->vocab_size, o->temperature, &rng);
        putchar(gen->vocab[id]);
        rc = step(gen, (float)id);
    }
    putchar('\n');
    return rc;
}

int cmd_generate(int argc, char **argv)
{
    generate_options o;
    int rc = parse_options(argc, argv, &o);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    generator gen = {0};
    rc = set_up(&o, &gen);
    if (rc == EXIT_OK)
        rc = generate(&o, &gen);
    nf_plan_free(gen.plan);
    nf_graph_free(gen.g);
    free(gen.context);
    return rc;
}
