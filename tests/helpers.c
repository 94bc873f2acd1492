/* Helpers shared by the test suites (see helpers.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

#ifndef NF_SOURCE_DIR
#error "NF_SOURCE_DIR must name the source tree"
#endif

static int read_tensor(FILE *in, fixture_tensor *t)
{
    int rank;
    if (fscanf(in, "%63s %d", t->name, &rank) != 2 || rank < 0 || rank > NF_MAX_RANK)
        return 0;
    t->shape.rank = rank;
    int64_t n = 1;
    for (int i = 0; i < rank; i++) {
        long long d;
        if (fscanf(in, "%lld", &d) != 1 || d <= 0)
            return 0;
        t->shape.dim[i] = d;
        n *= d;
    }
    t->data = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; t->data && i < n; i++)
        if (fscanf(in, "%f", &t->data[i]) != 1)
            return 0;
    return t->data != NULL;
}

void fixture_load(fixture *f, const char *file)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fixtures/%s", NF_SOURCE_DIR, file);
    FILE *in = fopen(path, "r");
    if (!in)
        fail_msg("cannot open fixture %s", path);
    char comment[512];
    if (!fgets(comment, sizeof comment, in) || comment[0] != '#')
        fail_msg("fixture %s has no header line", path);
    memset(f, 0, sizeof *f);
    f->tensors = calloc(256, sizeof *f->tensors);
    while (f->count < 256) {
        fixture_tensor *t = &f->tensors[f->count];
        long at = ftell(in);
        if (!read_tensor(in, t)) {
            free(t->data);
            fseek(in, at, SEEK_SET);
            break;
        }
        f->count++;
    }
    int c = fgetc(in);
    while (c == ' ' || c == '\n')
        c = fgetc(in);
    fclose(in);
    if (c != EOF)
        fail_msg("fixture %s: malformed after %d tensors", path, f->count);
}

const fixture_tensor *fixture_get(const fixture *f, const char *name)
{
    for (int i = 0; i < f->count; i++)
        if (strcmp(f->tensors[i].name, name) == 0)
            return &f->tensors[i];
    fail_msg("fixture has no tensor '%s'", name);
    return NULL;
}

void fixture_free(fixture *f)
{
    for (int i = 0; i < f->count; i++)
        free(f->tensors[i].data);
    free(f->tensors);
    memset(f, 0, sizeof *f);
}

void assert_close(const char *what, const float *actual, const float *expected, int64_t n, double rtol)
{
    double scale = 0.0, worst = 0.0;
    int64_t at = 0;
    for (int64_t i = 0; i < n; i++)
        scale = fmax(scale, fabs(expected[i]));
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)actual[i] - expected[i]);
        if (d > worst || isnan(d)) {
            worst = isnan(d) ? INFINITY : d;
            at = i;
        }
    }
    if (worst > rtol * fmax(scale, 1e-30))
        fail_msg("%s: element %lld is %.9g, expected %.9g (error %.3g of scale %.3g, allowed %.1g)", what,
                 (long long)at, actual[at], expected[at], worst, scale, rtol);
}

static uint64_t next_random(uint64_t *state)
{
    *state = *state * 6364136223846793005ull + 1442695040888963407ull;
    return *state >> 11;
}

void fill_uniform(float *data, int64_t n, double lo, double hi, uint64_t *state)
{
    for (int64_t i = 0; i < n; i++)
        data[i] = (float)(lo + (hi - lo) * (double)next_random(state) * 0x1.0p-53);
}

void fill_normal(float *data, int64_t n, uint64_t *state)
{
    for (int64_t i = 0; i < n; i++) {
        double u1 = 1.0 - (double)next_random(state) * 0x1.0p-53, u2 = (double)next_random(state) * 0x1.0p-53;
        data[i] = (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
    }
}

void fill_inputs(nf_plan *plan, nf_graph *g, int64_t classes, uint64_t seed)
{
    uint64_t state = seed;
    for (int i = 0; i < nf_graph_node_count(g); i++) {
        nf_node *node = nf_graph_node(g, i);
        nf_tensor view;
        if (strcmp(nf_node_op(node), "input") != 0 || nf_plan_input(plan, node, &view, NULL) != NF_OK)
            continue;
        int64_t n = nf_shape_size(&view.shape);
        const char *name = nf_node_name(node);
        if (strncmp(name, "label", 5) == 0) {
            for (int64_t j = 0; j < n; j++)
                view.data[j] = (float)(next_random(&state) % (uint64_t)classes);
        } else if (strncmp(name, "prob", 4) == 0) {
            int64_t cols = view.shape.dim[view.shape.rank - 1];
            fill_uniform(view.data, n, 0.1, 1.0, &state);
            for (int64_t r = 0; r < n / cols; r++) {
                double sum = 0.0;
                for (int64_t j = 0; j < cols; j++)
                    sum += view.data[r * cols + j];
                for (int64_t j = 0; j < cols; j++)
                    view.data[r * cols + j] /= (float)sum;
            }
        } else if (strncmp(name, "unit", 4) == 0) {
            fill_uniform(view.data, n, 0.0, 1.0, &state);
        } else {
            fill_normal(view.data, n, &state);
        }
    }
}

void assert_gradients(nf_graph *g, int64_t batch, double tol)
{
    nf_error err = {0};
    nf_plan *plan = NULL;
    assert_ok(nf_plan_compile(g, batch, NF_PLAN_TRAINING, &plan, &err), &err);
    fill_inputs(plan, g, 5, 99);
    nf_gradcheck_result r;
    assert_ok(nf_gradcheck(plan, NULL, &r, &err), &err);
    if (r.checked == 0 || r.skipped_kinks * 10 > r.checked)
        fail_msg("gradient check compared %lld elements and skipped %lld kinks", (long long)r.checked,
                 (long long)r.skipped_kinks);
    if (!(r.max_rel_error < tol))
        fail_msg("gradient check: relative error %.3g at %s (allowed %.1g)", r.max_rel_error, r.worst, tol);
    nf_plan_free(plan);
}
