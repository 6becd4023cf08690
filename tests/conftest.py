"""Shared test helpers and paths."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
    config.addinivalue_line("markers", "spark_cluster: starts a standalone Spark cluster "
                                       "(a master and two workers) on this machine")


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """One local Spark session (2 cores, no UI, UTC) for every test that needs one."""
    pytest.importorskip("pyspark")
    if shutil.which("java") is None:
        pytest.skip("Spark needs Java")
    from scrapewatch.engine.spark import spark_session

    session = spark_session("local[2]")
    yield session
    session.stop()


@pytest.fixture
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.skip("the shared corpus is not next to this checkout")
    return CORPUS
