"""Linear cross-entropy at vocabulary scale: lossgrad's blocked computation against the naive one.

Usage: python benchmarks/vocabulary.py [--rows 4096] [--dim 512] [--repeats 5] [--csv FILE]
(about 15 minutes)

The naive computation materialises the N x V logits Z = H W^T, the softmax, and S - Y, then
forms (S - Y) W / N and (S - Y)^T H / N (three matrix products). lossgrad's
``linear_cross_entropy_and_grad`` with its defaults (the path measured as "blocked") holds one
tile of 2^22 logits: here, one pass over chunks of rows of the whole vocabulary (three matrix
products) at every V up to 65536, where 64 rows fit in a tile. For comparison, the same function
forced into two passes over vocabulary blocks of 2^22 / N columns, or V/2 if that is fewer
(four matrix products: the forward pass, the recomputed logits and two gradient products), is
timed too ("two passes").

Time: wall clock (numpy's BLAS uses both cores), interleaved repeats: the median of the
per-repeat ratios blocked / naive, and their range. Run it on an otherwise idle machine.
Working memory: the peak that numpy allocates during one call (tracemalloc, which does not see
OpenBLAS's own buffers) beyond the outputs (loss, dH and dW). Error: against the unblocked
computation in float64 on the same inputs; the loss in units of u max(1, kappa), with
kappa = (sum |dL/dH| |H| + sum |dL/dW| |W|) / |L| its relative condition number with respect to
the inputs and u the unit roundoff of the inputs' type; each gradient entry in units of
u (|G| |W|) or u (|G|^T |H|), the unit of a matrix product's rounding error (its bound is that
unit times a factor growing with the sums' length: Higham, section 3.5), G = S - Y from the
reference.
"""

from __future__ import annotations

import argparse
import csv
import gc
import os
import statistics
import subprocess
import time
import tracemalloc

import numpy as np

from lossgrad import vocabulary as lossgrad_vocabulary
from lossgrad.vocabulary import linear_cross_entropy_and_grad


def naive(h, w, y):
    """The whole logit matrix, max-shifted log-sum-exp, softmax, and the two products."""
    n = h.shape[0]
    z = h @ w.T
    m = z.max(axis=1, keepdims=True)
    e = np.exp(z - m)
    total = e.sum(axis=1, keepdims=True)
    loss = np.mean(m[:, 0] + np.log(total[:, 0]) - z[np.arange(n), y])
    g = e / total
    g[np.arange(n), y] -= 1
    g /= n
    return loss, g @ w, g.T @ h


def working_memory(function) -> int:
    """Peak bytes allocated during the call beyond the arrays it returns."""
    gc.collect()
    tracemalloc.start()
    out = function()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak - sum(np.asarray(x).nbytes for x in out)


def errors(result, reference, h, w, dtype) -> list[float]:
    loss, dh, dw = (np.asarray(x, np.float64) for x in result)
    ref_loss, ref_dh, ref_dw, g = reference
    u = np.finfo(dtype).eps / 2
    h64, w64 = h.astype(np.float64), w.astype(np.float64)
    kappa = (np.abs(ref_dh * h64).sum() + np.abs(ref_dw * w64).sum()) / abs(ref_loss)
    scale_h = np.abs(g) @ np.abs(w64)
    scale_w = np.abs(g).T @ np.abs(h64)
    return [
        abs(float(loss) - ref_loss) / (u * max(1.0, kappa) * abs(ref_loss)),
        float(np.max(np.abs(dh - ref_dh) / (u * scale_h))),
        float(np.max(np.abs(dw - ref_dw) / (u * scale_w))),
    ]


def reference(h, w, y):
    """The unblocked float64 result, and G = S - Y (divided by N)."""
    h64, w64 = h.astype(np.float64), w.astype(np.float64)
    n = h.shape[0]
    z = h64 @ w64.T
    m = z.max(axis=1, keepdims=True)
    e = np.exp(z - m)
    total = e.sum(axis=1, keepdims=True)
    loss = float(np.mean(m[:, 0] + np.log(total[:, 0]) - z[np.arange(n), y]))
    g = e / total
    g[np.arange(n), y] -= 1
    g /= n
    return loss, g @ w64, g.T @ h64, g


def machine() -> dict:
    """What the figures depend on: the CPU, numpy, its BLAS and the code's commit."""
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f
                        if line.startswith("model name")), cpu)
    except OSError:
        pass
    blas = np.__config__.CONFIG["Build Dependencies"]["blas"]
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {"cpu": cpu, "cores": os.cpu_count(), "numpy": np.__version__,
            "blas": f"{blas.get('name')} {blas.get('version')}", "commit": commit}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4096)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--vocabularies", type=int, nargs="+",
                        default=[8192, 16384, 32768, 65536])
    parser.add_argument("--csv", help="also write the table to this CSV file (for the book's "
                        "figure: book/data/vocabulary-benchmark.csv)")
    args = parser.parse_args()
    rows = []
    n, d = args.rows, args.dim
    info = machine()
    print(f"{info['cpu']}, {info['cores']} cores; numpy {info['numpy']}, {info['blas']}; "
          f"commit {info['commit']}\n")
    print(f"N = {n}, d = {d}; hidden states "
          f"~ N(0, 1), W ~ N(0, 16/d), targets uniform; {args.repeats} interleaved repeats\n")
    print("| type | V | default path | time ratio [min-max] | two passes [min-max] | "
          "naive time (s) | working memory naive (MiB) | blocked (MiB) | two passes (MiB) | "
          "memory ratio | loss error | dH error | dW error | naive: loss | dH | dW |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        for vocabulary in args.vocabularies:
            h = rng.normal(size=(n, d)).astype(dtype)
            w = (rng.normal(size=(vocabulary, d)) * (4 / np.sqrt(d))).astype(dtype)
            y = rng.integers(0, vocabulary, n)
            # Two passes' default block, narrower than V so that it is two passes (with few rows
            # a block of 2^22 / N columns would cover the vocabulary, and that is one pass).
            columns = min(lossgrad_vocabulary._BLOCK_ELEMENTS // n, (vocabulary + 1) // 2)
            assert lossgrad_vocabulary._plan(n, vocabulary, columns, True)[0] == 2

            def two_passes(h=h, w=w, y=y, columns=columns):
                return linear_cross_entropy_and_grad(h, w, y, block_size=columns)

            ratios, two_ratios, naive_times = [], [], []
            for _ in range(args.repeats):
                start = time.perf_counter()
                naive_result = naive(h, w, y)
                middle = time.perf_counter()
                blocked_result = linear_cross_entropy_and_grad(h, w, y)
                end = time.perf_counter()
                two_passes()
                last = time.perf_counter()
                ratios.append((end - middle) / (middle - start))
                two_ratios.append((last - end) / (middle - start))
                naive_times.append(middle - start)
            passes, width, rows_per_tile = lossgrad_vocabulary._plan(n, vocabulary, None, True)
            plan = f"one pass, {rows_per_tile} rows" if passes == 1 else (
                f"two passes, {width} columns")
            ref = reference(h, w, y)
            naive_memory = working_memory(lambda h=h, w=w, y=y: naive(h, w, y))
            blocked_memory = working_memory(
                lambda h=h, w=w, y=y: linear_cross_entropy_and_grad(h, w, y))
            two_memory = working_memory(two_passes)
            cells = errors(blocked_result, ref, h, w, dtype) + errors(naive_result, ref, h, w,
                                                                      dtype)
            rows.append({
                "dtype": np.dtype(dtype).name, "rows": n, "dim": d, "vocabulary": vocabulary,
                "time_ratio": round(statistics.median(ratios), 3),
                "time_ratio_min": round(min(ratios), 3),
                "time_ratio_max": round(max(ratios), 3),
                "plan": plan,
                "two_pass_ratio": round(statistics.median(two_ratios), 3),
                "two_pass_ratio_min": round(min(two_ratios), 3),
                "two_pass_ratio_max": round(max(two_ratios), 3),
                "naive_seconds": round(statistics.median(naive_times), 3),
                "blocked_seconds": round(statistics.median(
                    [r * t for r, t in zip(ratios, naive_times, strict=True)]), 3),
                "naive_mib": round(naive_memory / 2**20, 1),
                "blocked_mib": round(blocked_memory / 2**20, 1),
                "two_pass_mib": round(two_memory / 2**20, 1),
                **info,
            })
            del ref, naive_result, blocked_result
            print(f"| {np.dtype(dtype).name} | {vocabulary} | {plan} | "
                  f"{statistics.median(ratios):.2f} [{min(ratios):.2f}-{max(ratios):.2f}] | "
                  f"{statistics.median(two_ratios):.2f} "
                  f"[{min(two_ratios):.2f}-{max(two_ratios):.2f}] | "
                  f"{statistics.median(naive_times):.2f} | {naive_memory / 2**20:.0f} | "
                  f"{blocked_memory / 2**20:.0f} | {two_memory / 2**20:.0f} | "
                  f"{blocked_memory / naive_memory:.3f} | "
                  + " | ".join(f"{c:.3g}" for c in cells) + " |", flush=True)
    print()
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        print(f"Wrote {args.csv}")


if __name__ == "__main__":
    main()
