"""Helpers that run the real parse and load code on small inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from scrapewatch.config import Config, load_config
from scrapewatch.engine.duckdb import connect
from scrapewatch.reading.formats import get_format
from scrapewatch.reading.loaded import FileLoad
from scrapewatch.reading.read import load_file, prepared_blocks
from scrapewatch.reading.sniff import choose_format
from scrapewatch.reading.sources import LogSource
from scrapewatch.schema import FILE_TABLES
from scrapewatch.sql import Params, run

_CONNECTION: list[Any] = []


def _connection() -> Any:
    """One connection (see `connect`) for every helper, its tables emptied: a new one
    costs 17 ms, much of a property test's example."""
    if not _CONNECTION:
        _CONNECTION.append(connect())
    con = _CONNECTION[0]
    for table in FILE_TABLES:
        run(con, f"DELETE FROM {table}")
    return con


def parse_file(path: Path, fmt: str, config: Config | None = None) -> list[dict[str, Any]]:
    """Every line of `path` through format `fmt`'s parse query, as dicts."""
    config = config or load_config()
    con = _connection()
    with LogSource.open(path) as source:
        lines = pa.concat_arrays(list(source.blocks()))
    con.register("block", pa.table({"line_no": pa.array(range(1, len(lines) + 1), pa.int64()),
                                    "line": lines}))
    params = Params()
    query = get_format(fmt).parse_sql(config.input, params)
    result = con.execute(query + " ORDER BY line_no", params.values)
    names = [d[0] for d in result.description]
    rows = [dict(zip(names, row, strict=True)) for row in result.fetchall()]
    con.unregister("block")
    return rows


def load(path: Path, fmt: str = "auto", config: Config | None = None
         ) -> tuple[FileLoad, list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Load `path` as scan does: (summary, requests rows, rejects rows), by line."""
    con = _connection()
    with LogSource.open(path) as source:
        loaded = load_file(con, source, file_id=0, format_name=fmt,
                           config=config or load_config(), keep_requests=True)
    requests = run(con, "SELECT line_no, sec, entity_kind, entity, status, posts, observed, "
                        "counted FROM requests ORDER BY line_no")
    rejects = run(con, "SELECT line_no, reason, text FROM rejects ORDER BY line_no")
    return loaded, requests, rejects


def parse_rows(path: Path, fmt: str = "auto", config: Config | None = None
               ) -> tuple[str, list[dict[str, Any]]]:
    """(format, rows): every line of `path` as the loader parses it, block reader and
    all, as dicts of the parse query's columns by line number (directive lines have
    none)."""
    config = config or load_config()
    con = _connection()
    with LogSource.open(path) as source:
        blocks = list(source.blocks())
        chosen = choose_format(source, blocks[0], fmt)
    rows: list[dict[str, Any]] = []
    for parts, _ in prepared_blocks(chosen, iter(blocks), config):
        for relation, table, _ in parts:
            params = Params()
            if relation == "block":
                query = chosen.parse_sql(config.input, params)
            else:
                assert chosen.cut_sql is not None
                query = chosen.cut_sql(table.schema, config.input, params)
            con.register(relation, table)
            result = con.execute(query, params.values)
            names = [d[0] for d in result.description]
            rows += [{name: value for name, value in zip(names, row, strict=True)
                      if name != "pair"}  # the native cut's numbering of (path, query)
                     for row in result.fetchall()]
            con.unregister(relation)
    return chosen.name, sorted(rows, key=lambda row: row["line_no"])
