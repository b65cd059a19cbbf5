"""Speed and memory of every lossgrad loss against the naive NumPy computation of the same thing.

Usage: python benchmarks/speed.py [--repeats 5] [--size 10000000]      (about three minutes)

Every function (loss, gradient, both), reduction ("none", "mean", "sum") and option (weights,
pos_weight, class weights, label smoothing, ignore_index, index and probability targets), in
float64 and float32, is timed against the naive NumPy formula for the same quantity, in the same
run; the sigmoid focal loss against torchvision's formula; distillation against
``T**2 * sum(q * (log_softmax(t/T) - log_softmax(z/T)))`` and ``T*(softmax(z/T) - softmax(t/T))``
(scipy.special); z-loss and soft-capping against their
usual NumPy formulas (the max-shifted log-sum-exp; ``c*tanh(z/c)`` and ``1 - tanh(z/c)**2``).
The naive formulas are the ones of issue 8: ``np.logaddexp(0, u) - p*u`` and ``expit(u) - p``
for the binary loss, the max-shifted log-sum-exp and ``exp(z - lse)`` for softmax, each with its
option written the obvious way, then ``np.mean`` or ``np.sum``.

Times are CPU time of the calling thread (``time.thread_time``: the machine is shared, and time
spent waiting for a core is not the code's), interleaved: each repeat runs the naive formula
and lossgrad once each, in turn. A cell reports the median over repeats of the ratio
lossgrad / naive, and in brackets the smallest and largest ratio seen: the spread. Wall-clock
ratios are printed for the default path too.

Memory is the peak allocated during one call (tracemalloc, which sees numpy's arrays; the call
runs in a fresh thread, so lossgrad's work arrays, kept per thread, are counted), reported as
(inputs + peak) / (inputs + outputs): 1.00 means nothing beyond the outputs it must return.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import threading
import time
import tracemalloc

import numpy as np
from scipy import special

import lossgrad as lg
from lossgrad.distillation import (
    distillation_loss,
    distillation_loss_and_grad,
    distillation_loss_grad,
)
from lossgrad.focal import sigmoid_focal_loss, sigmoid_focal_loss_and_grad, sigmoid_focal_loss_grad
from lossgrad.stability import soft_cap, soft_cap_grad, z_loss, z_loss_and_grad, z_loss_grad

REDUCTIONS = ("none", "mean", "sum")
FUNCTIONS = ("loss", "grad", "loss+grad")


def reduce(values: np.ndarray, reduction: str, divisor: float | None = None):
    if reduction == "none":
        return values
    total = np.sum(values)
    if reduction == "sum":
        return total
    return total / values.size if divisor is None else total / divisor


# Binary cross-entropy: the naive formulas.


def naive_bce(function: str, reduction: str, u, p, weight=None, pos_weight=None):
    results = []
    if function in ("loss", "loss+grad"):
        if pos_weight is None:
            loss = np.logaddexp(0, u) - p * u
        else:  # PyTorch's form: (1 - p) u + (1 + (pw - 1) p) log(1 + e^-u)
            loss = (1 - p) * u + (1 + (pos_weight - 1) * p) * np.logaddexp(0, -u)
        if weight is not None:
            loss = weight * loss
        results.append(reduce(loss, reduction))
    if function in ("grad", "loss+grad"):
        if pos_weight is None:
            grad = special.expit(u) - p
        else:
            grad = (1 - p + pos_weight * p) * special.expit(u) - pos_weight * p
        if weight is not None:
            grad = weight * grad
        if reduction == "mean":
            grad = grad / u.size
        results.append(grad)
    return results


def call_lossgrad(family: tuple, function: str, *args, **options) -> list:
    """lossgrad's loss, gradient or fused function of a family (loss, grad, loss+grad)."""
    loss, grad, both = family
    if function == "loss":
        return [loss(*args, **options)]
    if function == "grad":
        return [grad(*args, **options)]
    return list(both(*args, **options))


BCE = (lg.bce_with_logits, lg.bce_with_logits_grad, lg.bce_with_logits_and_grad)
SOFTMAX = (lg.softmax_cross_entropy, lg.softmax_cross_entropy_grad,
           lg.softmax_cross_entropy_and_grad)


def lossgrad_bce(function: str, reduction: str, u, p, weight=None, pos_weight=None):
    return call_lossgrad(BCE, function, u, p, weight=weight, pos_weight=pos_weight,
                         reduction=reduction)


# Softmax cross-entropy: the naive formulas.


def naive_softmax(function, reduction, z, t, weight=None, label_smoothing=0.0, ignore=False):
    rows = np.arange(z.shape[0])
    classes = z.shape[1]
    top = z.max(axis=-1, keepdims=True)
    lse = top + np.log(np.exp(z - top).sum(axis=-1, keepdims=True))
    results = []
    index = t.ndim == 1
    if index:
        keep = t != -100 if ignore else None
        tt = np.where(keep, t, 0) if ignore else t
    if function in ("loss", "loss+grad"):
        if index:
            loss = lse[:, 0] - z[rows, tt]
            if label_smoothing:
                loss = (1 - label_smoothing) * loss + label_smoothing * (
                    lse[:, 0] - z.mean(axis=-1)
                )
            if weight is not None:
                loss = weight[tt] * loss
            if ignore:
                loss = loss * keep
        else:
            y = t if not label_smoothing else (1 - label_smoothing) * t + label_smoothing / classes
            loss = (y * (lse - z)).sum(axis=-1)
        results.append(reduce(loss, reduction, divisor(t, weight, ignore)))
    if function in ("grad", "loss+grad"):
        grad = np.exp(z - lse)
        if index:
            if label_smoothing:
                grad -= label_smoothing / classes
            grad[rows, tt] -= 1 - label_smoothing
            if weight is not None:
                grad *= weight[tt][:, None]
            if ignore:
                grad *= keep[:, None]
        else:
            y = t if not label_smoothing else (1 - label_smoothing) * t + label_smoothing / classes
            grad -= y
        if reduction == "mean":
            grad /= divisor(t, weight, ignore)
        results.append(grad)
    return results


def divisor(t, weight, ignore):
    if t.ndim != 1:
        return t.shape[0]
    keep = t != -100 if ignore else np.ones(t.shape, bool)
    if weight is not None:
        return weight[np.where(keep, t, 0)][keep].sum()
    return keep.sum()


def lossgrad_softmax(function, reduction, z, t, weight=None, label_smoothing=0.0):
    return call_lossgrad(SOFTMAX, function, z, t, weight=weight,
                         label_smoothing=label_smoothing, reduction=reduction)


# Sigmoid focal loss: torchvision's formula in NumPy, and the gradient as written by hand.


def naive_focal(function, reduction, u, y, alpha=0.25, gamma=2.0):
    p = special.expit(u)
    ce = np.logaddexp(0, u) - y * u
    m = 1 - (p * y + (1 - p) * (1 - y))
    weight = 1.0 if alpha is None else alpha * y + (1 - alpha) * (1 - y)
    results = []
    if function in ("loss", "loss+grad"):
        results.append(reduce(weight * ce * m**gamma, reduction))
    if function in ("grad", "loss+grad"):
        slope = (1 - 2 * y) * p * (1 - p)  # d(1 - p_t)/du
        grad = weight * (gamma * m ** (gamma - 1) * slope * ce + m**gamma * (p - y))
        if reduction == "mean":
            grad = grad / u.size
        results.append(grad)
    return results


FOCAL = (sigmoid_focal_loss, sigmoid_focal_loss_grad, sigmoid_focal_loss_and_grad)


def lossgrad_focal(function, reduction, u, y, alpha=0.25, gamma=2.0):
    return call_lossgrad(FOCAL, function, u, y, alpha=alpha, gamma=gamma, reduction=reduction)


def focal_cases(u, y_hard, y_soft) -> dict:
    options = {
        "hard targets (alpha 0.25, gamma 2: the defaults)": (y_hard, {}),
        "soft targets": (y_soft, {}),
        "gamma 0.5, no alpha": (y_hard, {"alpha": None, "gamma": 0.5}),
    }
    cases = {}
    for function in FUNCTIONS:
        for label, (targets, extra) in options.items():
            cases[(function, label)] = (
                lambda r, f=function, tg=targets, e=extra: lossgrad_focal(f, r, u, tg, **e),
                lambda r, f=function, tg=targets, e=extra: naive_focal(f, r, u, tg, **e),
                [u, targets],
            )
    return cases


# z-loss and soft-capping: the usual NumPy formulas.


def naive_z_loss(function, reduction, z, coefficient=1e-4):
    m = np.max(z, axis=-1, keepdims=True)
    e = np.exp(z - m)
    total = np.sum(e, axis=-1, keepdims=True)
    log_z = m + np.log(total)
    results = []
    if function in ("loss", "loss+grad"):
        results.append(reduce(coefficient * log_z[..., 0] ** 2, reduction))
    if function in ("grad", "loss+grad"):
        grad = (2 * coefficient) * log_z * (e / total)
        if reduction == "mean":
            grad = grad / log_z.size
        results.append(grad)
    return results


Z_LOSS = (z_loss, z_loss_grad, z_loss_and_grad)
DISTILLATION = (distillation_loss, distillation_loss_grad, distillation_loss_and_grad)


def naive_distillation(function, reduction, z, t, temperature):
    log_q = special.log_softmax(t / temperature, axis=-1)
    results = []
    if function in ("loss", "loss+grad"):
        log_p = special.log_softmax(z / temperature, axis=-1)
        rows = temperature**2 * np.sum(np.exp(log_q) * (log_q - log_p), axis=-1)
        results.append(reduce(rows, reduction))
    if function in ("grad", "loss+grad"):
        grad = temperature * (special.softmax(z / temperature, axis=-1) - np.exp(log_q))
        if reduction == "mean":
            grad = grad / z.shape[0]
        results.append(grad)
    return results


def distillation_cases(z, t) -> dict:
    cases = {}
    for function in FUNCTIONS:
        for temperature in (1.0, 4.0):
            cases[(function, f"T = {temperature:g}")] = (
                lambda r, f=function, tt=temperature: call_lossgrad(
                    DISTILLATION, f, z, t, temperature=tt, reduction=r),
                lambda r, f=function, tt=temperature: naive_distillation(f, r, z, t, tt),
                [z, t],
            )
    return cases


def z_loss_cases(z_narrow, z_wide) -> dict:
    cases = {}
    for function in FUNCTIONS:
        for label, z in ((f"{z_narrow.shape[1]} classes", z_narrow),
                         (f"{z_wide.shape[1]} classes", z_wide)):
            cases[(function, label)] = (
                lambda r, f=function, x=z: call_lossgrad(Z_LOSS, f, x, reduction=r),
                lambda r, f=function, x=z: naive_z_loss(f, r, x),
                [z],
            )
    return cases


def soft_cap_table(u, repeats: int, worst: list, cap: float = 30.0) -> None:
    """Soft-capping has no reduction: one ratio per function and type."""
    print("| function | type | time ratio | memory |")
    print("|---|---|---:|---:|")
    for dtype in (np.float64, np.float32):
        x = u.astype(dtype)
        c = dtype(cap)
        for name, ours, naive in (
            ("soft_cap", lambda x=x: [soft_cap(x, cap)], lambda x=x, c=c: [c * np.tanh(x / c)]),
            ("soft_cap_grad", lambda x=x: [soft_cap_grad(x, cap)],
             lambda x=x, c=c: [1 - np.tanh(x / c) ** 2]),
        ):
            r = ratios(ours, naive, repeats)
            worst.append((statistics.median(r), f"soft-capping: {name}, {np.dtype(dtype).name}"))
            print(f"| {name} | {np.dtype(dtype).name} | {cell(r)} | "
                  f"{peak_ratio(ours, [x]):.3f} |")
    print()


# Measuring.


def ratios(ours, naive, repeats: int, clock=time.thread_time) -> list[float]:
    """Interleaved repeats: lossgrad / naive per repeat, in CPU time of this thread."""
    ours(), naive()  # warm both up (page in the inputs, load the code)
    out = []
    for _ in range(repeats):
        gc.collect()
        start = clock()
        naive()
        middle = clock()
        ours()
        out.append((clock() - middle) / (middle - start))
    return out


def peak_ratio(function, inputs: list) -> float:
    """(inputs + peak allocated during the call) / (inputs + outputs), in a fresh thread."""
    input_bytes = sum(x.nbytes for x in inputs if isinstance(x, np.ndarray))
    result = {}

    def run():
        result["out"] = function()

    gc.collect()
    tracemalloc.start()
    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    output_bytes = sum(np.asarray(x).nbytes for x in result.pop("out"))
    return (input_bytes + peak) / (input_bytes + output_bytes)


def cell(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} [{min(values):.2f}–{max(values):.2f}]"


def table(title: str, cases: dict, repeats: int, worst: list) -> None:
    print(f"### {title}\n")
    print("Time ratio lossgrad / naive, median [min–max] of interleaved repeats; then "
          "lossgrad's peak memory (inputs + peak) / (inputs + outputs).\n")
    print("| function | option | " + " | ".join(REDUCTIONS) + " | memory (mean) |")
    print("|---|---|" + "---:|" * len(REDUCTIONS) + "---:|")
    for (function, option), (ours, naive, inputs) in cases.items():
        cells = []
        for reduction in REDUCTIONS:
            r = ratios(lambda o=ours, rd=reduction: o(rd), lambda n=naive, rd=reduction: n(rd),
                       repeats)
            worst.append((statistics.median(r), f"{title}: {function}, {option}, {reduction}"))
            cells.append(cell(r))
        memory = peak_ratio(lambda o=ours: o("mean"), inputs)
        print(f"| {function} | {option} | " + " | ".join(cells) + f" | {memory:.3f} |")
    print()


def bce_cases(u, p, weight, pos_weight) -> dict:
    options = {
        "none": {},
        "weight (per element)": {"weight": weight},
        "pos_weight (per class, broadcast)": {"pos_weight": pos_weight},
    }
    cases = {}
    for function in FUNCTIONS:
        for label, extra in options.items():
            inputs = [u, p, *extra.values()]
            cases[(function, label)] = (
                lambda r, f=function, e=extra: lossgrad_bce(f, r, u, p, **e),
                lambda r, f=function, e=extra: naive_bce(f, r, u, p, **e),
                inputs,
            )
    return cases


def softmax_cases(z, t, t_ignored, y, class_weight) -> dict:
    options = {
        "class indices": (t, {}),
        "indices, class weight": (t, {"weight": class_weight}),
        "indices, label smoothing 0.1": (t, {"label_smoothing": 0.1}),
        "indices, 10% ignore_index": (t_ignored, {}),
        "probabilities": (y, {}),
        "probabilities, label smoothing 0.1": (y, {"label_smoothing": 0.1}),
    }
    cases = {}
    for function in FUNCTIONS:
        for label, (targets, extra) in options.items():
            ignore = targets is t_ignored
            inputs = [z, targets, *extra.values()]
            cases[(function, label)] = (
                lambda r, f=function, tg=targets, e=extra: lossgrad_softmax(f, r, z, tg, **e),
                lambda r, f=function, tg=targets, e=extra, i=ignore: naive_softmax(
                    f, r, z, tg, ignore=i, **e
                ),
                inputs,
            )
    return cases


def headline(u, p, repeats: int) -> None:
    """The default call, bce_with_logits_and_grad(u, p), in CPU and wall-clock time."""
    for name, clock in (("CPU time", time.thread_time), ("wall clock", time.perf_counter)):
        r = ratios(lambda: lossgrad_bce("loss+grad", "mean", u, p),
                   lambda: naive_bce("loss+grad", "mean", u, p), repeats, clock)
        print(f"- `bce_with_logits_and_grad(u, p)` ({u.dtype}), {name}: {cell(r)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--size", type=int, default=10**7)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    rows = max(1, args.size // 1000)
    print(f"numpy {np.__version__}, {os.cpu_count()} cores; binary: {args.size:.0e} logits "
          f"~ N(0, 4^2), soft targets ~ U(0, 1); softmax: {rows} x 1000 logits ~ N(0, 3^2); "
          f"{args.repeats} interleaved repeats\n")
    worst: list = []
    print("## The default path\n")
    for dtype in (np.float64, np.float32):
        u = (4.0 * rng.standard_normal(args.size)).astype(dtype)
        p = rng.uniform(size=args.size).astype(dtype)
        headline(u, p, args.repeats)
    print()
    print("## Binary cross-entropy\n")
    for dtype in (np.float64, np.float32):
        u = (4.0 * rng.standard_normal((args.size // 100, 100))).astype(dtype)
        p = rng.uniform(size=u.shape).astype(dtype)
        weight = rng.uniform(0, 2, size=u.shape).astype(dtype)
        pos_weight = rng.uniform(0.5, 3, size=100).astype(dtype)
        table(f"binary, {np.dtype(dtype).name}", bce_cases(u, p, weight, pos_weight),
              args.repeats, worst)
    print("## Softmax cross-entropy\n")
    for dtype in (np.float64, np.float32):
        z = (3.0 * rng.standard_normal((rows, 1000))).astype(dtype)
        t = rng.integers(0, 1000, size=rows)
        t_ignored = np.where(rng.uniform(size=rows) < 0.1, -100, t)
        y = rng.dirichlet(np.ones(1000), size=rows).astype(dtype)
        class_weight = rng.uniform(0.5, 2, size=1000).astype(dtype)
        table(f"softmax, {np.dtype(dtype).name}", softmax_cases(z, t, t_ignored, y, class_weight),
              args.repeats, worst)
    print("## Sigmoid focal loss\n")
    print("Against torchvision's formula (and its gradient written out by hand), in NumPy; the "
          "hand-written gradient warns and gives NaN where 1 - p_t rounds to 0, which the "
          "timing lets pass.\n")
    for dtype in (np.float64, np.float32):
        u = (4.0 * rng.standard_normal(args.size)).astype(dtype)
        y_hard = rng.integers(0, 2, size=args.size).astype(dtype)
        y_soft = rng.uniform(size=args.size).astype(dtype)
        with np.errstate(all="ignore"):
            table(f"focal, {np.dtype(dtype).name}", focal_cases(u, y_hard, y_soft),
                  args.repeats, worst)
    print("## Distillation\n")
    for dtype in (np.float64, np.float32):
        z = (3.0 * rng.standard_normal((rows, 1000))).astype(dtype)
        t = (z + rng.standard_normal((rows, 1000))).astype(dtype)
        table(f"distillation, {np.dtype(dtype).name}", distillation_cases(z, t), args.repeats,
              worst)
    print("## z-loss\n")
    for dtype in (np.float64, np.float32):
        z_narrow = (3.0 * rng.standard_normal((rows, 1000))).astype(dtype)
        z_wide = (3.0 * rng.standard_normal((max(1, args.size // 32000), 32000))).astype(dtype)
        table(f"z-loss, {np.dtype(dtype).name}", z_loss_cases(z_narrow, z_wide), args.repeats,
              worst)
    print("## Soft-capping\n")
    print(f"{args.size:.0e} logits ~ N(0, 40^2), cap 30.\n")
    soft_cap_table(40.0 * rng.standard_normal(args.size), args.repeats, worst)
    worst.sort(reverse=True)
    above = [w for w in worst if w[0] > 1.0]
    print(f"## Summary\n\n{len(worst)} configurations; {len(above)} with a median ratio above "
          f"1.0:\n")
    for ratio, name in above:
        print(f"- {ratio:.2f}: {name}")
    print()


if __name__ == "__main__":
    main()
