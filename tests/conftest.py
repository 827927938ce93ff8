"""Shared fixtures: where the real datasets are, and small determinism helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

# Tests use tiny models: a second thread only adds synchronisation (and, on a busy machine, waiting).
torch.set_num_threads(1)


def _data_root() -> Path:
    env = os.environ.get("GRAVES_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def require_data(*parts: str) -> Path:
    """The path to a dataset under the data root; in CI a missing dataset fails the test, elsewhere skips it."""
    path = _data_root().joinpath(*parts)
    if not path.exists():
        msg = f"dataset not found: {path} (set GRAVES_DATA to the folder holding ptb/, iam-ondb/, ...)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@pytest.fixture
def data_root() -> Path:
    return require_data()


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    yield
