"""The pure parts of the benchmarks (bench/ is not a package: loaded by path)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_legibility_scores_edit_distance_cer_and_pace():
    leg = _load("legibility")
    assert leg.levenshtein("kitten", "sitting") == 3
    assert leg.levenshtein("", "abc") == leg.levenshtein("abc", "") == 3
    # whitespace is not ink: IAM's tokenised "Mr . Smith" read as "Mr. Smith" is perfect
    assert leg.cer("Mr. Smith", "Mr . Smith") == 0.0
    assert leg.cer("Mr Smith", "Mr . Smith") == pytest.approx(1 / 8)
    lines = [np.zeros((20, 3)), np.zeros((90, 3)), np.zeros((40, 3))]
    assert leg.pace(lines, ["abcd", "abc", "ab"]) == pytest.approx(20.0)  # median of 5, 30, 20
