"""The persistent store: one DuckDB file that nightly `ingest` runs fill and `report`,
`sql` and `prune` read.

It holds the per-(entity, second) activity of every file ingested (and, optionally, the
parsed requests), the rejects, a manifest of the files with their content hashes, and
the run history. A writer works in an in-memory database (which spills to disk like a
scan's) with the store attached as `store`: a file is loaded there, then copied into
the store in one transaction, so a crash leaves the store as it was before that file
and memory stays bounded however large the file. DuckDB's file lock lets one process
write at a time.

What a file adds is decided by its content (the decompressed bytes): content already in
the manifest adds nothing, and content that extends what is there (a log still being
appended to, or the same log rotated and compressed) adds only its new lines.

Its modules: `database` (the file, its tables and lock, the settings, the sandbox of
`sql`), `manifest` (what of a file an ingest adds) and `commands`.
"""

from scrapewatch.store.commands import IngestRun, ingest, prune, query, report
from scrapewatch.store.database import VIEWS

__all__ = ["VIEWS", "IngestRun", "ingest", "prune", "query", "report"]
