r"""Calibration of predicted probabilities: reliability curves and the expected calibration error.

A model is *calibrated* when, among the examples to which it gives probability about
:math:`q`, a fraction about :math:`q` is positive. A reliability curve bins the predicted
probabilities and compares, bin by bin, their mean with the observed frequency of positives; the
expected calibration error is the mean absolute gap, weighted by the bins' sizes. Used in "Class
imbalance" to show what class weights do to a classifier's probabilities, and how subtracting
:math:`\log w` from its logits undoes it.

The bins are :math:`B` equal-width intervals of [0, 1], closed on the left and open on the
right, except the last, which also holds 1, with the edges ``numpy.linspace(0, 1, bins + 1)``.
Empty bins are left out. Probabilities are compared exactly with those float edges, as in
scikit-learn's ``calibration_curve``, so a decimal can land in the bin below the one it seems
to open: with ten bins the edge computed for 3/10 is 0.30000000000000004, and 0.3 goes to
[0.2, 0.3).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lossgrad import validation

__all__ = ["MAX_BINS", "ReliabilityCurve", "expected_calibration_error", "reliability_curve"]

#: The largest number of bins accepted. More bins would leave almost every bin empty, and
#: allocating them is all the work.
MAX_BINS = 1_000_000


@dataclass(frozen=True)
class ReliabilityCurve:
    """The result of :func:`reliability_curve`: one entry per non-empty bin, in order.

    Attributes
    ----------
    mean_predicted : ndarray of float64
        The mean predicted probability in each bin.
    observed_frequency : ndarray of float64
        The mean label in each bin: the fraction of positives, for labels 0 and 1.
    counts : ndarray of int64
        The number of examples in each bin.
    edges : ndarray of float64, shape (bins + 1,)
        The edges of all bins, empty ones included: ``numpy.linspace(0, 1, bins + 1)``.
    """

    mean_predicted: NDArray[np.float64]
    observed_frequency: NDArray[np.float64]
    counts: NDArray[np.int64]
    edges: NDArray[np.float64]


def _pairs(probabilities: ArrayLike, labels: ArrayLike) -> tuple[NDArray, NDArray]:
    q = validation.probabilities(probabilities, "probabilities")
    y = validation.probabilities(labels, "labels")
    for a, name in ((q, "probabilities"), (y, "labels")):
        if a.ndim != 1 or a.size == 0:
            raise ValueError(f"{name} must be a non-empty 1-D array, got shape {a.shape}")
        validation.finite(a, name)
    if q.shape != y.shape:
        raise ValueError(
            f"labels must have the shape of probabilities, {q.shape}, got {y.shape}"
        )
    return np.asarray(q, dtype=np.float64), np.asarray(y, dtype=np.float64)


def _bin_count(bins: object) -> int:
    if isinstance(bins, bool) or not isinstance(bins, numbers.Integral):
        raise TypeError(f"bins must be a positive integer, got {bins!r}")
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    if bins > MAX_BINS:
        raise ValueError(f"bins must be at most MAX_BINS = {MAX_BINS:,}, got {bins}")
    return int(bins)


def reliability_curve(
    probabilities: ArrayLike, labels: ArrayLike, *, bins: int = 10
) -> ReliabilityCurve:
    r"""Bin predicted probabilities and compare each bin's mean with its frequency of positives.

    Used in "Class imbalance". With :math:`B` equal-width bins and :math:`I_b` the examples
    whose predicted probability :math:`q_n` falls in bin :math:`b`,

    .. math::

        \bar q_b = \frac{1}{|I_b|} \sum_{n \in I_b} q_n, \qquad
        \bar y_b = \frac{1}{|I_b|} \sum_{n \in I_b} y_n .

    A calibrated model has :math:`\bar y_b \approx \bar q_b`: its points lie near the diagonal
    of a reliability diagram, a plot of :math:`\bar y_b` against :math:`\bar q_b`.

    Parameters
    ----------
    probabilities : array_like of float, shape (N,)
        Predicted probabilities of the positive class, in [0, 1].
    labels : array_like of float, shape (N,)
        Observed labels, 0 or 1 (values in between are averaged like any others).
    bins : int, default 10
        The number :math:`B` of equal-width bins of [0, 1], at most ``MAX_BINS``. The
        probabilities are compared exactly with the float edges: when ``bins=10``, 0.3 lies
        below the edge 0.30000000000000004 and goes to the bin [0.2, 0.3).

    Returns
    -------
    ReliabilityCurve
        :math:`\bar q_b`, :math:`\bar y_b` and :math:`|I_b|` for each non-empty bin, and the
        edges of all bins.

    Raises
    ------
    TypeError
        If ``probabilities`` or ``labels`` is not a float32 or float64 array, or ``bins`` is
        not an integer.
    ValueError
        If either array is not 1-D and non-empty, holds a value outside [0, 1] or a NaN, the
        shapes differ, or ``bins`` is below 1 or above ``MAX_BINS``.

    References
    ----------
    .. [1] A. Niculescu-Mizil and R. Caruana, Predicting good probabilities with supervised
       learning, *Proceedings of the 22nd International Conference on Machine Learning*,
       625-632, 2005. https://doi.org/10.1145/1102351.1102430

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad.calibration import reliability_curve
    >>> curve = reliability_curve(np.array([0.1, 0.15, 0.8, 0.9]),
    ...                           np.array([0.0, 1.0, 1.0, 1.0]), bins=2)
    >>> curve.mean_predicted, curve.observed_frequency, curve.counts
    (array([0.125, 0.85 ]), array([0.5, 1. ]), array([2, 2]))
    """
    q, y = _pairs(probabilities, labels)
    count = _bin_count(bins)
    edges = np.linspace(0.0, 1.0, count + 1)
    index = np.minimum((q * count).astype(np.int64), count - 1)
    # q * count may round across an edge; compare with the edges themselves.
    index -= q < edges[index]
    index += (index < count - 1) & (q >= edges[np.minimum(index + 1, count)])
    counts = np.bincount(index, minlength=count)
    filled = counts > 0
    sums_q = np.bincount(index, weights=q, minlength=count)[filled]
    sums_y = np.bincount(index, weights=y, minlength=count)[filled]
    n = counts[filled]
    return ReliabilityCurve(sums_q / n, sums_y / n, n.astype(np.int64), edges)


def expected_calibration_error(
    probabilities: ArrayLike, labels: ArrayLike, *, bins: int = 10
) -> float:
    r"""The bin-size-weighted mean absolute gap between predicted probabilities and frequencies.

    Used in "Class imbalance". With the bins of :func:`reliability_curve`,

    .. math::

        \mathrm{ECE} = \sum_{b} \frac{|I_b|}{N}\,\bigl|\bar q_b - \bar y_b\bigr| .

    It is 0 when every bin's mean prediction equals its frequency of positives. Naeini et al.
    [1]_ defined it over bins holding equally many of the sorted predictions; the equal-width
    bins here are those of Guo et al. [2]_. It is an estimate with caveats [3]_: it depends on
    the number of bins, so compare values computed with the same ``bins``; on a finite sample
    it is biased upwards, since even the true probabilities give bins whose frequencies differ
    from their means by chance; and it is not a proper score: a constant prediction at the base
    rate scores near 0 although it knows nothing about the input. Report it next to a proper
    score such as the log loss.

    Parameters
    ----------
    probabilities, labels, bins
        As for :func:`reliability_curve`.

    Returns
    -------
    float
        The expected calibration error, in [0, 1].

    Raises
    ------
    TypeError, ValueError
        As :func:`reliability_curve`.

    References
    ----------
    .. [1] M. P. Naeini, G. F. Cooper and M. Hauskrecht, Obtaining well calibrated
       probabilities using Bayesian binning, *Proceedings of the AAAI Conference on Artificial
       Intelligence* 29(1), 2901-2907, 2015. https://doi.org/10.1609/aaai.v29i1.9602
    .. [2] C. Guo, G. Pleiss, Y. Sun and K. Q. Weinberger, On calibration of modern neural
       networks, *Proceedings of the 34th International Conference on Machine Learning*,
       PMLR 70, 1321-1330, 2017. https://proceedings.mlr.press/v70/guo17a.html
    .. [3] A. Kumar, P. Liang and T. Ma, Verified uncertainty calibration, *Advances in
       Neural Information Processing Systems* 32, 2019. https://arxiv.org/abs/1909.10155;
       J. Nixon, M. W. Dusenberry, L. Zhang, G. Jerfel and D. Tran, Measuring calibration
       in deep learning, *CVPR Workshops*, 2019. https://arxiv.org/abs/1904.01685

    Examples
    --------
    >>> import numpy as np
    >>> from lossgrad.calibration import expected_calibration_error
    >>> expected_calibration_error(np.array([0.25, 0.75]), np.array([0.0, 1.0]), bins=2)
    0.25

    Each prediction is a quarter away from its label, in its own bin.
    """
    curve = reliability_curve(probabilities, labels, bins=bins)
    gaps = np.abs(curve.mean_predicted - curve.observed_frequency)
    return float(np.sum(curve.counts * gaps) / np.sum(curve.counts))
