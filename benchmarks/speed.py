"""Speed and memory of lossgrad's loss + gradient against the naive NumPy formulas.

Usage: python benchmarks/speed.py [--repeats 7]        (about a minute)

Times are medians over interleaved repeats (each repeat runs every method once, in turn, so that
a slow moment of a noisy machine affects all of them alike) and are reported as ratios to the
naive formula measured in the same run. Peak extra memory is the largest amount allocated during
a call beyond its inputs, as seen by tracemalloc (which numpy reports its arrays to), compared
with the size of the outputs the call must return.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time
import tracemalloc

import numpy as np
from scipy import special

import lossgrad as lg


def naive_bce(u, p):
    return np.logaddexp(0, u) - p * u, special.expit(u) - p


def lossgrad_bce_fused(u, p):
    return lg.bce_with_logits_and_grad(u, p, reduction="none")


def lossgrad_bce_separate(u, p):
    return (
        lg.bce_with_logits(u, p, reduction="none"),
        lg.bce_with_logits_grad(u, p, reduction="none"),
    )


def naive_softmax(z, t):
    rows = np.arange(len(t))
    top = z.max(axis=-1, keepdims=True)
    lse = top + np.log(np.exp(z - top).sum(axis=-1, keepdims=True))
    loss = lse[:, 0] - z[rows, t]
    grad = np.exp(z - lse)
    grad[rows, t] -= 1
    return loss, grad


def lossgrad_softmax_fused(z, t):
    return lg.softmax_cross_entropy_and_grad(z, t, reduction="none")


def lossgrad_softmax_separate(z, t):
    return (
        lg.softmax_cross_entropy(z, t, reduction="none"),
        lg.softmax_cross_entropy_grad(z, t, reduction="none"),
    )


def peak_extra(function, *inputs) -> tuple[int, int]:
    """(peak bytes allocated during the call, bytes of the outputs it returned)."""
    gc.collect()
    tracemalloc.start()
    outputs = function(*inputs)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    size = sum(x.nbytes for x in outputs)
    del outputs
    return peak, size


def timings(methods: dict, inputs: tuple, repeats: int) -> dict:
    times = {name: [] for name in methods}
    for _ in range(repeats):
        for name, function in methods.items():
            gc.collect()
            start = time.perf_counter()
            function(*inputs)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def report(title: str, methods: dict, inputs: tuple, repeats: int) -> None:
    median = timings(methods, inputs, repeats)
    base = median["naive numpy"]
    input_bytes = sum(x.nbytes for x in inputs)
    print(f"### {title}\n")
    print("| method | median time | time / naive | peak extra memory | peak / (inputs + outputs) |")
    print("|---|---:|---:|---:|---:|")
    for name, function in methods.items():
        peak, outputs = peak_extra(function, *inputs)
        extra = peak - outputs
        ratio = (input_bytes + peak) / (input_bytes + outputs)
        print(f"| {name} | {median[name] * 1e3:.0f} ms | {median[name] / base:.2f} | "
              f"{extra / 2**20:+.1f} MiB | {ratio:.3f} |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--size", type=int, default=10**7)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"numpy {np.__version__}, {os.cpu_count()} cores, N = {args.size:.0e}, "
          f"median of {args.repeats} interleaved repeats\n")
    print("## Binary cross-entropy: loss and gradient, reduction='none'\n")
    for dtype in (np.float64, np.float32):
        u = (4.0 * rng.standard_normal(args.size)).astype(dtype)
        p = rng.uniform(size=args.size).astype(dtype)
        report(
            f"{dtype.__name__}, logits ~ N(0, 4^2), soft targets ~ U(0, 1)",
            {
                "naive numpy": naive_bce,
                "lossgrad, fused": lossgrad_bce_fused,
                "lossgrad, two calls": lossgrad_bce_separate,
            },
            (u, p),
            args.repeats,
        )
    print("## Softmax cross-entropy: loss and gradient, 10^4 rows x 10^3 classes\n")
    for dtype in (np.float64, np.float32):
        z = (3.0 * rng.standard_normal((10**4, 10**3))).astype(dtype)
        t = rng.integers(0, 10**3, size=10**4)
        report(
            f"{dtype.__name__}, logits ~ N(0, 3^2), class-index targets",
            {
                "naive numpy": naive_softmax,
                "lossgrad, fused": lossgrad_softmax_fused,
                "lossgrad, two calls": lossgrad_softmax_separate,
            },
            (z, t),
            args.repeats,
        )


if __name__ == "__main__":
    main()
