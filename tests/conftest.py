"""Shared test helpers and paths."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"
SAMPLE_LOGS = ROOT / "sample_logs"
sys.path.insert(0, str(Path(__file__).parent))  # the oracle and helpers modules
sys.path.insert(1, str(ROOT))  # benchmarks.generate, which is not installed


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "corpus: needs ../shared/corpus")


@pytest.fixture
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.skip("the shared corpus is not next to this checkout")
    return CORPUS
