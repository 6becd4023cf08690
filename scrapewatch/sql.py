"""The one place SQL text is assembled from names: identifiers are checked, then quoted.

Values (thresholds, regexes, paths, times) are never pasted into SQL: queries bind them
as parameters. Only identifiers that scrapewatch itself chose, or that passed
`quote_ident`'s check, appear in query text.
"""

import re
from typing import Any

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def quote_ident(name: str) -> str:
    """Quote a SQL identifier after checking it is a plain name.

    Raises:
        ValueError: when `name` is not letters, digits and underscores.
    """
    if not _IDENT.match(name):
        raise ValueError(f"not a valid SQL identifier: {name!r}")
    return f'"{name}"'


class Params:
    """Collects bound parameters for one query and hands out their `$name` placeholders."""

    def __init__(self) -> None:
        self.values: dict[str, object] = {}

    def bind(self, value: object) -> str:
        """Bind `value` and return the placeholder that refers to it."""
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"${name}"


def run(con: Any, query: str, params: dict[str, object] | None = None) -> list[tuple[Any, ...]]:
    """Execute `query` with bound `params` and return all its rows (none for DDL).

    Fetching everything completes the statement, which DuckDB requires before the
    connection runs the next one.
    """
    return con.execute(query, params or {}).fetchall()  # type: ignore[no-any-return]


# scrapewatch's in-memory database, which `engine.duckdb.connect` makes and `cursor` uses
WORK = "work"


def cursor(con: Any) -> Any:
    """A new cursor of the connection `con` (from `engine.duckdb.connect`), set up as it is:
    UTC, and its tables and macros those of WORK."""
    new = con.cursor()
    run(new, "SET TimeZone = 'UTC'")
    run(new, f"USE {WORK}")
    return new


def insert_arrow(con: Any, table: str, rows: Any, select: str = "*") -> None:
    """Insert the Arrow table `rows` into `table` (a name scrapewatch chose), through
    `select` over its columns."""
    con.register("sw_rows", rows)
    try:
        run(con, f"INSERT INTO {table} SELECT {select} FROM sw_rows")
    finally:
        con.unregister("sw_rows")
