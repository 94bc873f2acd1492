/* nodeflow — models from ONNX files (the Meson feature `onnx`).
 *
 *     nf_graph *g;
 *     if (nf_onnx_load("model.onnx", &g, &err) != NF_OK) ...
 *     nf_plan_compile(g, 64, NF_PLAN_INFERENCE, &plan, &err);
 *
 * The graph has one input node per input of the ONNX graph (its first
 * axis is the batch; the others must be known numbers), one output node
 * per output, and the model's weights in its parameters, in nodeflow's
 * layouts and names (a Gemm "fc1" becomes linear "fc1" with fc1.weight
 * and fc1.bias), so that it can be run, saved as .nfg with its weights
 * (nodeflow import), trained further, or checked. docs/onnx.md lists the
 * operators and attributes that map; anything else is refused with an
 * error that names the ONNX node, its operator, the opset and what is
 * missing. */
#ifndef NODEFLOW_ONNX_H
#define NODEFLOW_ONNX_H

#include "export.h"

#include "graph.h"
#include "status.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Whether this nodeflow reads ONNX files (built with protobuf-c). */
NF_API int nf_onnx_available(void);

/* Reads an ONNX model (IR versions 3 to 8, opsets 7 to 17 of the default
 * domain) into a new graph with its weights. NF_ERR_STATE in a build
 * without ONNX; NF_ERR_FORMAT for a file that is not a well-formed model
 * and for an operator, attribute or form that does not map (the message
 * says which). */
NF_API nf_status nf_onnx_load(const char *path, nf_graph **out, nf_error *err);

/* The same from bytes in memory (`name` stands for the file in errors). */
NF_API nf_status nf_onnx_parse(const void *data, size_t size, const char *name, nf_graph **out, nf_error *err);

/* How nf_onnx_load_with reads a model (all zero: as nf_onnx_load). */
typedef struct nf_onnx_options {
    /* Inputs given values at import, which become constants there: a
     * static-shape engine needs shapes, axes, indices and weights that
     * some models take as inputs. bound_values[k] (float, integers as
     * floats) is the input named bound_names[k]; its shape must be the
     * input's whole ONNX shape. */
    int n_bound;
    const char *const *bound_names;
    const nf_tensor *bound_values;
    /* 0: the first axis of every input is the batch. 1: every input is
     * one whole sample, of its fixed ONNX shape (its first axis is data
     * like the others); nodeflow's batch then holds independent inputs.
     * Models that concatenate, normalise or transpose across axis 0 read
     * this way; operators that need a batch axis (Conv, pools,
     * BatchNormalization, LSTM, GRU, Gemm) then need it of size 1. */
    int whole_inputs;
    /* Where each graph output has its batch in ONNX (filled when not
     * NULL, for at most max_outputs outputs, in order). nodeflow's
     * outputs have it first; an ONNX output with its batch elsewhere (an
     * LSTM's Y_h, [directions, batch, hidden]) comes out with that axis
     * moved first and the others in their order. -1: no batch axis
     * (whole inputs). */
    int *output_batch_axes;
    int max_outputs;
} nf_onnx_options;

/* nf_onnx_load and nf_onnx_parse with options (NULL: none). A bound
 * name that is no input of the model, or a value of another shape, is
 * NF_ERR_INVALID_ARGUMENT. */
NF_API nf_status nf_onnx_load_with(const char *path, const nf_onnx_options *options, nf_graph **out, nf_error *err);
NF_API nf_status nf_onnx_parse_with(const void *data, size_t size, const char *name, const nf_onnx_options *options,
                                    nf_graph **out, nf_error *err);

/* Writes the graph's inference part (what its output nodes need; without
 * any, the first input of its loss) with its current weights as an ONNX
 * model, opset 14, the batch axis of every input and output named
 * "batch". A node type without an ONNX form here, a memory node (a
 * recurrent flow) and an unrolled sequence input are refused
 * (NF_ERR_STATE, naming the node); the file is written whole or not at
 * all. */
NF_API nf_status nf_onnx_save(nf_graph *g, const char *path, nf_error *err);

#ifdef __cplusplus
}
#endif
#endif
