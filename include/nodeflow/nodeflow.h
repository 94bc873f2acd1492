/* nodeflow — a dataflow-graph neural-network engine. One include for all. */
#ifndef NODEFLOW_H
#define NODEFLOW_H

#include "status.h"
#include "tensor.h"
#include "graph.h"
#include "plan.h"
#include "optim.h"
#include "data.h"
#include "train.h"
#include "model.h"
#include "weights.h"
#include "files.h"
#include "gradcheck.h"
#include "runtime.h"
#include "sequence.h"
#include "session.h"
#include "dist.h"
#include "onnx.h"
#include "stats.h"

#endif
