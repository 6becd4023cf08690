"""Shared test helpers and paths."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"
SAMPLE_LOGS = ROOT / "sample_logs"
sys.path.insert(0, str(Path(__file__).parent))  # the oracle and helpers modules
# benchmarks.generate, which is not installed; last, so that `scrapewatch` is the
# installed package (with its native extension, which `pip install .` builds)
sys.path.append(str(ROOT))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "corpus: needs ../shared/corpus")


@pytest.fixture
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.skip("the shared corpus is not next to this checkout")
    return CORPUS
