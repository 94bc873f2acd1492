#!/usr/bin/env python3
"""The reference workloads of bench/WORKLOADS.md in PyTorch, timed
the way nodeflow-bench times them, printing the same JSON line.

    /usr/bin/python3 bench/torch_workloads.py W1|W2|W3 --threads N [--epochs N]
    /usr/bin/python3 bench/torch_workloads.py W4|W6 --threads N [--steps N]

Data is read from Debian's dataset-fashion-mnist files with gzip + numpy;
batches are drawn by indexing tensors with a permutation (faster than a
DataLoader, so PyTorch is not handicapped by its data pipeline)."""
import argparse
import gzip
import json
import os
import statistics
import time

import numpy as np
import torch

DATA = os.environ.get("NODEFLOW_FASHION_MNIST", "/usr/share/datasets/fashion-mnist")


def idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    rank = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(rank)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


def fashion(split):
    x = idx(os.path.join(DATA, "%s-images-idx3-ubyte.gz" % split)).reshape(-1, 784)
    y = idx(os.path.join(DATA, "%s-labels-idx1-ubyte.gz" % split))
    return torch.from_numpy(x.astype(np.float32) / 255.0), torch.from_numpy(y.astype(np.int64))


def lenet():
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 6, 5, padding=2), torch.nn.ReLU(), torch.nn.MaxPool2d(2, 2),
        torch.nn.Conv2d(6, 16, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2, 2), torch.nn.Flatten(),
        torch.nn.Linear(400, 120), torch.nn.ReLU(), torch.nn.Linear(120, 84), torch.nn.ReLU(),
        torch.nn.Linear(84, 10))


def w3_model():
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Dropout(0.25), torch.nn.Flatten(), torch.nn.Linear(12544, 128), torch.nn.ReLU(),
        torch.nn.Dropout(0.5), torch.nn.Linear(128, 10))


def w3(args):
    """Training images/s over 100 batches of 128 after 5 warm-up batches."""
    torch.manual_seed(1)
    xtr, ytr = fashion("train")
    xtr = xtr.reshape(-1, 1, 28, 28)
    model = w3_model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    perm = torch.randperm(xtr.shape[0])

    def batch(i):
        rows = perm[(i * 128) % 59904:(i * 128) % 59904 + 128]
        opt.zero_grad()
        loss = loss_fn(model(xtr[rows]), ytr[rows])
        loss.backward()
        opt.step()

    for i in range(5):
        batch(i)
    start = time.perf_counter()
    for i in range(5, 105):
        batch(i)
    seconds = time.perf_counter() - start
    flops = 2 * (2 * 32 * 9 * 784) + 3 * (2 * 64 * 288 * 784) + 3 * (2 * 12544 * 128) + 3 * (2 * 128 * 10)
    return {"workload": "W3", "threads": torch.get_num_threads(), "train_img_s": round(12800 / seconds, 1),
            "gflops": round(12800 * flops / seconds / 1e9, 2)}


def w1(args):
    torch.manual_seed(1)
    xtr, ytr = fashion("train")
    xte, yte = fashion("t10k")
    if args.workload == "W2":
        xtr, xte = xtr.reshape(-1, 1, 28, 28), xte.reshape(-1, 1, 28, 28)
        model = lenet()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    else:
        model = torch.nn.Sequential(
            torch.nn.Linear(784, 256), torch.nn.ReLU(),
            torch.nn.Linear(256, 128), torch.nn.ReLU(),
            torch.nn.Linear(128, 10))
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    epoch_s = []
    for _ in range(args.epochs):
        start = time.perf_counter()
        perm = torch.randperm(xtr.shape[0])
        for i in range(0, xtr.shape[0], 64):
            rows = perm[i:i + 64]
            opt.zero_grad()
            loss = loss_fn(model(xtr[rows]), ytr[rows])
            loss.backward()
            opt.step()
        epoch_s.append(time.perf_counter() - start)
    infer_s = []
    with torch.no_grad():
        for _ in range(3):
            start = time.perf_counter()
            correct = 0
            for i in range(0, xte.shape[0], 256):
                correct += int((model(xte[i:i + 256]).argmax(1) == yte[i:i + 256]).sum())
            infer_s.append(time.perf_counter() - start)
        lat = []
        for i in range(1000):
            start = time.perf_counter()
            model(xte[i:i + 1])
            lat.append(time.perf_counter() - start)
    return {"workload": args.workload, "threads": torch.get_num_threads(),
            "epoch_s": round(statistics.median(epoch_s), 4),
            "test_acc": round(correct / xte.shape[0], 4),
            "infer_img_s": round(xte.shape[0] / statistics.median(infer_s)),
            "latency_ms": round(1e3 * statistics.median(lat), 4)}


FORTUNES = os.environ.get("NODEFLOW_FORTUNES", "/usr/share/games/fortunes")


def corpus(path):
    """The bytes nodeflow's text loader reads: a file, or a directory's
    regular files (no symbolic links, none holding a NUL) in name order."""
    if not os.path.isdir(path):
        with open(path, "rb") as f:
            return f.read()
    data = b""
    for name in sorted(os.listdir(path)):
        p = os.path.join(path, name)
        if os.path.islink(p) or not os.path.isfile(p):
            continue
        with open(p, "rb") as f:
            b = f.read()
        if b"\0" not in b:
            data += b
    return data


def corpus_tokens():
    """The fortunes corpus as token ids (the index of each byte among the
    distinct bytes, in byte order, as nodeflow's vocabulary) and the
    vocabulary's size."""
    text = corpus(FORTUNES)
    vocab = sorted(set(text))
    lookup = torch.full((256,), -1, dtype=torch.int64)
    lookup[torch.tensor(vocab)] = torch.arange(len(vocab))
    return lookup[torch.frombuffer(bytearray(text), dtype=torch.uint8).long()], len(vocab)


def generation_speed(step):
    """Bytes per second of `step()` (one byte generated), as nodeflow-bench
    measures it: 20 untimed, then the median of three rounds of 500."""
    for _ in range(20):
        step()
    rounds = []
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(500):
            step()
        rounds.append(500 / (time.perf_counter() - start))
    return statistics.median(rounds)


def text_result(workload, tokens_per_step, seconds, gen, late):
    """The JSON line of W4 and W6: training tokens/s over 200 steps,
    generation tokens/s, the mean loss of steps 1,901-2,000 if run."""
    result = {"workload": workload, "threads": torch.get_num_threads(),
              "train_tok_s": round(200 * tokens_per_step / seconds) if seconds else 0, "gen_tok_s": round(gen)}
    if late:
        result["loss_1900_2000"] = round(sum(late) / len(late), 4)
    return result


def w4(args):
    """The character LSTM: 32 streams of 64-byte windows in order, state
    carried (detached) between windows, as nodeflow-bench W4."""
    torch.manual_seed(1)
    tokens, v = corpus_tokens()
    streams, window = 32, 64
    windows = (len(tokens) - 1) // (streams * window)
    per = windows * window
    lstm = torch.nn.LSTM(v, 256, batch_first=True)
    fc = torch.nn.Linear(256, v)
    params = list(lstm.parameters()) + list(fc.parameters())
    opt = torch.optim.Adam(params, lr=2e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    starts = torch.arange(streams) * per
    state = None
    late = []
    t0 = seconds = 0
    for s in range(1, args.steps + 1):
        k = (s - 1) % windows
        if k == 0:
            state = None
        idx = starts[:, None] + k * window + torch.arange(window)[None, :]
        x = torch.nn.functional.one_hot(tokens[idx], v).float()
        y = tokens[idx + 1]
        if s == 6:
            t0 = time.perf_counter()
        out, state = lstm(x, state)
        state = tuple(h.detach() for h in state)
        loss = loss_fn(fc(out).reshape(-1, v), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        if s == 205:
            seconds = time.perf_counter() - t0
        if 1900 < s <= 2000:
            late.append(float(loss))
    with torch.no_grad():
        gen_state = {"state": None, "token": torch.zeros(1, 1, dtype=torch.int64)}

        def step():
            out, gen_state["state"] = lstm(torch.nn.functional.one_hot(gen_state["token"], v).float(),
                                           gen_state["state"])
            p = torch.softmax(fc(out[0, -1]) / 0.8, 0)
            gen_state["token"] = torch.multinomial(p, 1).reshape(1, 1)
        gen = generation_speed(step)
    return text_result("W4", streams * window, seconds, gen, late)


class Block(torch.nn.Module):
    """A pre-norm decoder block of W6."""
    def __init__(self, d, heads):
        super().__init__()
        self.ln1 = torch.nn.LayerNorm(d)
        self.att = torch.nn.MultiheadAttention(d, heads, batch_first=True)
        self.ln2 = torch.nn.LayerNorm(d)
        self.fc1 = torch.nn.Linear(d, 4 * d)
        self.fc2 = torch.nn.Linear(4 * d, d)

    def forward(self, h, mask):
        a = self.ln1(h)
        h = h + self.att(a, a, a, attn_mask=mask, need_weights=False)[0]
        return h + self.fc2(torch.nn.functional.gelu(self.fc1(self.ln2(h))))


class CharTransformer(torch.nn.Module):
    """W6, as models/char_transformer.nfg."""
    def __init__(self, vocab, d=128, heads=4, layers=4, context=64):
        super().__init__()
        self.tok = torch.nn.Embedding(vocab, d)
        self.pos = torch.nn.Parameter(torch.randn(context, d) * 0.02)
        torch.nn.init.normal_(self.tok.weight, std=0.02)
        self.blocks = torch.nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.lnf = torch.nn.LayerNorm(d)
        self.head = torch.nn.Linear(d, vocab)
        self.register_buffer("mask", torch.triu(torch.ones(context, context, dtype=torch.bool), 1))

    def forward(self, x):
        t = x.shape[1]
        h = self.tok(x) + self.pos[:t]
        for b in self.blocks:
            h = b(h, self.mask[:t, :t])
        return self.head(self.lnf(h))


def w6(args):
    """The character transformer: batches of 32 independent 64-byte
    windows (consecutive, non-overlapping) in a seeded shuffled order,
    AdamW 3e-4 with weight decay 0.01 on matrices only, clipped at 1."""
    torch.manual_seed(1)
    tokens, v = corpus_tokens()
    batch, window = 32, 64
    windows = (len(tokens) - 1) // window
    model = CharTransformer(v)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": rest, "weight_decay": 0.0}],
                            lr=3e-4)
    loss_fn = torch.nn.CrossEntropyLoss()
    per_epoch = windows // batch
    order = torch.randperm(windows)
    late = []
    t0 = seconds = 0
    for s in range(1, args.steps + 1):
        k = (s - 1) % per_epoch
        if k == 0 and s > 1:
            order = torch.randperm(windows)
        starts = order[k * batch:(k + 1) * batch] * window
        idx = starts[:, None] + torch.arange(window)[None, :]
        x, y = tokens[idx], tokens[idx + 1]
        if s == 6:
            t0 = time.perf_counter()
        loss = loss_fn(model(x).reshape(-1, v), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if s == 205:
            seconds = time.perf_counter() - t0
        if 1900 < s <= 2000:
            late.append(float(loss))
    with torch.no_grad():  # the whole window per token, as nodeflow (no key/value cache)
        context = [0]

        def step():
            x = torch.tensor([context[-window:]])
            p = torch.softmax(model(x)[0, -1] / 0.8, 0)
            context.append(int(torch.multinomial(p, 1)))
        gen = generation_speed(step)
    return text_result("W6", batch * window, seconds, gen, late)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("workload", choices=["W1", "W2", "W3", "W4", "W6"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--steps", type=int, default=205)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(json.dumps({"W1": w1, "W2": w1, "W3": w3, "W4": w4, "W6": w6}[args.workload](args)))


if __name__ == "__main__":
    main()
