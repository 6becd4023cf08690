"""Chain of custody of an --out folder: its manifest.json (every file's SHA-256 and
size, the inputs' hashes, the version and the whole configuration of the run), and
checking a folder against it (`scrapewatch verify DIR`)."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from scrapewatch.errors import InputError
from scrapewatch.reporting.model import Report

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
_CHUNK = 1 << 20


def file_digest(path: Path) -> dict[str, Any]:
    """The SHA-256 and size in bytes of the file at `path`."""
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return {"sha256": digest.hexdigest(), "bytes": size}


def write_manifest(report: Report, folder: Path, names: list[str], stream: TextIO) -> None:
    """manifest.json of the files `names` of `folder`, written by the run of `report`."""
    document = {
        "manifest_version": MANIFEST_VERSION,
        "generated_at": report.generated_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        **report.run_manifest(),
        "inputs": [{"path": f.path, "sha256": f.sha256, "bytes": f.size}
                   for f in report.files],
        "files": {name: file_digest(folder / name) for name in sorted(names)},
    }
    json.dump(document, stream, indent=2, ensure_ascii=True)
    stream.write("\n")


@dataclass(frozen=True)
class FileCheck:
    """A file of a folder against its manifest: its status (ok, changed, missing,
    unreadable, or extra: not in the manifest) and, when not ok, what differs."""

    name: str
    status: str
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def verify(folder: Path) -> list[FileCheck]:
    """Each file manifest.json lists, and each other file in `folder`, checked against
    it (see FileCheck).

    Raises:
        InputError: when `folder` has no readable, well-formed manifest.json.
    """
    listed = _listed(folder)
    checks = []
    for name, want in sorted(listed.items()):
        path = folder / name
        if path.is_symlink():
            checks.append(FileCheck(name, "changed", "a symbolic link, not the file written"))
            continue
        if not path.is_file():
            checks.append(FileCheck(name, "missing"))
            continue
        try:
            have = file_digest(path)
        except OSError as error:
            checks.append(FileCheck(name, "unreadable", str(error.strerror)))
            continue
        changed = [f"{key} {want[key]} in the manifest, {have[key]} now"
                   for key in ("bytes", "sha256") if have[key] != want[key]]
        checks.append(FileCheck(name, "changed", "; ".join(changed)) if changed
                      else FileCheck(name, "ok"))
    others = sorted(set(os.listdir(folder)) - set(listed) - {MANIFEST})
    return checks + [FileCheck(name, "extra", "not in the manifest") for name in others]


def _listed(folder: Path) -> dict[str, dict[str, Any]]:
    """The files manifest.json lists, with their SHA-256 and size."""
    path = folder / MANIFEST
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        files = document.get("files") if isinstance(document, dict) else None
        if not isinstance(files, dict) or not all(
                isinstance(v, dict) and isinstance(v.get("sha256"), str)
                and isinstance(v.get("bytes"), int) and "/" not in k and k not in ("", ".", "..")
                for k, v in files.items()):
            raise ValueError("its files are not names with a sha256 and bytes each")
    except FileNotFoundError:
        raise InputError(f"{folder} has no {MANIFEST}: it is not a folder written by "
                         "scrapewatch --out (or the manifest was removed)") from None
    except NotADirectoryError:
        raise InputError(f"{folder} is not a folder") from None
    except OSError as error:
        raise InputError(f"cannot read {path}: {error.strerror}") from None
    except ValueError as error:
        raise InputError(f"{path} is not a scrapewatch manifest: {error}") from None
    return {name: {"sha256": v["sha256"], "bytes": v["bytes"]} for name, v in files.items()}
