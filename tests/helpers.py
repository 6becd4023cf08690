"""Helpers that run the real parse and load code on small inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from scrapewatch.config import Config, load_config
from scrapewatch.ingest.formats import get_format
from scrapewatch.ingest.read import FileLoad, load_file
from scrapewatch.ingest.sources import LogSource
from scrapewatch.pipeline import connect
from scrapewatch.sql import Params, run


def parse_file(path: Path, fmt: str, config: Config | None = None) -> list[dict[str, Any]]:
    """Every line of `path` through format `fmt`'s parse query, as dicts."""
    config = config or load_config()
    con = connect()
    with LogSource.open(path) as source:
        lines = pa.concat_arrays(list(source.blocks()))
    con.register("block", pa.table({"line_no": pa.array(range(1, len(lines) + 1), pa.int64()),
                                    "line": lines}))
    params = Params()
    query = get_format(fmt).parse_sql(config.input, params)
    result = con.execute(query + " ORDER BY line_no", params.values)
    names = [d[0] for d in result.description]
    return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


def load(path: Path, fmt: str = "auto", config: Config | None = None
         ) -> tuple[FileLoad, list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Load `path` as scan does: (summary, requests rows, rejects rows), by line."""
    con = connect()
    with LogSource.open(path) as source:
        loaded = load_file(con, source, file_id=0, format_name=fmt,
                           config=config or load_config(), keep_requests=True)
    requests = run(con, "SELECT line_no, sec, entity_kind, entity, status, posts, observed, "
                        "counted FROM requests ORDER BY line_no")
    rejects = run(con, "SELECT line_no, reason, text FROM rejects ORDER BY line_no")
    return loaded, requests, rejects
