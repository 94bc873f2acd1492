/* ONNX's own backend node tests (Debian's libonnx-testdata: a model.onnx
 * and test_data_set_0/{input,output}_N.pb per test): every model the
 * reader takes is run on its inputs and must give its outputs within
 * ONNX's tolerance (rtol 1e-3, atol 1e-7); a model it refuses must be
 * refused with an error, never a crash. Prints how many ran and passed,
 * beside the anchors' counts on the same data, and the operators that
 * are not supported. Skipped when the data is not installed.
 *   test_onnx_backend [DATA_DIR]   default /usr/share/libonnx-testdata/data/node */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nodeflow/nodeflow.h>

#include "io/onnx_internal.h"
#include "io/util.h"

/* The 23 operators of issue 16's core set. */
static const char *const core_ops[] = {"Gemm", "MatMul", "Add", "Relu", "Conv", "MaxPool", "AveragePool",
                                       "GlobalAveragePool", "BatchNormalization", "Flatten", "Reshape",
                                       "Softmax", "LSTM", "GRU", "Concat", "Transpose", "Sigmoid", "Tanh",
                                       "Dropout", "Constant", "Shape", "Gather", "Unsqueeze", NULL};

static int is_core(const char *op)
{
    for (int k = 0; core_ops[k]; k++)
        if (!strcmp(op, core_ops[k]))
            return 1;
    return 0;
}

/* Whether every operator of the comma-joined list is a core one. */
static int all_core(const char *ops)
{
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", ops);
    for (char *op = strtok(copy, ","); op; op = strtok(NULL, ","))
        if (!is_core(op))
            return 0;
    return *ops != '\0';
}

/* Unsupported operators, counted. */
typedef struct {
    char op[48];
    int tests;
} missing;

static missing refused[256];
static int n_refused;

static void count_refusal(const char *message)
{
    const char *open = strstr(message, " (");
    const char *comma = open ? strstr(open, ", opset") : NULL;
    char op[48] = "(not an operator)";
    if (open && comma && comma - open - 2 < (long)sizeof op && strstr(message, ": node '"))
        snprintf(op, sizeof op, "%.*s", (int)(comma - open - 2), open + 2);
    for (int k = 0; k < n_refused; k++)
        if (!strcmp(refused[k].op, op)) {
            refused[k].tests++;
            return;
        }
    if (n_refused < (int)(sizeof refused / sizeof refused[0])) {
        snprintf(refused[n_refused].op, sizeof refused[n_refused].op, "%s", op);
        refused[n_refused++].tests = 1;
    }
}

static int read_tensor(const char *path, nf_shape *shape, float **values)
{
    char *data;
    size_t len;
    nf_error err;
    if (nf_read_file(path, (size_t)1 << 30, &data, &len, &err) != NF_OK)
        return 0;
    int ok = nf_onnx_tensor_parse(data, len, shape, values, &err) == NF_OK;
    free(data);
    return ok;
}

enum outcome { REFUSED, DATA_UNFIT, PASSED, WRONG };

enum { MAX_INPUTS = 16, NAME_SIZE = 128 };

/* A test's inputs: the model's input names (initializers left out) and
 * the values in test_data_set_0. */
typedef struct {
    char names[MAX_INPUTS][NAME_SIZE];
    nf_tensor values[MAX_INPUTS];
    int batch_axis[MAX_INPUTS]; /* where the plain import has its batch */
    int n;
} test_inputs;

/* Axes 0 and 1 of a tensor swapped (a time-major recurrent input fed
 * batch first), into a new buffer. */
static float *swap_first_axes(const nf_tensor *t)
{
    int64_t a = t->shape.dim[0], b = t->shape.dim[1], inner = nf_shape_size(&t->shape) / (a * b);
    float *out = malloc((size_t)nf_shape_size(&t->shape) * sizeof(float));
    for (int64_t i = 0; out && i < a; i++)
        for (int64_t j = 0; j < b; j++)
            memcpy(out + (j * a + i) * inner, t->data + (i * b + j) * inner, (size_t)inner * sizeof(float));
    return out;
}

/* Runs the model imported with `options` on the inputs that are not
 * bound (the first n_bound after input 0 are); *why says what did not
 * fit or differed. */
/* Axis `axis` of a tensor moved first (nodeflow's layout of an output
 * whose ONNX batch axis is `axis`), in place. */
static void move_axis_first(nf_shape *s, float *data, int axis)
{
    int64_t outer = 1, len = s->dim[axis], inner = 1, n = nf_shape_size(s);
    for (int k = 0; k < axis; k++)
        outer *= s->dim[k];
    for (int k = axis + 1; k < s->rank; k++)
        inner *= s->dim[k];
    float *copy = malloc((size_t)(n ? n : 1) * sizeof(float));
    if (!copy)
        return;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < len; i++)
            memcpy(copy + (i * outer + o) * inner, data + (o * len + i) * inner, (size_t)inner * sizeof(float));
    memcpy(data, copy, (size_t)n * sizeof(float));
    free(copy);
    for (int k = axis; k > 0; k--)
        s->dim[k] = s->dim[k - 1];
    s->dim[0] = len;
}

static enum outcome run_model(const char *dir, const test_inputs *in, const nf_onnx_options *given, char *why,
                              size_t why_size)
{
    char path[1400];
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    nf_graph *g;
    nf_error err;
    int batch_axes[MAX_INPUTS];
    nf_onnx_options with_axes = *given, *options = &with_axes;
    with_axes.output_batch_axes = batch_axes, with_axes.max_outputs = MAX_INPUTS;
    if (nf_onnx_load_with(path, options, &g, &err) != NF_OK) {
        snprintf(why, why_size, "%s", err.message);
        return REFUSED;
    }
    nf_node *inputs[MAX_INPUTS], *outputs[MAX_INPUTS];
    int n_in = 0, n_out = 0;
    for (int i = 0; i < nf_graph_node_count(g); i++) {
        nf_node *node = nf_graph_node(g, i);
        if (nf_node_is_input(node) && n_in < MAX_INPUTS)
            inputs[n_in++] = node;
        if (nf_node_is_output(node) && n_out < MAX_INPUTS)
            outputs[n_out++] = node;
    }
    int whole = options->whole_inputs;
    enum outcome result = PASSED;
    nf_plan *plan = NULL;
    float *swapped[MAX_INPUTS] = {NULL};
    int64_t batch = whole || n_in == 0 ? 1 : -1;
    if (batch == 1 && nf_plan_compile(g, 1, NF_PLAN_INFERENCE, &plan, &err) != NF_OK) {
        snprintf(why, why_size, "%s", err.message);
        result = DATA_UNFIT;
    }
    for (int k = 0; k < n_in && result == PASSED; k++) {
        /* node k is the model's k-th input that is not bound */
        int at = k == 0 ? 0 : k + options->n_bound;
        nf_tensor t = in->values[at];
        nf_shape want;
        nf_node_shape(inputs[k], &want, NULL);
        int skip = !whole, time_major = !whole && in->batch_axis[at] == 1;
        if (at >= in->n || t.shape.rank != want.rank + skip || (time_major && t.shape.rank < 3)) {
            snprintf(why, why_size, "input %d does not fit the imported input", k);
            result = DATA_UNFIT;
            break;
        }
        if (time_major) { /* [T, batch, ...] fed as [batch, T, ...] */
            free(swapped[k]);
            if (!(t.data = swapped[k] = swap_first_axes(&t))) {
                result = DATA_UNFIT;
                break;
            }
            int64_t first = t.shape.dim[0];
            t.shape.dim[0] = t.shape.dim[1], t.shape.dim[1] = first;
        }
        if (!whole && batch >= 0 && t.shape.dim[0] != batch)
            result = DATA_UNFIT;
        for (int a = 0; a < want.rank; a++)
            if (t.shape.dim[a + skip] != want.dim[a])
                result = DATA_UNFIT;
        if (result == PASSED && batch < 0) {
            batch = t.shape.dim[0];
            if (batch < 1 || nf_plan_compile(g, batch, NF_PLAN_INFERENCE, &plan, &err) != NF_OK) {
                snprintf(why, why_size, "%s", batch < 1 ? "an empty batch" : err.message);
                result = DATA_UNFIT;
            }
        }
        if (result == PASSED && nf_plan_set_input(plan, inputs[k], t.data, &err) != NF_OK)
            result = DATA_UNFIT;
    }
    if (result == PASSED && (!plan || nf_plan_forward(plan, &err) != NF_OK)) {
        snprintf(why, why_size, "%s", plan ? err.message : "no inputs");
        result = DATA_UNFIT;
    }
    float *data = NULL;
    for (int k = 0; k < n_out && result == PASSED; k++) {
        nf_shape s;
        nf_tensor v;
        snprintf(path, sizeof path, "%s/test_data_set_0/output_%d.pb", dir, k);
        free(data);
        data = NULL;
        if (!read_tensor(path, &s, &data) || nf_plan_value(plan, outputs[k], &v, &err) != NF_OK ||
            nf_shape_size(&s) != nf_shape_size(&v.shape)) {
            snprintf(why, why_size, "output %d has another size", k);
            result = WRONG;
            break;
        }
        if (batch_axes[k] > 0 && batch_axes[k] < s.rank)
            move_axis_first(&s, data, batch_axes[k]);
        for (int64_t i = 0; i < nf_shape_size(&s); i++) {
            double d = fabs((double)v.data[i] - data[i]);
            if (!(d <= 1e-7 + 1e-3 * fabs(data[i])) && !(isnan(data[i]) && isnan(v.data[i]))) {
                snprintf(why, why_size, "output %d element %lld is %.9g, expected %.9g", k, (long long)i, v.data[i],
                         data[i]);
                result = WRONG;
                break;
            }
        }
    }
    free(data);
    for (int k = 0; k < MAX_INPUTS; k++)
        free(swapped[k]);
    nf_plan_free(plan);
    nf_graph_free(g);
    return result;
}

/* Runs one test directory. A static-shape engine reads some models only
 * with help, so the import is tried in turn: as it is (the first axis of
 * every input the batch); with the inputs after the first bound to their
 * test values (shapes, axes, weights given as inputs); and with whole
 * inputs (the first axis data), bound or not. The first way that imports
 * and fits is the result; *why says why the last one did not. */
static enum outcome run_test(const char *dir, char *why, size_t why_size)
{
    char path[1400];
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    test_inputs in = {.n = 0};
    char *bytes;
    size_t len;
    nf_error err;
    if (nf_read_file(path, (size_t)1 << 30, &bytes, &len, &err) == NF_OK) {
        nf_onnx_input_names(bytes, len, in.names[0], NAME_SIZE, MAX_INPUTS, &in.n, in.batch_axis, &err);
        free(bytes);
    }
    int readable = 1;
    for (int k = 0; k < in.n; k++) {
        snprintf(path, sizeof path, "%s/test_data_set_0/input_%d.pb", dir, k);
        readable &= read_tensor(path, &in.values[k].shape, &in.values[k].data);
    }
    const char *bound_names[MAX_INPUTS];
    nf_tensor bound_values[MAX_INPUTS];
    for (int k = 1; k < in.n; k++)
        bound_names[k - 1] = in.names[k], bound_values[k - 1] = in.values[k];
    int n_bound = readable && in.n > 1 ? in.n - 1 : 0;
    const nf_onnx_options ways[4] = {
        {.n_bound = 0},
        {.n_bound = n_bound, .bound_names = bound_names, .bound_values = bound_values},
        {.n_bound = n_bound, .bound_names = bound_names, .bound_values = bound_values, .whole_inputs = 1},
        {.whole_inputs = 1},
    };
    enum outcome r = REFUSED;
    char first_refusal[512] = "";
    for (int w = 0; w < 4 && (r == REFUSED || r == DATA_UNFIT); w++) {
        if ((w == 1 || w == 2) && n_bound == 0)
            continue;
        r = run_model(dir, &in, &ways[w], why, why_size);
        if (getenv("NF_ONNX_VERBOSE") && r != PASSED)
            printf("  way %d: %s\n", w, why);
        if (r == REFUSED && (!*first_refusal || (!strstr(first_refusal, ": node '") && strstr(why, ": node '"))))
            snprintf(first_refusal, sizeof first_refusal, "%s", why);
    }
    if (r == REFUSED) /* (counted by the first operator a way names) */
        count_refusal(first_refusal);
    for (int k = 0; k < in.n; k++)
        free(in.values[k].data);
    return r;
}

static int by_tests(const void *a, const void *b) { return ((const missing *)b)->tests - ((const missing *)a)->tests; }

int main(int argc, char **argv)
{
    const char *root = argc > 1 ? argv[1] : "/usr/share/libonnx-testdata/data/node";
    if (!nf_onnx_available()) {
        printf("onnx-backend: this build reads no ONNX files: skipped\n");
        return 77;
    }
    struct dirent **names;
    int n = scandir(root, &names, NULL, alphasort);
    if (n < 0) {
        printf("onnx-backend: no test data at %s (tools/setup-debian --test installs libonnx-testdata): skipped\n",
               root);
        return 77;
    }
    nf_set_threads(1);
    int tests = 0, counts[4] = {0}, core = 0, core_passed = 0;
    for (int k = 0; k < n; k++) {
        if (names[k]->d_name[0] == '.') {
            free(names[k]);
            continue;
        }
        char dir[1024], model_path[1100], ops[2048] = "", why[512] = "";
        if (snprintf(dir, sizeof dir, "%s/%s", root, names[k]->d_name) >= (int)sizeof dir) {
            free(names[k]);
            continue;
        }
        snprintf(model_path, sizeof model_path, "%s/model.onnx", dir);
        char *bytes;
        size_t len;
        nf_error err;
        if (nf_read_file(model_path, (size_t)1 << 30, &bytes, &len, &err) == NF_OK) {
            nf_onnx_op_types(bytes, len, ops, sizeof ops, &err);
            free(bytes);
        }
        enum outcome r = run_test(dir, why, sizeof why);
        tests++;
        counts[r]++;
        if (all_core(ops)) {
            core++;
            core_passed += r == PASSED;
        }
        if (r == WRONG)
            printf("WRONG %s (%s): %s\n", names[k]->d_name, ops, why);
        else if (getenv("NF_ONNX_VERBOSE"))
            printf("%s %s (%s): %s\n", r == PASSED ? "passed" : r == REFUSED ? "refused" : "unfit", names[k]->d_name,
                   ops, why);
        free(names[k]);
    }
    free(names);
    qsort(refused, (size_t)n_refused, sizeof refused[0], by_tests);
    printf("onnx-backend: %d node tests: %d passed, %d wrong, %d refused by the reader, %d whose data does not fit "
           "(inputs without a batch axis, empty batches)\n",
           tests, counts[PASSED], counts[WRONG], counts[REFUSED], counts[DATA_UNFIT]);
    printf("  of the %d tests that use only the 23 core operators: %d passed\n", core, core_passed);
    printf("  anchors on the same data: onnxruntime 1.30 859 of 932, tract 744, libonnx 513 (2 crashes), onnx2c 446\n");
    printf("  refused, by operator (tests):");
    for (int k = 0; k < n_refused; k++)
        printf("%s %s (%d)", k ? "," : "", refused[k].op, refused[k].tests);
    printf("\n");
    return counts[WRONG] == 0 ? 0 : 1;
}
