"""Counter-based random numbers: a draw is a pure function of (seed, stream, person, k).

Each procedure owns a stream and each person keeps one counter per stream, so a reform that
changes how often one procedure draws cannot shift the draws of any other procedure (common
random numbers), and a run is the same bit for bit whatever the order or number of workers.
The mixer is SplitMix64's finaliser (Steele, Lea & Flood 2014), applied to the folded key.
"""

from __future__ import annotations

import enum
import math

import numpy as np

from .jit import kernel
from .state import FNEVER

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_ONE = np.uint64(1)
_TWO53 = 1.0 / 9007199254740992.0


class Stream(enum.IntEnum):
    """One stream per procedure of the paper; the order is part of the model's identity."""

    ENTRY = 0  # registration: attributes drawn at entry
    USE = 1  # drug use and relapse (the true state)
    TEST = 2  # scheduled urine tests: done or not, result
    ID_USE = 3  # identity-document uses by venue
    POLICE = 4  # police response to alerts
    INSPECT = 5  # unscheduled home/workplace inspections
    ENCOUNTER = 6  # police encounters outside the DCS while using
    PATHWAY = 7  # treatment orders and their outcomes
    EXIT = 8  # exit practice: record updates, partial release
    DEATH = 9  # death or leaving the country
    ERRORS = 10  # data errors and their correction
    APP = 11  # monitoring-app alerts
    ALERT_TOTALS = 12  # alerts that reach nobody, counted by locality, month and venue


@kernel(inline="always")
def _mix(z: np.uint64) -> np.uint64:
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@kernel
def person_key(seed: int, stream: int, person: int) -> np.uint64:
    """Key of one person's stream; draws are then indexed by the event counter k."""
    h = _mix(np.uint64(seed) * _GOLDEN + np.uint64(stream) + _ONE)
    return _mix(h ^ (np.uint64(person) * _M2 + _GOLDEN))


@kernel(inline="always")
def uniform(key: np.uint64, k: int) -> float:
    """Uniform on [0, 1) for draw number k of a keyed stream."""
    return float(_mix(np.uint64(key) + np.uint64(k) * _GOLDEN) >> _S11) * _TWO53


@kernel(inline="always")
def exponential(key: np.uint64, k: int) -> float:
    """Standard exponential (mean 1) for draw number k."""
    return -np.log(1.0 - uniform(key, k))


@kernel
def poisson(key: np.uint64, mean: float) -> int:
    """A Poisson count from draws 0, 1, ... of one keyed stream.

    Small means by inversion; from 10 on by Hormann's transformed rejection with squeeze
    (PTRS; Hormann 1993, Insurance: Mathematics and Economics 12:39-45), which takes about
    1.2 pairs of draws whatever the mean, so a count of millions costs a few draws.
    """
    if mean <= 0.0:
        return 0
    if mean < 10.0:
        u = uniform(key, 0)
        p = math.exp(-mean)
        cdf, n = p, 0
        while u > cdf:
            n += 1
            p *= mean / n
            if p < 1e-18:  # the rest of the tail cannot move cdf in floating point
                break
            cdf += p
        return n
    slam, loglam = math.sqrt(mean), math.log(mean)
    b = 0.931 + 2.53 * slam
    a = -0.059 + 0.02483 * b
    inv_alpha = 1.1239 + 1.1328 / (b - 3.4)
    v_r = 0.9277 - 3.6224 / (b - 2.0)
    i = 0
    while True:
        u = uniform(key, i) - 0.5
        v = uniform(key, i + 1)
        i += 2
        us = 0.5 - abs(u)
        n = math.floor((2.0 * a / us + b) * u + mean + 0.43)
        if us >= 0.07 and v <= v_r:
            return int(n)
        if n < 0 or (us < 0.013 and v > us):
            continue
        if (math.log(v) + math.log(inv_alpha) - math.log(a / (us * us) + b)
                <= -mean + n * loglam - math.lgamma(n + 1.0)):
            return int(n)


# --- plain NumPy twin, used by the tests to check the compiled kernels bit for bit ----------


def _mix_np(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def person_key_np(seed: int, stream: int, person: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        h = _mix_np(np.asarray(np.uint64(seed) * _GOLDEN + np.uint64(stream) + _ONE))
        p = np.asarray(person, dtype=np.uint64)
        return _mix_np(h ^ (p * _M2 + _GOLDEN))


def uniform_np(key: np.ndarray, k: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        kk = np.asarray(k, dtype=np.uint64)
        return (_mix_np(np.asarray(key, dtype=np.uint64) + kk * _GOLDEN) >> _S11) * _TWO53


@kernel(inline="always")
def draw(keys: np.ndarray, counters: np.ndarray, stream: int) -> float:
    """Next uniform of a person's stream; the counter makes the draw's identity explicit."""
    u = uniform(keys[stream], counters[stream])
    counters[stream] += 1
    return u


@kernel(inline="always")
def peek(keys: np.ndarray, counters: np.ndarray, stream: int, offset: int) -> float:
    """Draw number counters[stream] + offset, without advancing: an event that owns a fixed
    block of draws computes only those it needs, and then skips the whole block."""
    return uniform(keys[stream], counters[stream] + offset)


@kernel(inline="always")
def chance(p: float, keys: np.ndarray, counters: np.ndarray, stream: int, offset: int) -> bool:
    """Whether draw `offset` of an event's block falls below p; the draw is not computed when
    p is 0 or 1 (its value could not change the answer), which keeps the result the same."""
    return p >= 1.0 or (p > 0.0 and peek(keys, counters, stream, offset) < p)


@kernel(inline="always")
def draw_exponential(keys: np.ndarray, counters: np.ndarray, stream: int) -> float:
    return -np.log(1.0 - draw(keys, counters, stream))


@kernel(inline="always")
def next_candidate(t: float, bound: float, keys: np.ndarray, counters: np.ndarray,
                   stream: int) -> float:
    """Next candidate after day t of a Poisson process thinned from rate `bound` a year (one
    draw); FNEVER when the bound is 0 (the process cannot fire)."""
    if bound <= 0.0:
        return FNEVER
    return t - 365.25 * math.log(1.0 - draw(keys, counters, stream)) / bound
