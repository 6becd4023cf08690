"""The README documents every setting and option, and the layering rules hold."""

from __future__ import annotations

import dataclasses
import re

from conftest import ROOT

from scrapewatch.cli import cli
from scrapewatch.config import Config

README = (ROOT / "README.md").read_text()


def test_every_config_key_is_documented() -> None:
    for section in dataclasses.fields(Config):
        assert f"[{section.name}]" in README
        for setting in dataclasses.fields(section.default_factory()):  # type: ignore[misc]
            assert re.search(rf"^{setting.name} =|\b{setting.name}\b", README, re.M), setting.name


def test_every_option_of_every_command_is_documented() -> None:
    for name, command in cli.commands.items():
        assert f"scrapewatch {name}" in README, name
        for param in command.params:
            for option in getattr(param, "opts", []):
                if option.startswith("--"):
                    assert option in README, (name, option)


def test_only_the_cli_imports_click() -> None:
    cli = ROOT / "scrapewatch" / "cli"
    for path in (ROOT / "scrapewatch").rglob("*.py"):
        if path.parent != cli:
            assert not re.search(r"^\s*(import|from) click", path.read_text(), re.M), path


def test_the_readme_shows_the_real_sample_output() -> None:
    golden = (ROOT / "tests/golden/sample_logs.table.txt").read_text()
    assert golden in README
