"""Where detection runs. Its SQL is written once (detect/windows.py, the evidence query
of report/evidence.py) and its damages policy once (damages.py); an engine runs both.

DuckDB (engine/duckdb.py) runs the statements in-process and prices each flagged entity
as its activity streams out; Spark (engine/spark.py) runs the same statements on a
cluster and prices each entity on the executor that holds it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import pyarrow as pa

from scrapewatch.config import Policy
from scrapewatch.damages import Activity, Assessment, assess
from scrapewatch.detect.windows import EntityWindow
from scrapewatch.report.charts import EntitySeries, entity_series

Priced = tuple[EntityWindow, Assessment, EntitySeries]


class Engine(Protocol):
    """What detection needs of an SQL engine."""

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """All rows of a query."""

    def create(self, name: str, sql: str) -> None:
        """Make temp table `name` hold the rows of `sql` (replacing it)."""

    def put(self, name: str, table: pa.Table) -> None:
        """Make temp table `name` hold `table` (replacing it)."""

    def parts_read(self) -> None:
        """Called once `activity` and `evidence` are built: the parts may go."""

    def priced(self, flagged: list[EntityWindow], policy: Policy) -> Iterator[Priced]:
        """Each flagged entity with its assessment and series, in any order."""


def price(activity: Activity, policy: Policy) -> tuple[Assessment, EntitySeries]:
    """One entity's charged periods and damages, and what its charts draw."""
    assessment = assess(activity, policy)
    return assessment, entity_series(activity, policy, assessment.periods)
