"""`scrapewatch formats`: every format --format takes, each with an example line."""

from __future__ import annotations

from click.testing import CliRunner

from scrapewatch.cli import cli
from scrapewatch.reading.formats import FORMATS


def test_formats_lists_every_format_with_an_example() -> None:
    result = CliRunner().invoke(cli, ["formats"])
    assert (result.exit_code, result.stderr) == (0, "")
    names = [line for line in result.stdout.splitlines() if not line.startswith(" ")]
    assert names == list(FORMATS)
    for fmt in FORMATS.values():
        assert fmt.example.split("\n")[0] in result.stdout, fmt.name
