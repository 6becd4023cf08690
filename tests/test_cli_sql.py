"""`scrapewatch sql`: the SQL sees the store only. No file outside it is read or written
(but in the one folder --allow-files opens), no ATTACH, no extension, and the settings
that make it so are locked."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import SAMPLE_LOGS

from scrapewatch.cli import cli
from scrapewatch.config import load_config
from scrapewatch.store import ingest, query

FLAG = "--allow-files DIR opens one folder for files"


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The store queried, and another store beside it that no query may touch."""
    folder = tmp_path_factory.mktemp("stores")
    store, other = folder / "s.db", folder / "other.db"
    ingest(store, [str(SAMPLE_LOGS)], config=load_config())
    ingest(other, [str(SAMPLE_LOGS / "nginx-access.log")], config=load_config())
    return store, other


def _sql(store: Path, *args: str, stdin: str | io.BytesIO | None = None,
         home: Path | None = None) -> Result:
    env = {"HOME": str(home)} if home else None
    return CliRunner().invoke(cli, ["sql", "--store", str(store), *args], input=stdin,
                              env=env)


def _refused(result: Result, what: str) -> None:
    """Exit 1, nothing on stdout, and one line on stderr: what is not allowed, and the
    flag that opens a folder."""
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert result.stderr == f"error: {what}\n"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_copy_to_a_file_outside_the_store_is_refused(stores: tuple[Path, Path],
                                                     tmp_path: Path) -> None:
    store, _ = stores
    target = tmp_path / "leak.csv"
    result = _sql(store, f"COPY (SELECT entity FROM activity) TO '{target}'")
    _refused(result, f'reading or writing "{target}" is not allowed: sql sees only the '
                     f"store; {FLAG}")
    assert not target.exists()


@pytest.mark.parametrize(("statement", "path"), [
    ("SELECT content FROM read_text('/etc/passwd')", "/etc/passwd"),
    ("SELECT * FROM glob('/root/*')", "/root/*"),
    ("SELECT * FROM read_csv('/etc/passwd', sep = ':')", "/etc/passwd"),
    ("SELECT * FROM sniff_csv('/etc/passwd')", "/etc/passwd"),
])
def test_reading_files_of_the_machine_is_refused(stores: tuple[Path, Path], statement: str,
                                                 path: str) -> None:
    _refused(_sql(stores[0], statement),
             f'reading or writing "{path}" is not allowed: sql sees only the store; {FLAG}')


def test_reading_another_csv_file_is_refused(stores: tuple[Path, Path],
                                            tmp_path: Path) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text("key\nk-secret\n")
    _refused(_sql(stores[0], f"SELECT * FROM read_csv('{secret}')"),
             f'reading or writing "{secret}" is not allowed: sql sees only the store; {FLAG}')


def test_another_store_can_be_neither_attached_nor_overwritten(
        stores: tuple[Path, Path]) -> None:
    store, other = stores
    before = _digest(other)
    _refused(_sql(store, f"ATTACH '{other}' AS o (READ_WRITE); DELETE FROM o.files"),
             f"ATTACH is not allowed: sql sees only the store ({FLAG}, not for ATTACH)")
    _refused(_sql(store, f"ATTACH '{store}' AS again"),  # not even the store itself
             f"ATTACH is not allowed: sql sees only the store ({FLAG}, not for ATTACH)")
    _refused(_sql(store, f"COPY (SELECT 1 AS x) TO '{other}'"),
             f'reading or writing "{other}" is not allowed: sql sees only the store; {FLAG}')
    assert _digest(other) == before
    assert query(other, "SELECT count(*) AS n FROM files").to_pylist() == [{"n": 1}]


@pytest.mark.parametrize("statement", ["INSTALL httpfs", "LOAD httpfs",
                                       "LOAD json",  # built into DuckDB, still refused
                                       "FORCE INSTALL spatial"])
def test_extensions_are_neither_installed_nor_loaded(stores: tuple[Path, Path],
                                                     statement: str) -> None:
    _refused(_sql(stores[0], statement),
             "INSTALL and LOAD of extensions are not allowed: sql sees only the store "
             f"({FLAG}, nothing more)")


@pytest.mark.parametrize(("statement", "setting"), [
    ("SET enable_external_access = true", "enable_external_access"),
    ("RESET enable_external_access", "enable_external_access"),
    ("SET lock_configuration = false", "lock_configuration"),
    ("SET autoinstall_known_extensions = true", "autoinstall_known_extensions"),
    ("SET allowed_directories = ['/']", "allowed_directories"),
    ("PRAGMA enable_profiling", "enable_profiling"),
])
def test_the_settings_that_close_it_cannot_be_changed(stores: tuple[Path, Path],
                                                      statement: str, setting: str) -> None:
    _refused(_sql(stores[0], statement),
             f'changing the setting "{setting}" is not allowed: the settings of sql are '
             f"locked so that it sees only the store ({FLAG})")


def test_the_session_is_closed_and_queries_still_work(stores: tuple[Path, Path]) -> None:
    result = _sql(stores[0], "SELECT current_setting('enable_external_access') AS ext, "
                             "current_setting('lock_configuration') AS locked, "
                             "current_setting('autoinstall_known_extensions') AS install, "
                             "current_setting('autoload_known_extensions') AS load, "
                             "(SELECT count(*) FROM files) AS files", "--output", "json")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ('{"ext": false, "locked": true, "install": false, '
                             '"load": false, "files": 3}\n')


def test_out_is_written_by_scrapewatch_not_by_the_sql(stores: tuple[Path, Path],
                                                      tmp_path: Path) -> None:
    out = tmp_path / "files.csv"
    result = _sql(stores[0], "SELECT file_id, lines FROM files ORDER BY file_id",
                  "--output", "csv", "--out", str(out))
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")
    assert out.read_text() == "file_id,lines\n1,223\n2,2401\n3,3216\n"


@pytest.mark.parametrize("output", ["csv", "parquet"])
def test_an_out_file_that_cannot_be_written_is_a_one_line_error(
        stores: tuple[Path, Path], tmp_path: Path, output: str) -> None:
    out = tmp_path / "no-such-folder" / f"files.{output}"
    result = _sql(stores[0], "SELECT file_id FROM files", "--output", output, "--out",
                  str(out))
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == f"error: cannot write {out}: No such file or directory\n"


def test_allow_files_opens_one_folder_and_nothing_else(stores: tuple[Path, Path],
                                                       tmp_path: Path) -> None:
    store, other = stores
    exports = tmp_path / "exports"
    exports.mkdir()
    target = exports / "top.csv"
    copy = _sql(store, "--allow-files", str(exports),
                f"COPY (SELECT file_id, lines FROM files ORDER BY file_id) TO '{target}'")
    assert (copy.exit_code, copy.stderr) == (0, ""), copy.stderr
    assert target.read_text() == "file_id,lines\n1,223\n2,2401\n3,3216\n"
    back = _sql(store, "--allow-files", str(exports),
                f"SELECT sum(lines) AS lines FROM read_csv('{target}')")
    assert (back.exit_code, back.stdout) == (0, "lines\n-----\n5840\n(1 row)\n")
    where = f"sql sees only the store and {exports.resolve()} (--allow-files)"
    (exports / "link").symlink_to(other)  # a way out planted in the folder
    for path in ["/etc/passwd", f"{exports}/../outside.csv", f"{exports}-other/x.csv",
                 f"{exports}/link"]:
        _refused(_sql(store, "--allow-files", str(exports),
                      f"SELECT * FROM read_text('{path}')"),
                 f'reading or writing "{path}" is not allowed: {where}')
    _refused(_sql(store, "--allow-files", str(exports),
                  f"COPY (SELECT 1 AS x) TO '{other}'"),
             f'reading or writing "{other}" is not allowed: {where}')
    assert not (tmp_path / "outside.csv").exists()


def test_allow_files_needs_an_existing_folder(stores: tuple[Path, Path],
                                              tmp_path: Path) -> None:
    result = _sql(stores[0], "--allow-files", str(tmp_path / "missing"), "SELECT 1")
    assert result.exit_code == 2
    assert "Invalid value for '--allow-files'" in result.stderr


def test_statements_piped_in_stop_at_the_first_refused(stores: tuple[Path, Path],
                                                       tmp_path: Path) -> None:
    target = tmp_path / "leak.csv"
    result = _sql(stores[0], stdin=f"SELECT 1 AS a;\nCOPY (SELECT 1 AS x) TO '{target}';\n"
                                   "SELECT 2 AS b;\n", home=tmp_path)
    assert result.exit_code == 1
    assert result.stdout == "a\n-\n1\n(1 row)\n"  # and not b
    assert result.stderr == (f'error: reading or writing "{target}" is not allowed: sql sees '
                             f"only the store; {FLAG}\n")
    assert not target.exists()


class _Terminal(io.BytesIO):
    """Standard input that says it is a terminal: the interactive prompt."""

    def isatty(self) -> bool:
        return True


def test_the_prompt_refuses_and_goes_on(stores: tuple[Path, Path], tmp_path: Path) -> None:
    typed = _Terminal(b"SELECT content FROM read_text('/etc/passwd');\n"
                      b"SET lock_configuration = false;\nSELECT 2 AS b;\n.quit\n")
    result = _sql(stores[0], stdin=typed, home=tmp_path)
    assert result.exit_code == 0
    assert result.stdout == "sql> sql> sql> b\n-\n2\n(1 row)\nsql> "
    assert result.stderr.splitlines()[1:] == [
        f'error: reading or writing "/etc/passwd" is not allowed: sql sees only the store; '
        f"{FLAG}",
        'error: changing the setting "lock_configuration" is not allowed: the settings of '
        f"sql are locked so that it sees only the store ({FLAG})"]


def test_a_statement_prints_a_table_or_writes_parquet_and_an_error_is_one_line(
        stores: tuple[Path, Path], tmp_path: Path) -> None:
    import duckdb

    store, _ = stores
    table = _sql(store, "SELECT count(*) AS n FROM files")
    assert (table.exit_code, table.stdout) == (0, "n\n-\n3\n(1 row)\n")
    out = tmp_path / "periods.parquet"
    written = _sql(store, "SELECT * FROM periods", "--output", "parquet", "--out", str(out))
    assert (written.exit_code, written.stdout) == (0, "")
    assert duckdb.sql(f"SELECT count(*) FROM '{out}'").fetchall() == [(3,)]
    bad = _sql(store, "SELECT nope")
    assert bad.exit_code == 1 and bad.stderr.startswith("error: SQL error")
    prompt = _sql(store, stdin="SELECT count(*) AS n\nFROM files;\n.quit\n", home=tmp_path)
    assert prompt.exit_code == 0 and prompt.stdout == "n\n-\n3\n(1 row)\n"


def test_the_prompt_answers_tables_schema_and_help(stores: tuple[Path, Path],
                                                   tmp_path: Path) -> None:
    typed = _Terminal(b".tables\n.schema runs\n.help\n.schema\n.nope\n"
                      b'.schema x"; DROP TABLE files; --\nSELECT 1 AS a;\n.quit\n')
    result = _sql(stores[0], stdin=typed, home=tmp_path)
    assert result.exit_code == 0
    out = result.stdout
    assert out.startswith("sql> files     every file ingested: path, format, SHA-256, size, "
                          "lines, rejected, requests\n")
    assert "periods   the charged periods of each report run\nsql> column_name" in out
    assert "run_id         INTEGER                   NO    PRI" in out
    assert "  .schema NAME   the columns of a view (or table) and their types\n" in out
    assert "...>" not in out  # a command is not the start of a statement
    assert out.endswith("sql> sql> sql> sql> a\n-\n1\n(1 row)\nsql> ")
    assert result.stderr.splitlines()[1:] == [
        "error: .schema needs a name: .schema files; .help lists the commands",
        "error: unknown command .nope; .help lists the commands",
        """error: 'x"; DROP TABLE files; --' is not a view's name; .help lists the commands"""]


def test_the_prompt_keeps_history_across_sessions(stores: tuple[Path, Path],
                                                  tmp_path: Path) -> None:
    readline = pytest.importorskip("readline")
    first = _sql(stores[0], stdin=_Terminal(b"SELECT 1\n  AS a;\n.tables\n.quit\n"),
                 home=tmp_path)
    assert first.exit_code == 0
    history = (tmp_path / ".scrapewatch_history").read_text()
    assert "SELECT 1" in history and ".tables" in history
    second = _sql(stores[0], stdin=_Terminal(b"SELECT 2 AS b;\n"), home=tmp_path)
    assert second.exit_code == 0
    items = [readline.get_history_item(i)
             for i in range(1, readline.get_current_history_length() + 1)]
    assert items == ["SELECT 1 AS a;", ".tables", "SELECT 2 AS b;"]
    piped = _sql(stores[0], stdin="SELECT 3 AS c;\n", home=tmp_path / "elsewhere")
    assert piped.exit_code == 0 and not (tmp_path / "elsewhere").exists()  # a script: none


def test_tab_completes_view_names_and_keywords() -> None:
    from scrapewatch.cli.prompt import completer
    from scrapewatch.store import VIEWS

    complete = completer([*VIEWS, "SELECT", "FROM"])
    assert [complete("fi", n) for n in range(3)] == ["files", "findings", None]
    assert complete("sel", 0) == "select" and complete("SEL", 0) == "SELECT"
    assert complete("per", 0) == "periods"
