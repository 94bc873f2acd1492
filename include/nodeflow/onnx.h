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
