"""``python -m benchmarks.formats``: scan speed per format family, on the same requests.

The generator's JSON lines log of ``--lines`` requests is rewritten, with DuckDB, in
every format scrapewatch reads (combined, common, vhost_combined, ALB, ELB, CloudFront,
W3C, IIS, JSON lines, CSV, TSV, Parquet), each file holding exactly the same requests
(client, time, method, path, query, status, bytes; no posts counts, so posts come from
the path rules everywhere). ``scrapewatch scan --entity client_ip`` on each must then
give the same violators and damages: the run checks it, and prints and saves (JSON) the
median lines per second of each format.

Usage::

    python -m benchmarks.formats [--lines 1M] [--repeat 3] [--workdir /tmp/swbench]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    LogSpec,
    environment,
    log,
    parse_count,
    prepare_log,
    read_answer,
    run_child,
)

BATCH_ROWS = 500_000
# Each format's lines, as DuckDB SQL over the JSON lines columns (ts is a TIMESTAMPTZ).
_TARGET = "path || CASE WHEN coalesce(query, '') <> '' THEN '?' || query ELSE '' END"
LINES_SQL = {
    "combined": f"""client_ip || ' - - [' || strftime(ts, '%d/%b/%Y:%H:%M:%S +0000') || '] "'
        || method || ' ' || {_TARGET} || ' HTTP/1.1" ' || status || ' ' || bytes
        || ' "-" "bench"'""",
    "common": f"""client_ip || ' - - [' || strftime(ts, '%d/%b/%Y:%H:%M:%S +0000') || '] "'
        || method || ' ' || {_TARGET} || ' HTTP/1.1" ' || status || ' ' || bytes""",
    "vhost_combined": f"""'api.example.com:443 ' || client_ip || ' - - ['
        || strftime(ts, '%d/%b/%Y:%H:%M:%S +0000') || '] "' || method || ' ' || {_TARGET}
        || ' HTTP/1.1" ' || status || ' ' || bytes || ' "-" "bench"'""",
    "alb": f"""'https ' || strftime(ts, '%Y-%m-%dT%H:%M:%S.000000Z') || ' app/lb/1 '
        || client_ip || ':4000 '
        || '10.0.0.1:80 0.000 0.001 0.000 ' || status || ' ' || status || ' 10 ' || bytes
        || ' "' || method || ' https://api.example.com:443' || {_TARGET} || ' HTTP/1.1" '
        || '"bench" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 - "Root=1-0" "-" "-" 0 '
        || strftime(ts, '%Y-%m-%dT%H:%M:%S.000000Z') || ' "forward" "-" "-" "10.0.0.1:80" '
        || '"' || status || '" "-" "-"'""",
    "elb": f"""strftime(ts, '%Y-%m-%dT%H:%M:%S.000000Z') || ' lb ' || client_ip || ':4000 '
        || '10.0.0.1:80 0.000 0.001 0.000 ' || status || ' ' || status || ' 10 ' || bytes
        || ' "' || method || ' http://api.example.com:80' || {_TARGET} || ' HTTP/1.1" '
        || '"bench" - -'""",
    "cloudfront": """concat_ws(chr(9), strftime(ts, '%Y-%m-%d'), strftime(ts, '%H:%M:%S'),
        'LAX1', bytes, client_ip, method, 'd1.cloudfront.net', path, status, '-', 'bench',
        coalesce(nullif(query, ''), '-'), '-', 'Miss', 'id', 'api.example.com', 'https',
        '100', '0.001', '-', 'TLSv1.3', 'TLS_AES_128_GCM_SHA256', 'Miss', 'HTTP/2.0', '-', '-',
        '4000', '0.001', 'Miss', 'application/json', bytes, '-', '-')""",
    "w3c": """concat_ws(' ', strftime(ts, '%Y-%m-%d'), strftime(ts, '%H:%M:%S'), '10.0.0.1',
        method, path, coalesce(nullif(query, ''), '-'), '443', '-', client_ip, 'bench', '-',
        status, '0', '0', '15')""",
    "iis": """concat_ws(', ', client_ip, '-', strftime(ts, '%m/%d/%y'), strftime(ts, '%H:%M:%S'),
        'W3SVC1', 'WEB1', '10.0.0.1', '15', '100', bytes, status, '0', method, path,
        coalesce(nullif(query, ''), '-')) || ','""",
    "csv": """concat_ws(',', strftime(ts, '%Y-%m-%dT%H:%M:%SZ'), client_ip, method,
        '"' || replace(path, '"', '""') || '"', '"' || replace(query, '"', '""') || '"',
        status, bytes)""",
    "tsv": """concat_ws(chr(9), strftime(ts, '%Y-%m-%dT%H:%M:%SZ'), client_ip, method, path,
        query, status, bytes)""",
    "jsonl": """to_json({'ts': strftime(ts, '%Y-%m-%dT%H:%M:%SZ'), 'client_ip': client_ip,
        'method': method, 'path': path, 'query': query, 'status': status,
        'bytes': bytes})::VARCHAR""",
}
HEADERS = {
    "cloudfront": "#Version: 1.0\n#Fields: date time x-edge-location sc-bytes c-ip cs-method "
                  "cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query "
                  "cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol "
                  "cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher "
                  "x-edge-response-result-type cs-protocol-version fle-status "
                  "fle-encrypted-fields c-port time-to-first-byte x-edge-detailed-result-type "
                  "sc-content-type sc-content-len sc-range-start sc-range-end\n",
    "w3c": "#Software: Microsoft Internet Information Services 10.0\n#Version: 1.0\n"
           "#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username "
           "c-ip cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status "
           "time-taken\n",
    "csv": "timestamp,client_ip,method,path,query,status,bytes\n",
    "tsv": "timestamp\tclient_ip\tmethod\tpath\tquery\tstatus\tbytes\n",
}
FORMATS = (*LINES_SQL, "parquet")
_SOURCE = """SELECT ts::TIMESTAMPTZ AS ts, client_ip, method, path, query, status, bytes
             FROM read_json($log, format = 'newline_delimited', columns = {
                 'ts': 'VARCHAR', 'client_ip': 'VARCHAR', 'method': 'VARCHAR',
                 'path': 'VARCHAR', 'query': 'VARCHAR', 'status': 'INTEGER',
                 'bytes': 'BIGINT'})"""


def convert(source: Path, fmt: str, target: Path) -> None:
    """Write the requests of the JSON lines log `source` as a `fmt` file at `target`."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    tmp = target.with_name(target.name + ".tmp")
    query = _SOURCE.replace("$log", "'" + str(source).replace("'", "''") + "'")
    if fmt == "parquet":
        con.execute(f"COPY ({query}) TO '{tmp}' (FORMAT parquet)")
    else:
        reader = con.sql(f"SELECT {LINES_SQL[fmt]} AS line FROM ({query})"
                         ).to_arrow_reader(BATCH_ROWS)
        with tmp.open("wb") as out:
            out.write(HEADERS.get(fmt, "").encode())
            for batch in reader:
                out.write(("\n".join(batch.column(0).to_pylist()) + "\n").encode())
    tmp.replace(target)


def run(lines: int, repeat: int, workdir: Path, seed: int) -> dict[str, Any]:
    """Convert, time every format's scan alternately, check the answers agree."""
    workdir.mkdir(parents=True, exist_ok=True)
    spec = LogSpec("jsonl", lines, seed)
    prepared = prepare_log(spec, workdir)
    if isinstance(prepared, str):
        raise SystemExit(prepared)
    files = {}
    for fmt in FORMATS:
        files[fmt] = workdir / f"formats-{lines}-seed{seed}.{fmt}"
        if not files[fmt].exists():
            # in a child process, so that this one stays small: a child's peak RSS
            # starts from its parent's size
            log(f"writing {files[fmt]}")
            subprocess.run([sys.executable, "-m", "benchmarks.formats", "--convert", fmt,
                            str(spec.path(workdir)), str(files[fmt])], check=True)
    runs: dict[str, list[dict[str, Any]]] = {fmt: [] for fmt in FORMATS}
    answers: dict[str, Any] = {}
    rundir = workdir / f"formats-{lines}"
    rundir.mkdir(exist_ok=True)
    for i in range(1, repeat + 1):
        for fmt, path in files.items():
            out, err = rundir / f"{fmt}-{i}.stdout", rundir / f"{fmt}-{i}.stderr"
            cmd = [sys.executable, "-m", "scrapewatch", "scan", str(path), "--quiet",
                   "--output", "json", "--entity", "client_ip"]
            result = run_child(cmd, out, err)
            if result["returncode"] != 0:
                raise SystemExit(f"{fmt}: exit {result['returncode']}: {err.read_text()[-2000:]}")
            answers[fmt] = read_answer("scan", out)
            runs[fmt].append(result)
            log(f"{fmt} run {i}/{repeat}: {result['wall_s']:.2f} s, "
                f"{lines / result['wall_s']:,.0f} lines/s, {result['peak_rss_mb']:.0f} MB")
    reference = answers["jsonl"]
    wrong = [fmt for fmt, answer in answers.items() if answer != reference]
    results = {fmt: {"median_wall_s": round(statistics.median(r["wall_s"] for r in rs), 3),
                     "lines_per_s": round(lines / statistics.median(r["wall_s"] for r in rs)),
                     "mb_per_s": round(files[fmt].stat().st_size / 1e6
                                       / statistics.median(r["wall_s"] for r in rs), 1),
                     "peak_rss_mb": round(max(r["peak_rss_mb"] for r in rs), 1),
                     "median_other_cpu_s": round(statistics.median(
                         r["other_cpu_s"] or 0.0 for r in rs), 1)}
               for fmt, rs in runs.items()}
    return {"environment": environment(), "lines": lines, "repeat": repeat,
            "answers_agree": not wrong, "disagreeing": wrong,
            "violators": len(reference["violators"]), "results": results}


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.formats",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=parse_count, default=parse_count("1M"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/swbench"))
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--convert", nargs=3, metavar=("FORMAT", "JSONL", "OUT"),
                        help="only write JSONL's requests as FORMAT to OUT")
    args = parser.parse_args(argv)
    if args.convert:
        fmt, source, target = args.convert
        convert(Path(source), fmt, Path(target))
        return 0
    report = run(args.lines, args.repeat, args.workdir.resolve(), args.seed)
    out = args.workdir / f"formats-{args.lines}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'format':11} {'median s':>9} {'lines/s':>11} {'MB/s':>7} {'peak RSS MB':>12}")
    for fmt, r in report["results"].items():
        print(f"{fmt:11} {r['median_wall_s']:9.2f} {r['lines_per_s']:11,} {r['mb_per_s']:7.1f} "
              f"{r['peak_rss_mb']:12.0f}")
    print(f"answers agree: {report['answers_agree']} ({report['violators']} violators); "
          f"saved {out}")
    return 0 if report["answers_agree"] else 1


if __name__ == "__main__":
    sys.exit(main())
