#!/usr/bin/env python3
"""Writes the malformed weight files of tests/bad/weights/ (each loaded
into tests/fixtures/torch_export.nfg by tests/test_weights.c, which
expects the error in NAME.expected). Run: python3 tests/bad/make_bad_weights.py"""
import json
import os
import struct

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights")
SHAPES = {"fc1.weight": [16, 20], "fc1.bias": [16], "fc2.weight": [5, 16], "fc2.bias": [5]}


def count(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def layout(shapes, dtype="F32", size=4):
    header, offset = {}, 0
    for name, shape in shapes.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size * count(shape)]}
        offset += size * count(shape)
    return header, offset


def pack(header, data_len, raw_header=None):
    text = raw_header if raw_header is not None else json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + b"\0" * data_len


def write(name, blob):
    with open(os.path.join(HERE, name + ".safetensors"), "wb") as f:
        f.write(blob)


header, n = layout(SHAPES)
good = pack(header, n)
write("truncated_size", good[:5])
write("truncated_data", good[:len(good) - 10])
write("header_too_large", struct.pack("<Q", 1 << 40) + b"{}")
write("invalid_json", pack(None, 0, raw_header=b'{"fc1.weight": {"dtype": "F32",'))
write("not_an_object", pack(None, 0, raw_header=b'[1, 2, 3]'))
h = json.loads(json.dumps(header)); h["fc1.bias"]["dtype"] = "F33"
write("unknown_dtype", pack(h, n))
h = json.loads(json.dumps(header)); h["fc1.bias"]["dtype"] = "I8"
write("unsupported_dtype", pack(h, n))
h = json.loads(json.dumps(header)); h["fc2.bias"]["data_offsets"] = [0, 20]
write("overlap", pack(h, n))
h = json.loads(json.dumps(header)); h["fc2.bias"]["data_offsets"] = [n - 20, n + 4]
write("out_of_range", pack(h, n))
s = dict(SHAPES); del s["fc2.bias"]
h, m = layout(s)
write("missing_tensor", pack(h, m))
s = dict(SHAPES); s["fc3.weight"] = [2, 2]
h, m = layout(s)
write("extra_tensor", pack(h, m))
s = dict(SHAPES); s["fc1.weight"] = [16, 19]
h, m = layout(s)
write("shape_mismatch", pack(h, m))
h = json.loads(json.dumps(header)); h["fc1.weight"]["shape"] = [16, -20]
write("negative_dim", pack(h, n))
h = json.loads(json.dumps(header)); h["fc1.weight"]["shape"] = [16, 21]
write("size_disagrees", pack(h, n))
h, m = layout(SHAPES)
write("trailing_bytes", pack(h, m + 8))
h = json.loads(json.dumps(header)); h["__metadata__"] = {"step": 3}
write("metadata_not_string", pack(h, n))
# a name with an escaped NUL that would cut it to another tensor's name
text = json.dumps(header).replace('"fc2.bias"', '"fc2.bias\\u0000x"').encode()
write("nul_in_name", pack(None, n, raw_header=text))
h = json.loads(json.dumps(header)); h["__metadata__"] = "not an object"
# a raw NUL byte inside a name (cJSON would cut the name there)
text = json.dumps(header).replace('"fc2.bias"', '"fc2.bias\0x"').encode()
write("raw_nul_in_name", pack(None, n, raw_header=text))
# a key twice inside a tensor's entry, and inside __metadata__
text = json.dumps(header).replace('"dtype": "F32"', '"dtype": "F32", "dtype": "F64"', 1).encode()
write("duplicate_field", pack(None, n, raw_header=text))
text = json.dumps(header)[:-1].encode() + b', "__metadata__": {"a": "1", "a": "2"}}'
write("duplicate_metadata_key", pack(None, n, raw_header=text))
write("metadata_not_object", pack(h, n))
text = json.dumps(header).encode()
write("bytes_after_json", pack(None, n, raw_header=text + b"  xy"))
write("not_utf8", pack(None, n, raw_header=json.dumps(header).encode().replace(b'"fc1.bias"', b'"fc1.bias\xff"')))
# a NaN in fc1.bias, which lies after fc1.weight
blob = bytearray(good)
at = 8 + len(json.dumps(header).encode()) + 4 * count(SHAPES["fc1.weight"]) + 4 * 3
blob[at:at + 4] = struct.pack("<f", float("nan"))
write("nan_value", bytes(blob))
write("not_safetensors", b"nodeflow 1\nx = input shape=2\n")
# a control sequence in a tensor name: printed escaped
s = dict(SHAPES); s["\x1b[2Jfc3"] = [2]
h, m = layout(s)
write("escape_in_name", pack(h, m))
print("wrote", len(os.listdir(HERE)), "files to", HERE)
