"""Statistics the reports compute themselves: paired win rates with bootstrap intervals."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass
class PairedComparison:
    """How often A's reward beats B's on the same prompts (ties count half)."""

    n: int
    win_rate: float
    ci_low: float
    ci_high: float
    mean_difference: float  # mean of A - B over the shared prompts
    confidence: float


def win_rate(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.mean((a > b) + 0.5 * (a == b)))


def paired_win_rate(
    a: np.ndarray,
    b: np.ndarray,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> PairedComparison:
    """Win rate of a over b (same prompt in the same position) with a percentile bootstrap
    interval that resamples prompts, keeping each pair together."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError("paired rewards must be two 1-d arrays of the same length")
    n = len(a)
    if n == 0:
        nan = float("nan")
        return PairedComparison(0, nan, nan, nan, nan, confidence)
    scores = (a > b) + 0.5 * (a == b)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, n, size=(resamples, n))
    boot = scores[picks].mean(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(boot, [tail, 1 - tail])
    return PairedComparison(
        n, float(scores.mean()), float(low), float(high), float(np.mean(a - b)), confidence
    )


def shared_prompts(
    a: pd.DataFrame, b: pd.DataFrame, keys=("prompt_index", "decoding")
) -> pd.DataFrame:
    """Evaluation samples of two runs joined on the same prompt and decoding.

    Rows whose prompt text differs between the runs (another held-out set behind the same
    index) are left out. The result has ``reward_a`` and ``reward_b``.
    """
    keys = list(keys)
    left = a[keys + ["prompt", "reward"]]
    right = b[keys + ["prompt", "reward"]]
    joined = left.merge(right, on=keys, suffixes=("_a", "_b"))
    return joined[joined["prompt_a"] == joined["prompt_b"]].reset_index(drop=True)
