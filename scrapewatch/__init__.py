"""scrapewatch: who accessed more than a million posts in 24 hours, and what they owe.

The Python API, for notebooks and orchestrators (Airflow, Dagster, Prefect); the
`scrapewatch` command is a client of it. Every function takes a `Config` (the
defaults when none is given; `load_config` reads a TOML file), and every failure it
reports on purpose is a `ScrapewatchError` with a one-line message. The README's
"Python API" has an example.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from scrapewatch.config import Config, load_config
from scrapewatch.errors import (
    ConfigError,
    EmptyInputError,
    FormatError,
    InputError,
    OutputError,
    RejectLimitError,
    SandboxError,
    ScrapewatchError,
    StoreBusyError,
    StoreError,
    TempFolderError,
    UnknownFormatError,
)
from scrapewatch.version import __version__

if TYPE_CHECKING:
    from scrapewatch.pipeline import scan
    from scrapewatch.reporting.custody import verify
    from scrapewatch.reporting.model import Report
    from scrapewatch.store import IngestRun, ingest, prune, query, report

# The names that load DuckDB, imported on first use: `scrapewatch --help` loads none.
_LAZY = {"scan": "scrapewatch.pipeline", "Report": "scrapewatch.reporting.model",
         "verify": "scrapewatch.reporting.custody",
         **dict.fromkeys(("IngestRun", "ingest", "prune", "query", "report"),
                         "scrapewatch.store")}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'scrapewatch' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


__all__ = [
    "Config", "ConfigError", "EmptyInputError", "FormatError", "IngestRun", "InputError",
    "OutputError", "RejectLimitError", "Report", "SandboxError", "ScrapewatchError",
    "StoreBusyError", "StoreError", "TempFolderError", "UnknownFormatError", "__version__",
    "ingest", "load_config", "prune", "query", "report", "scan", "verify",
]
