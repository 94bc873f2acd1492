/* nodeflow — checkpoint files: a graph's parameters and vocabulary plus a
 * record of everything else a training run keeps (engine/record.h), as one
 * safetensors file whose metadata says "format": "nodeflow-checkpoint-1".
 * What the record holds is up to its writers (train/checkpoint.c). */
#ifndef NF_IO_CHECKPOINT_FILE_H
#define NF_IO_CHECKPOINT_FILE_H

#include "engine/record.h"

/* Writes the record's values as metadata and its tensors, atomically
 * (the record holds the parameters too: nf_graph_save_state). */
nf_status nf_checkpoint_write(const char *path, const nf_graph *g, const nf_record *r, nf_error *err);

/* Reads a checkpoint of `g`: checks the format and that every parameter
 * of the graph is there with its shape, and returns every value and
 * tensor as a record (*out, freed with nf_record_free). */
nf_status nf_checkpoint_read(const char *path, const nf_graph *g, nf_record **out, nf_error *err);

#endif
