r"""Knowledge distillation at a temperature: the loss and its gradient in the student's logits.

A student with logits :math:`z` learns from a teacher with logits :math:`t` by matching, at a
temperature :math:`T > 0`, the teacher's softened distribution
:math:`q = \operatorname{softmax}(t/T)` with its own, :math:`p = \operatorname{softmax}(z/T)`
(Hinton, Vinyals and Dean, 2015):

.. math::

    L(z) = T^2 \operatorname{KL}(q \,\Vert\, p)
         = T^2 \sum_k q_k \log\frac{q_k}{p_k}, \qquad
    \frac{\partial L}{\partial z_j} = T\,(p_j - q_j).

How it is computed. The common formulas form :math:`\log p_k` from a rounded softmax (which
underflows to 0, so that the loss is ``inf``), or subtract two log-softmaxes,
:math:`\log q_k - \log p_k`, which keeps every digit of the logits but leaves the loss with an
absolute error of about :math:`\varepsilon \sum_k q_k (|\log q_k| + |\log p_k|)`: all of the
loss's digits when the student is close to the teacher, where the loss is small. Here, with
:math:`a = (t - z)/T`, :math:`b = a - \sum_k p_k a_k`,
:math:`S = \sum_k p_k \operatorname{expm1}(b_k)` and :math:`r = b - \operatorname{log1p}(S)`
(so that :math:`r_k = \log(q_k/p_k)` and :math:`q_k = p_k e^{r_k}`), the *ψ form*

.. math::

    \operatorname{KL}(q \,\Vert\, p) = \sum_k p_k\, \psi(r_k), \qquad
    \psi(r) = 1 + (r - 1) e^r = \sum_{n \ge 2} \frac{(n - 1)\, r^n}{n!} \ge 0, \qquad
    p_j - q_j = -p_j \operatorname{expm1}(r_j),

is used for every row: a sum of non-negative terms, so no cancellation between classes. Each
:math:`\psi(r_k)` is :math:`r_k + r_k u_k - u_k`,
:math:`u_k = \operatorname{expm1}(r_k) = (\operatorname{expm1}(b_k) - S)/(1 + S)`. Near
:math:`r = 0` it has an absolute error of about :math:`2\varepsilon|r_k|` beside
:math:`\psi \approx r_k^2/2`: in the rows where :math:`\sum_k p_k |r_k|` exceeds 8 times the
KL so found, :math:`\psi(r_k)` is summed from its series (to :math:`2^{-53}` of itself) for the
classes with :math:`|r_k| \le 1/2`, and multiplied by :math:`T^2` before it is summed, so that
it does not underflow at a large temperature. Rows with a :math:`b_k` above 5 (8 for a float32
result), where :math:`q_k = p_k e^{b_k}/(1 + S)` would carry the rounding of :math:`p_k` into
a much larger :math:`q_k` and :math:`e^{b_k}` may overflow, are computed class by class: the
classes with :math:`|r_k| < 1` as above (each product :math:`p_k e^{b_k}` in :math:`S` taken
as :math:`e^{(t_k - \max z)/T - c}`, :math:`c` the centre that :math:`b` is measured from),
the others from the two log-softmaxes, :math:`r_k = \log q_k - \log p_k` and
:math:`p_k \psi(r_k) = p_k + (r_k - 1) q_k`.

For a float64 result, three things more. A float32 result skips them, for speed: its own
rounding hides what they remove in most rows, but not in all (a student that puts a tiny
probability on a class the teacher puts far lower pulls the mean far enough that a float32
gradient was 708 float32 ULP off in a row built so):

- *The centre.* Every :math:`r_k` carries the rounding of :math:`b_k` and
  :math:`\operatorname{log1p}(S)`, and the mean :math:`\sum_k p_k a_k` can lie far from
  :math:`\log \sum_k p_k e^{a_k}`, the centre at which :math:`S = 0` (a class that the teacher
  makes negligible and the student does not pulls it), so that small :math:`r_k` are
  differences of two larger numbers. :math:`b` is measured again, from :math:`a` and the first
  estimate :math:`\sum_k p_k a_k + \operatorname{log1p}(S)` of that centre, and :math:`S` found
  again (now near 0); the far rows are those with a :math:`b_k` above 5 measured so.
- *The teacher's side.* Where :math:`r_k > 1`, :math:`q_k = p_k e^{r_k}` carries the rounding
  of :math:`p_k` (relative :math:`\varepsilon |z_k - \max z|/T`) and of :math:`r_k` into
  :math:`p_k - q_k \approx -q_k` and into :math:`S`. In rows where the student puts more than
  half its mass on one class, or where an :math:`r_k` exceeds 3.5, :math:`q_k` is taken from
  :math:`e^{(t_k - \max t)/T}` there, and :math:`S` found again with it.
- *ψ far below 0.* Below :math:`r_k = -1.5`, where :math:`r_k + r_k u_k - u_k` adds two
  numbers of size :math:`|r_k|` to leave :math:`r_k e^{r_k}`, :math:`\psi` is
  :math:`1 + (r_k - 1)e^{r_k}`.

Where :math:`p_j` or :math:`q_j` exceeds 1/2, :math:`p_j - q_j` is minus the sum of the row's
other entries.

Rows are computed a block at a time in float64 (at most :math:`2^{17}` elements, and four work
arrays within 7.5 % of the inputs and outputs), the gradient
written straight into its output (divided for ``"mean"`` before its one rounding), the losses
added by :class:`~lossgrad.summation.CompensatedSum` for ``"mean"`` and ``"sum"`` (their exact
sum, accurately rounded). A float32 result is the float64 one rounded once. Logits whose
differences divided by :math:`T` overflow, or whose loss overflows, are refused with a
``ValueError`` naming the temperature. Derived in "Distillation at a temperature".

References
----------
.. [1] G. Hinton, O. Vinyals and J. Dean, Distilling the knowledge in a neural network,
   NIPS 2014 Deep Learning Workshop, 2015. https://arxiv.org/abs/1503.02531
"""

from __future__ import annotations

import math
import numbers

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lossgrad import validation
from lossgrad.blocks import BLOCK, Loss, LossReduction, Reduction, Rows, Scratch, row_blocking

__all__ = ["distillation_loss", "distillation_loss_and_grad", "distillation_loss_grad"]

#: The largest block of rows, in float64 elements per work array (three of them). Measured on
#: the speed benchmark's rows of 1000 classes: 2^17 and 2^18 within 2 % of each other, 2^16
#: 5-10 % slower, 2^15 10-20 %.
_ROWS_BLOCK = 2 * BLOCK
#: Rows whose b_k (for a float64 result measured from the second centre, so close to
#: r_k = log(q_k/p_k)) exceeds this are computed by _log_rows, which chooses the form per class:
#: q_k = p_k e^(b_k)/(1 + S) would carry the rounding of the student's side into a q_k e^(b_k)
#: times larger than p_k (and beyond some 700, e^(b_k) overflows). Below it, a float64 result
#: takes q_k from the teacher in rows with an r_k above _TEACHER_R (_teacher_side). Measured on
#: rows with one class placed at b_k from 2.5 to 5.5 (600 a range, largest gradient error in
#: max(1, kappa) ULP, with a kappa since corrected upwards): 7.6 on [2.5, 3.5], 3.9 on
#: [3.5, 4.5], 4.4 on [4.5, 5.5]. 3.5 for _FAR_B itself was as accurate but 1.04 times the
#: naive formula's time on the speed benchmark's rows at T = 1 (float64), against 0.9 with
#: _teacher_side. A float32 result skips _teacher_side, for speed (its rounding hides the
#: difference in most rows, not all: see the module), and _FAR_B_32 keeps more of its rows in
#: the block form.
_FAR_B = 5.0
_TEACHER_R = 3.5
_FAR_B_32 = 8.0
#: Rows whose sum_k p_k |r_k| exceeds this multiple of their KL sum psi(r_k) as a series where
#: |r_k| <= _NEAR: the direct psi(r) = r + r expm1(r) - expm1(r) cancels to r^2/2 there, with an
#: error of about 2 eps |r|, 2 eps sum_k p_k |r_k| in the KL: up to some 16 eps of it below the
#: switch (a row of logits small beside T was 13.6 ULP off, 6.2 max(1, kappa)). 2 would halve
#: that bound but send rows of logits small beside T (early in training) to the series, at
#: 1.6 times the naive formula's time in float64 and 2.9 in float32, for about 1.7 ULP.
_SERIES = 8.0
_NEAR = 0.5
#: Below this r_k, psi(r_k) is 1 + (r_k - 1) e^(r_k) (_psi_below), for a float64 result. Measured
#: on r alone (float64, against mpmath, 4000 points a range), that form is within 3 ULP of psi
#: on [-2, -1.5] and 1 below -3, the direct form about 4 on [-4, -2] and 30 on [-30, -8]; in
#: the kernel, where V comes from S and expm1(b), rows with an r_k between -4 and -1.5 had the
#: direct form's loss 5 to 9 max(1, kappa) ULP off.
_BELOW = -1.5
#: (n - 1)/n! for n = 2..22: psi(r) = 1 + (r - 1) e^r = r^2 sum_n (n - 1)/n! r^(n - 2).
_PSI = tuple((n - 1) / math.factorial(n) for n in range(2, 23))


def _psi_terms(largest: float) -> int:
    """How many terms of psi(r) / r^2 = sum_{n>=2} (n - 1) r^(n-2) / n! keep psi to 2^-54 of
    itself for |r| <= ``largest`` (at most 1/2): the first term left out below 2^-55."""
    n = 2
    while n < len(_PSI) + 1 and largest ** (n - 1) * n / math.factorial(n + 1) > 2.0**-55:
        n += 1
    return n - 1


def _temperature(value: object) -> float:
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise TypeError(f"temperature must be a positive real number, got {value!r}")
    try:
        temperature = float(value)
    except OverflowError:
        raise ValueError("temperature must be positive and finite, got an integer beyond the "
                         "float64 range") from None
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be positive and finite, got {value!r}")
    return temperature


def _scale(x: NDArray[np.float64], temperature: float) -> None:
    """``x /= T`` in place: a multiplication where 1/T is exact (T a power of 2)."""
    if temperature == 1.0:
        return
    if math.frexp(temperature)[0] == 0.5:
        x *= 1.0 / temperature
    else:
        x /= temperature


def _complement(diff: NDArray[np.float64], top: NDArray[np.intp]) -> None:
    """Replace ``diff[i, top[i]]`` by minus the sum of the row's other entries (in place).

    For a class whose p or q exceeds 1/2, p - q is a difference of two numbers near 1 whose
    complements (the other classes' probabilities) are known to better relative accuracy.
    """
    rows = np.arange(len(top))
    others = diff.copy()
    others[rows, top] = 0.0
    diff[rows, top] = -others.sum(axis=1)


def _recentre(
    z: NDArray[np.floating], t: NDArray[np.floating], temperature: float,
    centre: NDArray[np.float64], P: NDArray[np.float64], B: NDArray[np.float64],
    E: NDArray[np.float64], s: NDArray[np.float64], total: NDArray[np.float64],
) -> None:
    r"""Measure ``B``'s :math:`b = a - c` again from ``centre``, the first estimate of
    :math:`\log \sum_k p_k e^{a_k}`, and find :math:`E` and :math:`S` again (in place).

    :math:`r_k = b_k - \log(1 + S)` carries the rounding of both terms, about
    :math:`\varepsilon (|b_k| + |\log(1 + S)|)`, and the mean :math:`\sum_k p_k a_k` that
    :math:`b` is first measured from can lie far from :math:`\log \sum_k p_k e^{a_k}`: a class
    that the teacher makes negligible but the student does not pulls it by :math:`p_k a_k`, and
    the other classes' :math:`r_k`, small, are then differences of two numbers of that size
    (and even a small :math:`\log(1 + S)` is large beside an :math:`r_k` near 0). Measured from
    the first estimate instead (:math:`a` formed again, so that taking the centre away is
    rounded relative to :math:`b_k`), :math:`b` is close to :math:`r` and :math:`S` close to 0.
    """
    if z.dtype == t.dtype == np.float64:
        np.subtract(t, z, out=B)
    else:
        np.copyto(B, t)
        B -= z
    _scale(B, temperature)  # a, as in _kernel
    B -= centre[:, None]
    np.expm1(B, out=E)
    np.divide(np.vecdot(P, E), total, out=s)


def _teacher_side(
    rows: NDArray[np.intp], t: NDArray[np.floating], temperature: float,
    P: NDArray[np.float64], B: NDArray[np.float64], E: NDArray[np.float64],
    s: NDArray[np.float64], total: NDArray[np.float64],
) -> None:
    r"""In ``rows``, take :math:`q_k` from the teacher's softmax where :math:`r_k > 1` and find
    :math:`S` again with it (in place: ``E``'s :math:`\operatorname{expm1}(b_k)` there, and
    ``s``; ``B`` holds :math:`b`), a sixteenth of the block's rows at a time.

    :math:`q_k = p_k e^{r_k}` carries the rounding of :math:`p_k`, relative
    :math:`\varepsilon |z_k - \max z|/T`, and of :math:`r_k`, relative
    :math:`\varepsilon r_k`, into :math:`p_k - q_k \approx -q_k` where :math:`q_k` is several
    times :math:`p_k`, and into :math:`S`, which every other class's :math:`r_j` depends on; both
    can be large beside the condition number (a student with most of its mass on one class and
    its other logits small beside :math:`T`; one class far below the teacher's). Taken from
    :math:`e^{(t_k - \max t)/T}`, :math:`q_k` carries the teacher's own rounding. With
    :math:`L` those classes and :math:`q_L`, :math:`p_L` their masses,
    :math:`1 + S = \sum_k p_k e^{b_k}` and :math:`p_k e^{b_k} = (1 + S) q_k` on :math:`L` give

    .. math::

        S = \frac{\sum_{k \notin L} p_k \operatorname{expm1}(b_k) + q_L - p_L}{1 - q_L},
        \qquad \operatorname{expm1}(b_k) = (1 + S)\,\frac{q_k}{p_k} - 1 \quad (k \in L),

    so that :math:`V_k = (S - \operatorname{expm1}(b_k))/(1 + S) = 1 - q_k/p_k` on :math:`L`;
    :math:`S` is found so only where :math:`1 - q_L \ge 1/2`.
    """
    chunk = max(1, len(P) // 16)
    for start in range(0, rows.size, chunk):
        part = rows[start : start + chunk]
        q = t[part].astype(np.float64)
        q -= np.max(q, axis=1, keepdims=True)
        _scale(q, temperature)
        np.exp(q, out=q)
        q /= q.sum(axis=1)[:, None]
        p = P[part] / total[part, None]
        e = E[part]
        large = (B[part] > (1.0 + np.log1p(s[part]))[:, None]) & (p > 0.0)
        q_small = np.where(large, 0.0, q).sum(axis=1)  # 1 - q_L, without the cancellation
        gap = np.where(large, q - p, 0.0).sum(axis=1)  # q_L - p_L
        # Found again only where the teacher's mass outside L is at least 1/2: a smaller
        # 1 - q_L would magnify the numerator's rounding; there S stays as it was.
        s_new = np.where(q_small >= 0.5,
                         (np.vecdot(np.where(large, 0.0, p), e) + gap) / np.maximum(q_small, 0.5),
                         s[part])
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = q / p
        np.subtract((1.0 + s_new)[:, None] * ratio, 1.0, out=e, where=large)
        E[part] = e
        s[part] = s_new


def _psi_below(R: NDArray[np.float64], W: NDArray[np.float64]) -> None:
    r"""Replace ``W``'s :math:`\psi(r_k)` by :math:`1 + (r_k - 1) e^{r_k}` where
    :math:`r_k` is below ``_BELOW`` (in place), a sixteenth of the rows at a time.

    There :math:`r - rV + V` (:math:`V = 1 - e^r`, from :math:`S` and
    :math:`\operatorname{expm1}(b)`) takes :math:`rV \approx r` from :math:`r` to leave
    :math:`r e^r`, so its error is of order :math:`\varepsilon (|r| + |1 - r| V)` beside
    :math:`\psi(r) \ge \psi(-1.5) = 0.44`: 30 ULP at :math:`r = -30`, 5 to 9 in rows with an
    :math:`r_k` between -4 and -1.5. In the form used here :math:`e^r` (from :math:`r` itself,
    whose rounding it carries) only adds to 1 a term :math:`(r - 1)e^r` between -0.56 and 0.
    """
    chunk = max(1, len(R) // 16)
    for start in range(0, len(R), chunk):
        flat_r = R[start : start + chunk].reshape(-1)
        low = np.flatnonzero(flat_r < _BELOW)
        if low.size:
            r = flat_r[low]
            W[start : start + chunk].reshape(-1)[low] = 1.0 + (r - 1.0) * np.exp(r)


def _series_rows(
    rows: NDArray[np.intp], P: NDArray[np.float64], R: NDArray[np.float64],
    W: NDArray[np.float64], temperature: float,
) -> NDArray[np.float64]:
    r"""Unnormalised :math:`T^2 \sum_k p_k \psi(r_k)` of the block's ``rows``, with
    :math:`\psi(r) = \sum_{n \ge 2} (n - 1) r^n / n!` (each term at most a third of the one
    before; of alternating sign where :math:`r < 0`) summed as a series wherever
    :math:`|r_k| \le 1/2`, to :math:`2^{-53}` of itself, and ``W``'s direct
    :math:`\psi` elsewhere. An eighth of the block at a time (copies and two temporaries)."""
    out = np.empty(rows.size)
    chunk = max(1, len(P) // 8)
    for start in range(0, rows.size, chunk):
        part = rows[start : start + chunk]
        r = R[part]
        small = np.abs(r) <= _NEAR
        x = np.where(small, r, 0.0)
        largest = float(np.max(np.abs(x))) if x.size else 0.0
        terms = _psi_terms(largest)
        psi = np.full_like(x, _PSI[terms - 1])
        for c in reversed(_PSI[: terms - 1]):
            psi *= x
            psi += c
        x *= temperature  # T^2 psi(r) = (T r)^2 (...): no underflow of r^2 at a large T
        psi *= x
        psi *= x
        direct = W[part]
        direct *= temperature
        direct *= temperature
        out[start : start + part.size] = np.vecdot(P[part], np.where(small, psi, direct))
    return out


def _log_rows(
    z: NDArray[np.float64], t: NDArray[np.float64], temperature: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    r"""T^2 KL and p - q of the rows with a b_k above _FAR_B, the form chosen per class.

    :math:`b` as in :func:`_kernel`, :math:`S = \sum_k p_k \operatorname{expm1}(b_k)` with
    each product :math:`p_k e^{b_k}` taken as :math:`e^{(\log p_k + a_k) - c}` where
    :math:`b_k > 1` (:math:`c` the centre that :math:`b = a - c` is measured from), and
    :math:`r = b - \operatorname{log1p}(S)` (:math:`b` and :math:`S` found a second time from
    the first estimate, as in :func:`_recentre`) for the classes with
    :math:`|r_k| < 1`, where :math:`p_k - q_k = -p_k \operatorname{expm1}(r_k)` and
    :math:`p_k \psi(r_k)` is summed from its series (:math:`|r_k| \le 1/2`); for the other
    classes :math:`r_k = \log q_k - \log p_k` from the two log-softmaxes and
    :math:`p_k \psi(r_k) = p_k + (r_k - 1) q_k`. Some ten temporaries of the rows' size.
    """
    log_p = z - np.max(z, axis=1, keepdims=True)
    _scale(log_p, temperature)
    p = np.exp(log_p)
    total = p.sum(axis=1, keepdims=True)
    a = t - z
    _scale(a, temperature)
    # A class with p_k = 0 adds nothing, even where its a_k overflows (0 * inf would be NaN).
    centre = np.sum(np.where(p > 0.0, p * a, 0.0), axis=1, keepdims=True) / total
    # log p_k + a_k = (t_k - max z)/T, formed so: the sum of the two, each of the size of
    # (z_k - max z)/T, would carry their rounding into q_k where p_k is negligible.
    log_pa = t - np.max(z, axis=1, keepdims=True)
    _scale(log_pa, temperature)
    for _ in range(2):  # the second time about log(sum_k p_k e^(a_k)): see _recentre
        b = a - centre
        terms = np.where(b > 1.0, np.exp(log_pa - centre) - p, p * np.expm1(
            np.minimum(b, 1.0)))
        log_s = np.log1p(terms.sum(axis=1, keepdims=True) / total)
        r = b - log_s
        centre = centre + np.where(np.isfinite(log_s), log_s, 0.0)
    log_p -= np.log(total)
    log_q = t - np.max(t, axis=1, keepdims=True)
    _scale(log_q, temperature)
    q = np.exp(log_q)
    q_total = q.sum(axis=1, keepdims=True)
    q /= q_total
    log_q -= np.log(q_total)
    p /= total
    # r from b where |r| < 1 and b's rounding, eps (|a_k| + |c|), is no larger than the
    # log-softmaxes', eps (|log q_k| + |log p_k|) (a saturated p_k = 1 from a logit far above
    # the others has a large a_k); the two log-softmaxes subtracted elsewhere.
    with np.errstate(invalid="ignore"):
        relative = (np.abs(r) < 1.0) & (np.abs(a) + np.abs(centre)
                                        <= np.abs(log_q) + np.abs(log_p))
        r = np.where(relative, r, log_q - log_p)
    near = np.abs(r) < 1.0
    diff = np.where(near, -p * np.expm1(np.clip(r, -1.0, 1.0)), p - q) + 0.0
    # As in _kernel: an entry whose q (or else p) exceeds 1/2 is minus the sum of the others.
    q_top = np.max(q, axis=1)
    over = np.flatnonzero((q_top > 0.5) | (np.max(p, axis=1) > 0.5))
    if over.size:
        top = np.where(q_top[over] > 0.5, np.argmax(q[over], axis=1),
                       np.argmax(p[over], axis=1))
        part = diff[over]
        _complement(part, top)
        diff[over] = part
    small = np.abs(r) <= _NEAR
    x = np.where(small, r, 0.0)
    psi = np.full_like(x, _PSI[-1])
    for c in reversed(_PSI[:-1]):
        psi *= x
        psi += c
    x *= temperature
    psi *= x
    psi *= x
    with np.errstate(invalid="ignore"):  # 0 * -inf where q_k = 0: 0 log 0 = 0
        direct = np.where(q > 0, (r - 1.0) * q, 0.0) + p
    direct *= temperature
    direct *= temperature
    kl = np.sum(np.where(small, p * psi, direct), axis=1)
    return np.maximum(kl, 0.0), diff


def _kernel(
    z: NDArray[np.floating],
    t: NDArray[np.floating],
    temperature: float,
    loss: NDArray[np.float64] | None,
    grad: NDArray[np.floating] | None,
    scratch: Scratch,
    divisor: float,
    check,
) -> None:
    r"""Fill ``loss`` (T^2 KL per row) and ``grad`` (T (p - q) / divisor) for a block of rows.

    The relative form: a = (t - z)/T, b = a - sum_k p_k a_k, E = expm1(b),
    S = sum_k p_k E_k, r = b - log1p(S) = log(q/p), V = (S - E)/(1 + S) = -expm1(r):

        KL = sum_k p_k psi(r_k),  psi(r) = r - r V + V = 1 + (r - 1) e^r >= 0,
        p_j - q_j = p_j V_j,

    For a float64 result: b measured again from a first estimate of log sum_k p_k e^(a_k)
    (:func:`_recentre`); in rows where p_max > 1/2 or an r_k exceeds _TEACHER_R, q_k from the
    teacher's softmax where r_k > 1, and S again (:func:`_teacher_side`); psi = 1 + (r - 1) e^r
    below r = _BELOW (:func:`_psi_below`). For every result: psi from its series where
    |r_k| <= 1/2 in the rows where sum_k p_k |r_k| exceeds _SERIES times the KL
    (:func:`_series_rows`), and rows with a b_k above _FAR_B (_FAR_B_32) or an overflow of
    e^(b_k) by :func:`_log_rows`. Four work arrays of the block's size: P (e^((z - max z)/T), p
    unnormalised), B (a, then b, then r), E (expm1(b), then V, then p V) and W (|r|, then psi).
    """
    n, k = z.shape
    float64_result = np.result_type(z, t) == np.float64
    P = scratch("p", n * k).reshape(n, k)
    B = scratch("b", n * k).reshape(n, k)
    E = scratch("e", n * k).reshape(n, k)
    top_z = np.max(z, axis=1).astype(np.float64)
    if z.dtype == t.dtype == np.float64:
        np.subtract(t, z, out=B)
        np.subtract(z, top_z[:, None], out=P)
    else:  # float64 copies first: numpy's mixed-type arithmetic is slower
        np.copyto(P, z)
        np.copyto(B, t)
        B -= P
        P -= top_z[:, None]
    _scale(P, temperature)
    _scale(B, temperature)  # a = (t - z)/T: t - z rounded once relative to itself
    np.exp(P, out=P)  # every entry in (0, 1], the largest exactly 1
    total = P.sum(axis=1)  # 1/p_max, at least 1
    shift = np.vecdot(P, B)
    shift /= total  # sum_k p_k a_k
    if not np.all(np.isfinite(shift)):
        # A NaN or infinite logit makes it NaN or infinite (an infinite a_k, or inf * 0): the
        # full checks, in the order and with the messages of the unblocked code, name it.
        # Finite logits whose difference overflows leave it for the far form below.
        check()
    B -= shift[:, None]
    np.expm1(B, out=E)
    s = np.vecdot(P, E)
    s /= total  # S = sum_k p_k expm1(b_k) >= -1
    overflow = ~np.isfinite(s)  # an e^(b_k) beyond the float range (or NaN): class by class
    if float64_result:
        # b measured again, from the first estimate of log sum_k p_k e^(a_k) (see _recentre).
        # A float32 result is the float64 one rounded once, far coarser than what this gains.
        _recentre(z, t, temperature, shift + np.log1p(s), P, B, E, s, total)
    # Measured so, b_k is close to r_k = log(q_k/p_k): rows where it is large go class by class.
    far = overflow | ~(np.max(B, axis=1) <= (_FAR_B if float64_result else _FAR_B_32))
    if float64_result:
        # Where r_k > 1, q_k = p_k e^(r_k) carries the rounding of p_k, relative
        # eps |z_k - max z|/T, and of r_k, relative eps r_k: the first matters in rows where
        # the student puts more than half its mass on one class, the second where an r_k
        # exceeds _TEACHER_R.
        largest_r = np.max(B, axis=1) - np.log1p(s)
        rows = np.flatnonzero(~far & (((total < 2.0) & (largest_r > 1.0))
                                      | (largest_r > _TEACHER_R)))
        if rows.size:
            _teacher_side(rows, t, temperature, P, B, E, s, total)
    one_s = 1.0 + s
    if grad is not None:
        rows = np.arange(n)
        top_t = np.argmax(t, axis=1)
        # q_k = p_k (1 + E_k) / (1 + S), largest where t is; p is largest (1/total) where z is.
        q_top = P[rows, top_t] * (1.0 + E[rows, top_t]) / (total * one_s)
    np.subtract(s[:, None], E, out=E)
    E *= (1.0 / one_s)[:, None]  # V = -expm1(r) = (S - E)/(1 + S) = 1 - q/p
    if loss is not None:
        B -= np.log1p(s)[:, None]  # r = b - log1p(S) = log q - log p
        W = scratch("w", n * k).reshape(n, k)
        np.abs(B, out=W)
        mass = np.vecdot(P, W)  # sum_k p_k |r_k|, unnormalised
        np.multiply(B, E, out=W)
        np.subtract(B, W, out=W)
        W += E  # psi(r) = r - r V + V = 1 + (r - 1) e^r >= 0
        if float64_result:  # a float32 result rounds the direct form's error away
            _psi_below(B, W)
        kl = np.vecdot(P, W)
        # psi(r) ~ r^2/2 is found with an absolute error of about 2 eps |r|, 2 eps sum_k p_k
        # |r_k| in the KL: rows where sum_k p_k |r_k| exceeds _SERIES times the KL take psi
        # from its series where |r_k| <= 1/2 (the rest of the row as above).
        series = np.flatnonzero(~(_SERIES * kl >= mass) & ~far)
        kl *= temperature
        kl *= temperature
        if series.size:
            kl[series] = _series_rows(series, P, B, W, temperature)
        kl /= total
        np.maximum(kl, 0.0, out=loss)
    if grad is not None:
        E *= P  # p V = p - q, unnormalised
        over = np.flatnonzero(((total < 2.0) | (q_top > 0.5)) & ~far)
        if over.size:
            top = np.where(q_top[over] * total[over] > 1.0, top_t[over],
                           np.argmax(z[over], axis=1))
            part = E[over]
            _complement(part, top)
            E[over] = part
        factor = temperature / divisor / total
        np.multiply(E, factor[:, None], out=grad)
    if np.any(far):
        _rows_by(far, z, t, temperature, loss, grad, divisor)


def _rows_by(
    chosen: NDArray[np.bool_],
    z: NDArray[np.floating],
    t: NDArray[np.floating],
    temperature: float,
    loss: NDArray[np.float64] | None,
    grad: NDArray[np.floating] | None,
    divisor: float,
) -> None:
    """Recompute the ``chosen`` rows of a block by :func:`_log_rows`.

    A sixteenth of the block's rows at a time at most, so that the gathered copies and the
    temporaries (some ten arrays of their size) add less than one work array to the block's
    memory.
    """
    index = np.flatnonzero(chosen)
    chunk = max(1, len(z) // 16)
    for start in range(0, index.size, chunk):
        part = index[start : start + chunk]
        kl, diff = _log_rows(z[part].astype(np.float64), t[part].astype(np.float64),
                             temperature)
        if loss is not None:
            loss[part] = kl
        if grad is not None:
            diff *= temperature / divisor
            grad[part] = diff


def _distillation(
    student_logits: ArrayLike,
    teacher_logits: ArrayLike,
    temperature: object,
    reduction: object,
    axis: object,
    *,
    loss: bool = True,
    grad: bool = True,
) -> tuple[Loss | None, NDArray[np.floating] | None]:
    z = validation.float_array(student_logits, "student_logits")
    t = validation.float_array(teacher_logits, "teacher_logits")
    if z.shape != t.shape:
        raise ValueError(
            f"teacher_logits of shape {t.shape} must have the shape of student_logits, {z.shape}"
        )
    temp = _temperature(temperature)
    reduction = validation.reduction(reduction)
    ax = validation.class_axis(z.shape, axis, "student_logits")

    def check() -> None:
        validation.finite(z, "student_logits")
        validation.finite(t, "teacher_logits")

    dtype = np.result_type(z, t)
    zr, tr = Rows(z, ax), Rows(t, ax)
    count, classes = zr.count, zr.classes
    if count == 0:
        check()
        if reduction == "mean":
            raise ValueError("reduction='mean' needs at least one row of logits")
    divisor = float(count) if reduction == "mean" and count else 1.0
    # The block's work arrays within 7.5 % of the inputs and outputs: four float64 arrays
    # (32 bytes per element), and some 25 float64 or int64 numbers per row.
    inputs = z.nbytes + t.nbytes
    outputs = z.size * dtype.itemsize * grad + (loss and reduction == "none") * count * 8
    step, lanes, scratch = row_blocking(count, classes, inputs + outputs, 32, 200, _ROWS_BLOCK)
    losses = None
    if loss:
        work = [Scratch(lanes)(name, lanes) for name in ("sum0", "sum1", "sum2")]
        losses = LossReduction(reduction, zr.lead, dtype, lanes, work)
    loss_rows = None if losses is None or losses.out is None else losses.out.reshape(-1)
    grad_out = np.empty((count, classes), dtype) if grad else None
    # exp and expm1 underflow to 0 (or -1), the correct results; overflow, inf - inf and
    # 0 * inf arise only in rows that the far form then recomputes.
    finite = True  # every block's losses and gradient entries
    with np.errstate(under="ignore", over="ignore", invalid="ignore", divide="ignore"):
        for start in range(0, count, step):
            stop = min(count, start + step)
            loss_block = None if losses is None else Scratch(lanes)("loss", stop - start)
            grad_block = None if grad_out is None else grad_out[start:stop]
            _kernel(zr.block(start, stop), tr.block(start, stop), temp, loss_block,
                    grad_block, scratch, divisor, check)
            finite &= loss_block is None or bool(np.isfinite(loss_block).all())
            finite &= grad_block is None or bool(np.isfinite(grad_block).all())
            if loss_rows is not None:
                loss_rows[start:stop] = loss_block
            elif losses is not None:
                losses.add(loss_block)
    if grad_out is not None:
        grad_out = np.moveaxis(grad_out.reshape(zr.moved.shape), -1, ax)
    result = losses.result(divisor) if losses else None
    if not (finite and (result is None or bool(np.all(np.isfinite(result))))):
        # The logits are finite: an overflow of (x - y)/T, or of the loss itself. (A form that
        # divided nothing by T was tried and withdrawn: where the overflowing difference is a
        # class with p = q = 0, it was 1e11 ULP off.)
        raise ValueError(
            f"temperature={temp!r} is too small for these logits: the logits' differences "
            f"divided by the temperature, or the loss, overflow {dtype.name}")
    return result, grad_out


def distillation_loss(
    student_logits: ArrayLike,
    teacher_logits: ArrayLike,
    *,
    temperature: float,
    reduction: Reduction = "mean",
    axis: int = -1,
) -> Loss:
    r"""Distillation loss :math:`T^2 \operatorname{KL}(\operatorname{softmax}(t/T) \,\Vert\,
    \operatorname{softmax}(z/T))` of student logits :math:`z` against teacher logits :math:`t`.

    .. math::

        L(z) = T^2 \sum_k q_k \log\frac{q_k}{p_k}, \qquad
        p = \operatorname{softmax}(z/T), \quad q = \operatorname{softmax}(t/T).

    The factor :math:`T^2` keeps the gradient's size comparable across temperatures [1]_;
    without it the gradient falls like :math:`1/T^2`. Derived, with how it is computed, in
    "Distillation at a temperature" (see also the module :mod:`lossgrad.distillation`).

    Accuracy, measured, not proved: in float64 the loss and every gradient entry were within
    :math:`8\max(1, \kappa)` ULP of the exact values on the seeded samples of the chapter and
    of the tests, the tests' rows that broke earlier versions, and the rows built against each
    form in ``benchmarks/accuracy.py`` (the largest found: 4.8 for the loss, 5.1 for a gradient
    entry), :math:`\kappa` the condition number with respect to both sets of logits
    (``lossgrad.accuracy.distillation_condition``). That is not a bound. Larger samples built
    against the remaining roundings found about 10 (a class near the far switch, one class far
    below the others, two classes with :math:`\sum_k p_k |r_k|` just below 8 times the KL), 22 with
    100 to 200 classes (sums of many equal terms) and 24 (a teacher that puts one class
    :math:`10^{2.5}` to :math:`10^6 T` below the rest); where :math:`\kappa u` is not small, a
    first-order :math:`\kappa` says nothing; and where the logits' differences overflow at a
    temperature near the largest float, or the logits divided by :math:`T` underflow, results
    can be off by several percent.
    Float32 inputs are computed in float64 and the result rounded once, without the float64
    result's three extra steps (see the module).

    Parameters
    ----------
    student_logits : array_like of float, shape (..., K, ...)
        The student's logits :math:`z`, classes along ``axis``; finite.
    teacher_logits : array_like of float
        The teacher's logits :math:`t`, of the same shape; finite.
    temperature : float
        :math:`T > 0`, applied to both.
    reduction : {"none", "mean", "sum"}, default "mean"
        Over the rows: the mean divides the accurately rounded sum by the number of rows.
    axis : int, default -1
        The class axis.

    Returns
    -------
    ndarray or numpy scalar
        The loss in nats, of the logits' shape without the class axis for ``"none"``.

    Raises
    ------
    TypeError
        If the logits are not float32 or float64, or ``temperature`` or ``axis`` has the wrong
        type.
    ValueError
        If the shapes differ, a logit is not finite, ``temperature`` is not positive and
        finite, ``reduction`` or ``axis`` is not valid, or the logits' differences divided by
        the temperature, or the loss, overflow.

    References
    ----------
    .. [1] G. Hinton, O. Vinyals and J. Dean, Distilling the knowledge in a neural network,
       2015. https://arxiv.org/abs/1503.02531

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad.distillation import distillation_loss
    >>> t = np.array([2.0, 1.0, -1.0])
    >>> float(distillation_loss(t, t, temperature=4.0))
    0.0
    >>> round(float(distillation_loss(np.zeros(3), t, temperature=4.0)), 6)
    0.692816

    A student far below the teacher's probability, where a rounded softmax underflows:

    >>> z = np.array([0.0, -1000.0])
    >>> round(float(distillation_loss(z, np.zeros(2), temperature=1.0)), 10)
    499.3068528194
    >>> p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    >>> with np.errstate(divide="ignore"):
    ...     float(np.sum(0.5 * np.log(0.5 / p)))
    inf
    """
    return _distillation(student_logits, teacher_logits, temperature, reduction, axis,
                         grad=False)[0]


def distillation_loss_grad(
    student_logits: ArrayLike,
    teacher_logits: ArrayLike,
    *,
    temperature: float,
    reduction: Reduction = "mean",
    axis: int = -1,
) -> NDArray[np.floating]:
    r"""Gradient of :func:`distillation_loss` with respect to the student's logits.

    .. math::

        \frac{\partial L}{\partial z_j} = T\,\bigl(\operatorname{softmax}(z/T)_j
            - \operatorname{softmax}(t/T)_j\bigr),

    divided by the number of rows for ``reduction="mean"``. Derived in "Distillation at a
    temperature". Parameters, errors and accuracy as for :func:`distillation_loss`.

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad.distillation import distillation_loss_grad
    >>> distillation_loss_grad(np.zeros(2), np.array([1.0, -1.0]), temperature=2.0)
    array([-0.46211716,  0.46211716])
    """
    return _distillation(student_logits, teacher_logits, temperature, reduction, axis,
                         loss=False)[1]


def distillation_loss_and_grad(
    student_logits: ArrayLike,
    teacher_logits: ArrayLike,
    *,
    temperature: float,
    reduction: Reduction = "mean",
    axis: int = -1,
) -> tuple[Loss, NDArray[np.floating]]:
    """:func:`distillation_loss` and :func:`distillation_loss_grad` in one pass.

    Derived in "Distillation at a temperature".

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad.distillation import distillation_loss_and_grad
    >>> loss, grad = distillation_loss_and_grad(np.zeros((1, 2)), np.zeros((1, 2)),
    ...                                         temperature=3.0)
    >>> float(loss), grad
    (0.0, array([[0., 0.]]))
    """
    return _distillation(student_logits, teacher_logits, temperature, reduction, axis)
