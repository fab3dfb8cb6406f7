"""Crash-safe checkpoint directories.

A checkpoint is written into `<root>/.tmp-step_XXXXXXXX/`, every file and the directory are
fsync'ed, and only then is it renamed to `<root>/step_XXXXXXXX/` (rename is atomic on POSIX) and
the parent fsync'ed. A process killed at any moment therefore leaves either the complete new
checkpoint or none at all; `list_checkpoints` never returns a partial one, and stale temporary
directories are removed by the next save.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import torch

META_FILE = "meta.json"
_NAME = re.compile(r"^step_(\d{8})$")
_TMP_PREFIX = ".tmp-"


def checkpoint_name(step: int) -> str:
    return f"step_{step:08d}"


def temporary_path(root: Path, step: int) -> Path:
    """The same path on every rank, so all ranks can write into it on a shared filesystem."""
    return root / f"{_TMP_PREFIX}{checkpoint_name(step)}"


def prepare_temporary(root: Path, step: int) -> Path:
    """Create an empty temporary checkpoint directory (removing stale ones first)."""
    root.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(root)
    tmp = temporary_path(root, step)
    tmp.mkdir()
    return tmp


def commit(tmp: Path, meta: dict[str, Any]) -> Path:
    """Write `meta.json` last, fsync everything, then atomically publish the directory."""
    write_json(tmp / META_FILE, meta)
    fsync_tree(tmp)
    final = tmp.parent / tmp.name.removeprefix(_TMP_PREFIX)
    if final.exists():
        # Re-saving the same step (e.g. final save right after a periodic one): replace it.
        shutil.rmtree(final)
    os.rename(tmp, final)
    fsync_directory(tmp.parent)
    return final


def list_checkpoints(root: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints under `root`, oldest first."""
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        match = _NAME.match(child.name)
        if match and (child / META_FILE).is_file():
            found.append((int(match.group(1)), child))
    return sorted(found)


def latest_checkpoint(root: Path) -> Path | None:
    checkpoints = list_checkpoints(root)
    return checkpoints[-1][1] if checkpoints else None


def prune(root: Path, keep_last: int) -> list[Path]:
    """Delete all but the newest `keep_last` complete checkpoints; returns what was deleted."""
    doomed = [path for _, path in list_checkpoints(root)[:-keep_last]]
    for path in doomed:
        shutil.rmtree(path, ignore_errors=True)
    return doomed


def remove_stale_temporaries(root: Path) -> None:
    for child in root.iterdir():
        if child.name.startswith(_TMP_PREFIX) and child.is_dir():
            shutil.rmtree(child, ignore_errors=True)


def read_meta(checkpoint: Path) -> dict[str, Any]:
    path = checkpoint / META_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{checkpoint} is not a complete training checkpoint (no {META_FILE})"
        )
    return json.loads(path.read_text())


@contextmanager
def durable_file(path: Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open for writing; flush and fsync on close so the bytes are on disk before a rename."""
    with open(path, mode) as handle:
        yield handle
        handle.flush()
        os.fsync(handle.fileno())


def save_tensor_file(obj: Any, path: Path) -> None:
    with durable_file(path) as handle:
        torch.save(obj, handle)


def write_json(path: Path, payload: dict[str, Any]) -> None:
    with durable_file(path, "w") as handle:
        json.dump(payload, handle, indent=2, sort_keys=True)


def fsync_tree(root: Path) -> None:
    """fsync every file and directory below `root` (files written elsewhere, e.g. by DCP)."""
    for directory, _, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(directory, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_directory(Path(directory))


def fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
