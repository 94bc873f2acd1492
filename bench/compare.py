#!/usr/bin/env python3
"""Runs a workload in nodeflow and in PyTorch, one after the other in the
same invocation and at the same thread counts, and prints the ratios.

    /usr/bin/python3 bench/compare.py W1|W2|W3|W4|W6 [--threads 1 2] [--epochs 5] [--steps 205] [--build build]
                                      [--baseline OTHER-BUILD] [--torch/--no-torch]

PyTorch runs twice per thread count: with its default settings and with
its better ones: OMP_WAIT_POLICY=passive (on 2 cores its OpenMP pool and
the BLAS threads otherwise spin against each other) and glibc's malloc
thresholds raised (MALLOC_MMAP_THRESHOLD_=33554432,
MALLOC_TRIM_THRESHOLD_=4294967296: by default glibc hands PyTorch's
activation buffers back to the system every step, and the CNNs swing up
to 3x from page faults). Ratios are against the better of the two:
speed-ups above 1 favour nodeflow.

--unset-openblas-env runs every program with OPENBLAS_CORETYPE and
OPENBLAS_L2_SIZE removed from the environment (OpenBLAS then picks its
AVX-512 kernels on these machines, for PyTorch's OpenBLAS too).

The three programs run interleaved --repeat times (default 3) and each
figure is the median over the repeats, so that a slow phase of the
machine (seen here: whole runs at 2 threads taking twice as long) hits
both sides alike.

--baseline runs a second nodeflow build (an earlier commit's, say) in the
same interleaving and prints nodeflow's speed against it: how a change
moved the engine, apart from the machine's mood. --no-torch leaves
PyTorch out (for that comparison alone)."""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def run(cmd, env=None):
    """The program's JSON line, with its peak resident memory (peak_rss_mb,
    from the kernel's accounting of that one child)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, cmd)
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_rss_mb"] = round(usage.ru_maxrss / 1024.0, 1)
    return result


def medians(results):
    """One result whose every number is the median over the repeats."""
    merged = dict(results[0])
    for key, value in results[0].items():
        if isinstance(value, (int, float)) and key != "threads":
            merged[key] = statistics.median(r[key] for r in results)
    return merged


def speedup(workload, new, old):
    """new's speed over old's on each timed figure (above 1: new is faster)."""
    if workload in ("W4", "W6"):
        return {"train": new["train_tok_s"] / old["train_tok_s"], "gen": new["gen_tok_s"] / old["gen_tok_s"]}
    if workload == "W3":
        return {"train": new["train_img_s"] / old["train_img_s"]}
    return {"train": old["epoch_s"] / new["epoch_s"], "infer": new["infer_img_s"] / old["infer_img_s"],
            "latency": old["latency_ms"] / new["latency_ms"]}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("workload", choices=["W1", "W2", "W3", "W4", "W6"])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--steps", type=int, default=205, help="W4, W6: training steps (2000 adds the loss of 1,901-2,000)")
    p.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    p.add_argument("--baseline", help="another build directory whose nodeflow-bench runs interleaved")
    p.add_argument("--torch", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--unset-openblas-env", action="store_true",
                   help="run everything with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset")
    args = p.parse_args()
    env = dict(os.environ)
    if args.unset_openblas_env:
        env.pop("OPENBLAS_CORETYPE", None)
        env.pop("OPENBLAS_L2_SIZE", None)
    better = dict(env, OMP_WAIT_POLICY="passive", MALLOC_MMAP_THRESHOLD_="33554432",
                  MALLOC_TRIM_THRESHOLD_="4294967296")
    bench = os.path.join(args.build, "nodeflow-bench")
    rows = []
    for n in args.threads:
        torch_cmd = [sys.executable, os.path.join(HERE, "torch_workloads.py"), args.workload,
                     "--threads", str(n), "--epochs", str(args.epochs), "--steps", str(args.steps)]
        nf_args = [args.workload, "--threads", str(n), "--epochs", str(args.epochs), "--steps", str(args.steps)]
        runs = {"nf": [], "base": [], "default": [], "passive": []}
        for _ in range(args.repeat):
            runs["nf"].append(run([bench] + nf_args, env))
            if args.baseline:
                runs["base"].append(run([os.path.join(args.baseline, "nodeflow-bench")] + nf_args, env))
            if args.torch:
                runs["default"].append(run(torch_cmd, env))
                runs["passive"].append(run(torch_cmd, better))
        nf = medians(runs["nf"])
        if args.baseline:
            base = medians(runs["base"])
            print(json.dumps({"threads": n, "nodeflow": nf, "baseline": base, "speedup_over_baseline":
                              speedup(args.workload, nf, base)}))
        if not args.torch:
            continue
        default, passive = medians(runs["default"]), medians(runs["passive"])
        best = min((default, passive), key=lambda r: r.get("epoch_s", -r.get("train_img_s", 0)))
        rows.append((n, nf, default, passive, best))
        print(json.dumps({"threads": n, "nodeflow": nf, "torch": default, "torch_passive": passive}))
    if not args.torch:
        return
    print("\npeak resident memory (MB), nodeflow / PyTorch default / PyTorch better setting: " +
          ", ".join("%d threads %.0f / %.0f / %.0f" % (n, nf["peak_rss_mb"], d["peak_rss_mb"], p["peak_rss_mb"])
                    for n, nf, d, p, _ in rows))
    if args.workload in ("W4", "W6"):
        print("\n%-8s %-9s %12s %12s %9s %10s %10s %8s %16s" % ("workload", "threads", "tok_s", "torch_tok_s",
              "train_x", "gen_tok_s", "torch_gen", "gen_x", "loss 1900-2000"))
        for n, nf, default, passive, best in rows:
            train = max((default, passive), key=lambda r: r["train_tok_s"])
            gen = max((default, passive), key=lambda r: r["gen_tok_s"])
            loss = "%.4f/%.4f" % (nf["loss_1900_2000"], train["loss_1900_2000"]) if "loss_1900_2000" in nf else "-"
            print("%-8s %-9d %12.0f %12.0f %9.2f %10.0f %10.0f %8.2f %16s" % (
                args.workload, n, nf["train_tok_s"], train["train_tok_s"], nf["train_tok_s"] / train["train_tok_s"],
                nf["gen_tok_s"], gen["gen_tok_s"], nf["gen_tok_s"] / gen["gen_tok_s"], loss))
        print("\ntrain_x, gen_x: nodeflow's speed-up over PyTorch's better setting; loss: nodeflow/PyTorch")
        return
    if args.workload == "W3":
        print("\n%-8s %-9s %14s %14s %10s %14s" % ("workload", "threads", "img_s", "torch_img_s", "train_x",
                                                 "gflops"))
        for n, nf, default, passive, best in rows:
            best = max((default, passive), key=lambda r: r["train_img_s"])
            print("%-8s %-9d %14.1f %14.1f %10.2f %14.2f" % (args.workload, n, nf["train_img_s"],
                  best["train_img_s"], nf["train_img_s"] / best["train_img_s"], nf["gflops"]))
        print("\ntrain_x: nodeflow's training throughput over PyTorch's better setting")
        return
    print("\n%-8s %-9s %10s %12s %12s %14s %12s %12s" % (
        "workload", "threads", "epoch_s", "torch_s", "train_x", "latency_x", "infer_x", "test_acc"))
    for n, nf, default, passive, best in rows:
        print("%-8s %-9d %10.3f %12.3f %12.2f %14.2f %12.2f %6.4f/%.4f" % (
            args.workload, n, nf["epoch_s"], best["epoch_s"], best["epoch_s"] / nf["epoch_s"],
            min(default["latency_ms"], passive["latency_ms"]) / nf["latency_ms"],
            nf["infer_img_s"] / max(default["infer_img_s"], passive["infer_img_s"]),
            nf["test_acc"], best["test_acc"]))
    print("\ntrain_x, latency_x, infer_x: nodeflow's speed-up over PyTorch's better setting "
          "(default, or passive waiting and raised malloc thresholds); test_acc: nodeflow/PyTorch after %d epochs" % args.epochs)


if __name__ == "__main__":
    main()
