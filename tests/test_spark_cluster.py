"""A real Spark cluster on this machine: a standalone master and two workers, started
from the PySpark distribution, and a scan submitted to it by the CLI.

Each worker runs its executor in a JVM and Python workers of its own, apart from the
driver's process: what works only because driver and executor share a process (a
connection, a temp file, a module's state) fails here. The report files must equal
the default engine's, byte for byte.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SAMPLE_LOGS

pytestmark = pytest.mark.spark_cluster

pyspark = pytest.importorskip("pyspark")
if shutil.which("java") is None:
    pytest.skip("Spark needs Java", allow_module_level=True)

SPARK_CLASS = Path(pyspark.__file__).parent / "bin" / "spark-class"
TIMEOUT_S = 240


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the master stopped: {log.read_text()[-2000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"the master did not listen on {port}: {log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """spark://127.0.0.1:PORT, a master and two workers of one core each (stopped after),
    and the folder of their logs and work folders."""
    folder = tmp_path_factory.mktemp("cluster")
    env = {**os.environ, "SPARK_HOME": str(SPARK_CLASS.parent.parent),
           "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_LOG_DIR": str(folder),
           "PYSPARK_PYTHON": sys.executable}
    port = _free_port()
    url = f"spark://127.0.0.1:{port}"
    commands = [
        ["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
         "--webui-port", str(_free_port())],
        *(["org.apache.spark.deploy.worker.Worker", url, "--host", "127.0.0.1", "--cores",
           "1", "--memory", "1g", "--webui-port", str(_free_port()),
           "--work-dir", str(folder / f"worker-{n}")] for n in (1, 2))]
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for n, command in enumerate(commands):
            log = folder / f"process-{n}.log"
            with log.open("wb") as out:
                processes.append(subprocess.Popen(
                    [str(SPARK_CLASS), *command], env=env, stdout=out,
                    stderr=subprocess.STDOUT, start_new_session=True))
            if n == 0:
                _wait_for_port(port, processes[0], log)
        yield url, folder
    finally:
        for process in processes:
            with contextlib.suppress(ProcessLookupError):  # it stopped on its own
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            process.wait(timeout=60)


def _scan(*args: str, out: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1767225600", "PYSPARK_PYTHON": sys.executable,
           "SPARK_LOCAL_IP": "127.0.0.1"}
    return subprocess.run([sys.executable, "-m", "scrapewatch", "scan", str(SAMPLE_LOGS),
                           "--quiet", "--out", str(out), *args],
                          env=env, capture_output=True, text=True, timeout=TIMEOUT_S)


def test_a_scan_on_a_standalone_cluster_writes_duckdb_s_files(
        cluster: tuple[str, Path], tmp_path: Path) -> None:
    url, folder = cluster
    on_duckdb = _scan(out=tmp_path / "duckdb")
    on_cluster = _scan("--engine", "spark", "--spark-master", url, out=tmp_path / "spark")
    assert on_duckdb.returncode == 0, on_duckdb.stderr
    assert on_cluster.returncode == 0, on_cluster.stderr[-3000:]
    assert on_cluster.stdout == on_duckdb.stdout
    names = sorted(p.name for p in (tmp_path / "duckdb").iterdir())
    assert "report.json" in names and "report.html" in names
    assert sorted(p.name for p in (tmp_path / "spark").iterdir()) == names
    for name in names:
        assert (tmp_path / "spark" / name).read_bytes() == (
            tmp_path / "duckdb" / name).read_bytes(), name
    # each worker ran an executor of the scan: a process of its own, apart from the driver
    for worker in ("worker-1", "worker-2"):
        assert list((folder / worker).glob("app-*/*/stderr")), worker
