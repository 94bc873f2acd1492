#!/usr/bin/env python3
"""Random differential check of nodes against PyTorch, forward only: each
case is one random node (conv2d with per-axis geometry, groups and every
padding mode; conv_transpose2d; max and average pooling with dilation, ceil
mode and counted padding; adaptive_avgpool; upsample nearest and bilinear;
lstm, gru and rnn stacks with every output; attention), its weights
exported to safetensors, run through `nodeflow infer` and compared with
PyTorch's output (relative error below 1e-4 of the largest magnitude).
Needs Debian's python3-torch; not part of the test suite (which needs no
Python), a tool for changes to the nodes.

    /usr/bin/python3 tools/torch_differential.py [SEED] [CASES] [BUILD-DIR]
"""
import os
import random
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from torch_to_safetensors import save_safetensors  # noqa

F = torch.nn.functional
NF = os.path.join(sys.argv[3] if len(sys.argv) > 3 else os.path.join(HERE, "..", "build"), "nodeflow")
W = tempfile.mkdtemp(prefix="nodeflow-differential-")


def npy(path, a):
    np.save(path, np.ascontiguousarray(a, dtype=np.float32))


def run_case(i, model, x, params, want):
    mpath, wpath, xpath, opath = [os.path.join(W, f"c{i}.{e}") for e in ("nfg", "safetensors", "x.npy", "out.npy")]
    with open(mpath, "w") as f:
        f.write(model)
    save_safetensors({k: v.detach().numpy() for k, v in params.items()}, wpath)
    npy(xpath, x.detach().numpy())
    r = subprocess.run([NF, "infer", mpath, "--weights", wpath, "--input", xpath, "--output", opath],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return "ERROR " + r.stderr.strip()
    got = np.load(opath)
    w = want.detach().numpy()
    if got.size != w.size:
        return f"SIZE got {got.shape} want {w.shape}"
    err = np.max(np.abs(got.reshape(-1) - w.reshape(-1))) / (np.max(np.abs(w)) + 1e-12)
    return "ok" if err < 1e-4 else f"MISMATCH rel {err:.3g}"


def pair(a, b):
    return a if a == b else f"{a}x{b}"


def conv_case(rng):
    c = rng.choice([1, 2, 3, 4])
    g = rng.choice([g for g in (1, 2, 4) if c % g == 0])
    o = g * rng.randint(1, 3)
    h, w = rng.randint(3, 12), rng.randint(3, 12)
    kh, kw = rng.randint(1, 4), rng.randint(1, 4)
    sh, sw = rng.randint(1, 3), rng.randint(1, 3)
    dh, dw = rng.randint(1, 2), rng.randint(1, 2)
    mode = rng.choice(["zeros", "reflect", "replicate", "circular"])
    ph, pw = rng.randint(0, 2), rng.randint(0, 2)
    if mode == "reflect":
        ph, pw = min(ph, h - 1), min(pw, w - 1)
    if mode == "circular":
        ph, pw = min(ph, h), min(pw, w)
    if h + 2 * ph < dh * (kh - 1) + 1 or w + 2 * pw < dw * (kw - 1) + 1:
        return None
    m = torch.nn.Conv2d(c, o, (kh, kw), stride=(sh, sw), padding=(ph, pw), dilation=(dh, dw), groups=g,
                        padding_mode=mode)
    x = torch.randn(3, c, h, w)
    text = (f"nodeflow 1\nx = input shape={c}x{h}x{w}\nm = conv2d x out={o} kernel={kh}x{kw} stride={pair(sh, sw)} "
            f"padding={pair(ph, pw)} dilation={pair(dh, dw)} groups={g} padding_mode={mode}\no = output m\n")
    return text, x, {"m.weight": m.weight, "m.bias": m.bias}, m(x)


def transpose_case(rng):
    c = rng.choice([1, 2, 4])
    g = rng.choice([g for g in (1, 2) if c % g == 0])
    o = g * rng.randint(1, 3)
    h, w = rng.randint(2, 7), rng.randint(2, 7)
    kh, kw = rng.randint(1, 4), rng.randint(1, 4)
    sh, sw = rng.randint(1, 3), rng.randint(1, 3)
    dh, dw = rng.randint(1, 2), rng.randint(1, 2)
    ph, pw = rng.randint(0, 2), rng.randint(0, 2)
    oph = rng.randint(0, max(sh, dh) - 1)
    opw = rng.randint(0, max(sw, dw) - 1)
    oh = (h - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    ow = (w - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
    if oh < 1 or ow < 1:
        return None
    m = torch.nn.ConvTranspose2d(c, o, (kh, kw), stride=(sh, sw), padding=(ph, pw), output_padding=(oph, opw),
                                 dilation=(dh, dw), groups=g)
    x = torch.randn(2, c, h, w)
    text = (f"nodeflow 1\nx = input shape={c}x{h}x{w}\nm = conv_transpose2d x out={o} kernel={kh}x{kw} "
            f"stride={pair(sh, sw)} padding={pair(ph, pw)} output_padding={pair(oph, opw)} dilation={pair(dh, dw)} "
            f"groups={g}\no = output m\n")
    return text, x, {"m.weight": m.weight, "m.bias": m.bias}, m(x)


def pool_case(rng):
    c, h, w = rng.randint(1, 3), rng.randint(2, 11), rng.randint(2, 11)
    kh, kw = rng.randint(1, 4), rng.randint(1, 4)
    sh, sw = rng.randint(1, 3), rng.randint(1, 3)
    ph, pw = rng.randint(0, kh // 2), rng.randint(0, kw // 2)
    ceil = rng.random() < 0.5
    x = torch.randn(2, c, h, w)
    if rng.random() < 0.5:
        dh, dw = rng.randint(1, 3), rng.randint(1, 3)
        try:
            want = F.max_pool2d(x, (kh, kw), (sh, sw), (ph, pw), (dh, dw), ceil_mode=ceil)
        except RuntimeError:
            return None
        text = (f"nodeflow 1\nx = input shape={c}x{h}x{w}\nm = maxpool x kernel={kh}x{kw} stride={pair(sh, sw)} "
                f"padding={pair(ph, pw)} dilation={pair(dh, dw)} ceil_mode={'true' if ceil else 'false'}\no = output m\n")
    else:
        inc = rng.random() < 0.5
        try:
            want = F.avg_pool2d(x, (kh, kw), (sh, sw), (ph, pw), ceil_mode=ceil, count_include_pad=inc)
        except RuntimeError:
            return None
        text = (f"nodeflow 1\nx = input shape={c}x{h}x{w}\nm = avgpool x kernel={kh}x{kw} stride={pair(sh, sw)} "
                f"padding={pair(ph, pw)} ceil_mode={'true' if ceil else 'false'} include_pad={'true' if inc else 'false'}"
                f"\no = output m\n")
    if want.numel() == 0:
        return None
    return text, x, {}, want


def resize_case(rng):
    c, h, w = rng.randint(1, 3), rng.randint(1, 9), rng.randint(1, 9)
    x = torch.randn(2, c, h, w)
    kind = rng.choice(["adaptive", "nearest", "bilinear", "bilinear_ac"])
    if kind == "adaptive":
        oh, ow = rng.randint(1, 2 * h), rng.randint(1, 2 * w)
        return (f"nodeflow 1\nx = input shape={c}x{h}x{w}\nm = adaptive_avgpool x size={pair(oh, ow)}\no = output m\n",
                x, {}, F.adaptive_avg_pool2d(x, (oh, ow)))
    if rng.random() < 0.5:
        sh, sw = rng.randint(1, 3), rng.randint(1, 3)
        spec = f"scale={pair(sh, sw)}"
        kw = {"scale_factor": (float(sh), float(sw))}
    else:
        oh, ow = rng.randint(1, 3 * h), rng.randint(1, 3 * w)
        spec = f"size={pair(oh, ow)}"
        kw = {"size": (oh, ow)}
    if kind == "nearest":
        return (f"nodeflow 1\nx = input shape={c}x{h}x{w}\nm = upsample x {spec}\no = output m\n", x, {},
                F.interpolate(x, mode="nearest", **kw))
    ac = kind == "bilinear_ac"
    return (f"nodeflow 1\nx = input shape={c}x{h}x{w}\nm = upsample x {spec} mode=bilinear "
            f"align_corners={'true' if ac else 'false'}\no = output m\n", x, {},
            F.interpolate(x, mode="bilinear", align_corners=ac, **kw))


def rnn_case(rng):
    kind = rng.choice(["lstm", "gru", "rnn"])
    t, inp, hid = rng.randint(1, 6), rng.randint(1, 5), rng.randint(1, 5)
    layers, bi = rng.randint(1, 3), rng.random() < 0.5
    bias = rng.random() < 0.8
    extra = ""
    if kind == "rnn":
        nl = rng.choice(["tanh", "relu"])
        m = torch.nn.RNN(inp, hid, layers, nonlinearity=nl, bias=bias, batch_first=True, bidirectional=bi)
        extra = f" nonlinearity={nl}"
    else:
        m = (torch.nn.LSTM if kind == "lstm" else torch.nn.GRU)(inp, hid, layers, bias=bias, batch_first=True,
                                                                bidirectional=bi)
    x = torch.randn(3, t, inp)
    out = rng.choice(["sequence", "state"] + (["cell"] if kind == "lstm" else []))
    y, st = m(x)
    if out == "sequence":
        want = y
    elif kind == "lstm":
        want = (st[0] if out == "state" else st[1]).transpose(0, 1)
    else:
        want = st.transpose(0, 1)
    text = (f"nodeflow 1\nx = input shape={t}x{inp}\nm = {kind} x hidden={hid} num_layers={layers} "
            f"bidirectional={'true' if bi else 'false'} bias={'true' if bias else 'false'} output={out}{extra}\n"
            f"o = output m\n")
    return text, x, {"m." + k: v for k, v in m.state_dict().items()}, want


def attention_case(rng):
    heads = rng.randint(1, 3)
    e = heads * rng.randint(1, 4)
    t, s = rng.randint(1, 6), rng.randint(1, 6)
    causal = rng.random() < 0.5
    bias = rng.random() < 0.7
    m = torch.nn.MultiheadAttention(e, heads, bias=bias, batch_first=True)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.1 * torch.randn(p.shape))
    q = torch.randn(2, t, e)
    mask = torch.triu(torch.ones(t, t, dtype=torch.bool), 1) if causal else None
    want = m(q, q, q, attn_mask=mask, need_weights=False)[0]
    text = (f"nodeflow 1\nx = input shape={t}x{e}\nm = attention x heads={heads} causal={'true' if causal else 'false'}"
            f" bias={'true' if bias else 'false'}\no = output m\n")
    return text, q, {"m." + k: v for k, v in m.state_dict().items()}, want


def main():
    rng = random.Random(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
    torch.manual_seed(rng.randint(0, 10000))
    makers = [conv_case, transpose_case, pool_case, resize_case, rnn_case, attention_case]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 60
    bad = 0
    for i in range(n):
        case = rng.choice(makers)(rng)
        if case is None:
            continue
        res = run_case(i, *case)
        if res != "ok":
            bad += 1
            print(f"case {i}: {res}\n{case[0]}")
    print(f"{n} cases, {bad} failed")
    shutil.rmtree(W)
    sys.exit(1 if bad else 0)


main()
