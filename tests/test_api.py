"""The Python API (`import scrapewatch`): what it exports, and the README's example."""

from __future__ import annotations

import re
import shutil
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import ROOT

import scrapewatch
from scrapewatch.errors import ScrapewatchError


def test_every_name_of_the_api_is_exported_and_every_error_is_a_scrapewatch_error() -> None:
    for name in scrapewatch.__all__:
        value = getattr(scrapewatch, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, ScrapewatchError), name
    errors = {name for name in scrapewatch.__all__ if name.endswith("Error")}
    import scrapewatch.errors as module

    assert errors == {name for name, value in vars(module).items()
                      if isinstance(value, type) and issubclass(value, ScrapewatchError)}


def test_the_readmes_example_runs_and_gives_the_sample_logs_answer(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Python API"):]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    shutil.copytree(ROOT / "sample_logs", tmp_path / "sample_logs")
    monkeypatch.chdir(tmp_path)
    names: dict[str, object] = {}
    exec(compile(code[1], "README.md", "exec"), names)  # our own README's code
    found = names["found"]
    assert isinstance(found, scrapewatch.Report)
    assert found.damages_usd == Decimal("60000.00")
    assert [f.window.entity for f in found.findings] == ["k-acme-scraper", "198.51.100.23"]
    assert names["march"].damages_usd == Decimal("60000.00")  # type: ignore[attr-defined]
    assert names["files"].to_pylist() == [{"files": 3}]  # type: ignore[attr-defined]
    nightly = names["nightly"]
    assert isinstance(nightly, scrapewatch.IngestRun) and len(nightly.added) == 3


def test_a_function_given_no_config_uses_the_defaults() -> None:
    found = scrapewatch.scan([str(ROOT / "sample_logs")])
    assert found.policy == scrapewatch.Config().policy
    assert found.damages_usd == Decimal("60000.00")
