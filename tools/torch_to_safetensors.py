#!/usr/bin/env python3
"""Exports a PyTorch state_dict to a safetensors file that nodeflow loads
(nf_weights_load, nodeflow eval/infer --weights). Uses numpy and json only.

    /usr/bin/python3 tools/torch_to_safetensors.py STATE_DICT.pt OUT.safetensors

STATE_DICT.pt is what torch.save(model.state_dict(), path) wrote. Tensor
names are kept ("fc1.weight"): name the nodes of the nodeflow model after
the PyTorch modules. Layouts are the same in both (Linear weight [out, in]).
Every tensor is written as little-endian float32; integer buffers (such as
BatchNorm's num_batches_tracked) are skipped."""
import json
import struct
import sys

import numpy as np


def save_safetensors(tensors, path, metadata=None):
    """Writes {name: array} as float32 safetensors (header padded to 8 bytes)."""
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, array in tensors.items():
        data = np.ascontiguousarray(array, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    import torch
    state = torch.load(sys.argv[1], map_location="cpu")
    tensors = {k: v.detach().float().numpy() for k, v in state.items() if v.is_floating_point()}
    save_safetensors(tensors, sys.argv[2])
    print("wrote %d tensors to %s" % (len(tensors), sys.argv[2]))


if __name__ == "__main__":
    main()
