"""Pearson's chi-square test of counts against an even split — the ECMP balance figure.

The p-value is the chi-square distribution's upper tail, ``Q(k/2, x/2)`` (the regularised
upper incomplete gamma function), computed here with the classic pair of expansions — a
power series below ``a + 1``, a continued fraction (modified Lentz) above — so the core
install needs no scipy for one number.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

_EPSILON = 1e-15
_TINY = 1e-300
_MAX_TERMS = 10_000


def upper_gamma_q(a: float, x: float) -> float:
    """The regularised upper incomplete gamma function Q(a, x) = Γ(a, x) / Γ(a).

    >>> round(upper_gamma_q(1.0, 1.0), 12) == round(math.exp(-1.0), 12)  # Q(1, x) = e^-x
    True
    >>> upper_gamma_q(3.0, 0.0)
    1.0
    """
    if x <= 0.0:
        return 1.0
    log_prefactor = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1.0:  # the series of the lower function P converges fast here
        term = total = 1.0 / a
        denominator = a
        for _ in range(_MAX_TERMS):
            denominator += 1.0
            term *= x / denominator
            total += term
            if abs(term) < abs(total) * _EPSILON:
                break
        return max(0.0, 1.0 - total * math.exp(log_prefactor))
    b = x + 1.0 - a  # continued fraction for Q
    c = 1.0 / _TINY
    d = 1.0 / b
    fraction = d
    for i in range(1, _MAX_TERMS):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = _TINY if abs(d) < _TINY else d
        c = b + an / c
        c = _TINY if abs(c) < _TINY else c
        d = 1.0 / d
        step = d * c
        fraction *= step
        if abs(step - 1.0) < _EPSILON:
            break
    return math.exp(log_prefactor) * fraction


def chi2_sf(statistic: float, dof: int) -> float:
    """P(X ≥ statistic) for X chi-square distributed with ``dof`` degrees of freedom.

    >>> round(chi2_sf(3.841458820694124, 1), 6)   # the 5 % critical value, 1 dof
    0.05
    >>> round(chi2_sf(18.307038053275146, 10), 6)  # and with 10
    0.05
    >>> round(chi2_sf(2.0, 2), 12) == round(math.exp(-1.0), 12)  # 2 dof: e^(-x/2)
    True
    """
    return upper_gamma_q(dof / 2.0, statistic / 2.0)


def chi_square(counts: Sequence[int]) -> tuple[float, float]:
    """Chi-square statistic of counts against an even split, and its p-value.

    >>> chi_square([25, 25, 25, 25])
    (0.0, 1.0)
    >>> statistic, p = chi_square([30, 20]); (statistic, round(p, 4))
    (2.0, 0.1573)
    """
    total = sum(counts)
    expected = total / len(counts)
    statistic = sum((c - expected) ** 2 for c in counts) / expected
    return float(statistic), chi2_sf(statistic, len(counts) - 1)
