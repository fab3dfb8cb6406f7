"""The conversion run: bags -> (parallel workers) -> staged episodes -> published dataset.

Atomic and resumable:
- all work happens in a hidden staging directory next to the output
  (``.<name>.rynnvla-staging/``), on the same file system;
- a worker converts a bag into ``bags/.tmp-<bag>-<pid>/`` and renames it to
  ``bags/<bag>-<fingerprint>/`` once complete: a bag directory is whole or absent;
- a re-run after an interruption skips bags already converted with the same config;
- the dataset is assembled in the staging directory and renamed into place at the end, so
  the output path shows either nothing, the previous dataset, or the complete new one.
"""

from __future__ import annotations

import concurrent.futures as futures
import contextlib
import dataclasses
import datetime
import fcntl
import importlib
import json
import multiprocessing
import os
import queue as queue_module
import shutil
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from rynnvla_training.dataset import layout

from .bag import bag_fingerprint, find_bags
from .config import ConvertConfig
from .episode import BagResult, convert_bag
from .lerobot_writer import EpisodeInput, write_dataset

RESULT_FILE = "result.json"
STATISTICS_MODULE = "rynnvla_policy.core.actions"  # torch + model core: slow to import


def _import_in_background(module: str) -> None:
    """Starts importing ``module`` in a thread; a later import waits for it (import lock)."""

    def run() -> None:
        with contextlib.suppress(Exception):  # the real import reports any error
            importlib.import_module(module)

    threading.Thread(target=run, name=f"import {module}", daemon=True).start()


class ConversionError(RuntimeError):
    """The conversion cannot run or produced no dataset; the message says why."""


@dataclasses.dataclass
class ConversionResult:
    output: Path
    up_to_date: bool  # the output already held this conversion: nothing was done
    report: dict  # meta/rynnvla_conversion_report.json

    @property
    def episodes(self) -> int:
        return len(self.report["episodes"])

    @property
    def frames(self) -> int:
        return sum(e["length"] for e in self.report["episodes"])


# --------------------------------------------------------------------------- staging


class _Staging:
    """The hidden work directory of one output; locked against concurrent runs."""

    def __init__(self, output: Path, config: ConvertConfig):
        self.root = output.parent / f".{output.name}.rynnvla-staging"
        self.config_dir = self.root / f"config-{config.fingerprint()}"
        self.bags_dir = self.config_dir / "bags"
        self._lock_file = None

    def __enter__(self) -> _Staging:
        self.bags_dir.mkdir(parents=True, exist_ok=True)
        self._lock_file = open(self.root / "lock", "w")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise ConversionError(f"another conversion is using {self.root}") from exc
        for stale in self.root.iterdir():  # converted with another config: never reused
            if stale.is_dir() and stale != self.config_dir:
                shutil.rmtree(stale, ignore_errors=True)
        for partial in self.bags_dir.glob(".tmp-*"):  # left by an interrupted run
            shutil.rmtree(partial, ignore_errors=True)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._lock_file is not None:
            self._lock_file.close()

    def bag_dir(self, bag: Path, fingerprint: str) -> Path:
        return self.bags_dir / f"{bag.name}-{fingerprint}"

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _convert_one(bag: Path, fingerprint: str, config, final: Path, progress_queue):
    """Worker: convert one bag into a temporary directory, rename it into place when whole."""
    temporary = final.parent / f".tmp-{final.name}-{os.getpid()}"
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    report = None if progress_queue is None else progress_queue.put
    result = convert_bag(bag, fingerprint, config, temporary, progress=report)
    if result.error is not None:
        shutil.rmtree(temporary, ignore_errors=True)  # not cached: a re-run retries the bag
        return result.to_dict()
    (temporary / RESULT_FILE).write_text(json.dumps(result.to_dict()))
    os.rename(temporary, final)
    return result.to_dict()


# --------------------------------------------------------------------------- running workers


def _run_workers(todo, config, workers: int, progress: bool) -> dict[Path, BagResult]:
    """Converts ``todo`` [(bag, fingerprint, final_dir, duration_s)] with a process pool."""
    total = sum(item[3] for item in todo)
    bar = tqdm(
        total=round(total, 1),
        unit="s",
        desc="converting",
        disable=not progress,
        # recorded seconds are fractional: without a format tqdm prints 939.6999999999999/1642.9
        bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} s [{elapsed}<{remaining}, {rate_fmt}]",
    )
    parallel = max(1, min(workers, len(todo)))
    results: dict[Path, BagResult] = {}
    try:
        if parallel == 1:
            for bag, fingerprint, final, _ in todo:
                data = _convert_one(bag, fingerprint, config, final, _BarQueue(bar))
                results[bag] = BagResult.from_dict(data)
            return results
        return _run_pool(todo, config, parallel, bar)
    finally:
        bar.close()


class _BarQueue:
    """Progress sink for in-process conversion (same interface as a queue)."""

    def __init__(self, bar):
        self.bar = bar

    def put(self, seconds: float) -> None:
        self.bar.update(round(seconds, 1))


def _run_pool(todo, config, parallel: int, bar) -> dict[Path, BagResult]:
    context = multiprocessing.get_context("spawn")  # no fork of a threaded parent
    manager = context.Manager()
    progress_queue = manager.Queue()
    results: dict[Path, BagResult] = {}
    pool = futures.ProcessPoolExecutor(max_workers=parallel, mp_context=context)
    try:
        jobs = {
            pool.submit(_convert_one, bag, fp, config, final, progress_queue): (bag, fp)
            for bag, fp, final, _ in todo
        }
        pending = set(jobs)
        while pending:
            done, pending = futures.wait(pending, timeout=0.2)
            _drain(progress_queue, bar)
            for job in done:
                bag, fp = jobs[job]
                try:
                    results[bag] = BagResult.from_dict(job.result())
                except Exception as exc:  # a worker died (e.g. killed for memory)
                    results[bag] = BagResult(str(bag), fp, error=f"worker failed: {exc!r}")
        _drain(progress_queue, bar)
        return results
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        manager.shutdown()


def _drain(progress_queue, bar) -> None:
    while True:
        try:
            bar.update(round(progress_queue.get_nowait(), 1))
        except queue_module.Empty:
            return


# --------------------------------------------------------------------------- assembly


def _assign_splits(count: int, config: ConvertConfig) -> list[str]:
    fraction = config.split.val_fraction
    val = 0 if fraction == 0 or count < 2 else min(count - 1, max(1, round(fraction * count)))
    chosen = set(np.random.default_rng(config.split.seed).permutation(count)[:val].tolist())
    return ["val" if i in chosen else "train" for i in range(count)]


def _episode_inputs(bag_results, staging, config, skipped) -> list[EpisodeInput]:
    """Converted segments in final order (train first); mismatched image sizes are skipped."""
    candidates = []
    reference: dict[str, tuple] = {}
    for bag, result in bag_results:
        directory = staging.bag_dir(Path(result.bag), result.fingerprint)
        for segment in result.segments:
            sizes = {c: tuple(s) for c, s in segment.image_sizes.items()}
            reference = reference or sizes
            if sizes != reference:
                skipped.append(
                    {
                        "bag": str(bag),
                        "segment": segment.directory,
                        "reason": f"image sizes {sizes} differ from the dataset's {reference} "
                        "(set cameras.<name>.resize)",
                    }
                )
                continue
            candidates.append((directory / segment.directory, segment, str(bag)))
    splits = _assign_splits(len(candidates), config)
    ordered = [i for i, s in enumerate(splits) if s == "train"]
    ordered += [i for i, s in enumerate(splits) if s == "val"]
    return [EpisodeInput(*candidates[i][:2], splits[i], candidates[i][2]) for i in ordered]


def _report(config, bags, bag_results, episodes, skipped, cached) -> dict:
    return {
        "converter": "rynnvla-convert",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "config_fingerprint": config.fingerprint(),
        "config": config.to_dict(),
        "inputs": [{"bag": str(bag), "fingerprint": fp} for bag, fp in bags],
        "bags": [
            {
                "bag": str(bag),
                "status": "skipped" if result.error else "converted",
                "cached": bag in cached,
                "error": result.error,
                "duration_s": result.duration_s,
                "messages": result.messages,
                "dropped_segments": result.dropped,
            }
            for bag, result in bag_results
        ],
        "skipped_segments": skipped,
        "episodes": [
            {
                "episode_index": index,
                "source": episode.source,
                "segment": episode.segment.directory,
                "task": episode.segment.task,
                "split": episode.split,
                "length": episode.segment.length,
                "start_ns": episode.segment.start_ns,
                "start_s": episode.segment.start_ns / 1e9,
                "match_rate": episode.segment.match_rate,
                "sync": episode.segment.sync,
            }
            for index, episode in enumerate(episodes)
        ],
    }


def _publish(built: Path, output: Path, staging: _Staging) -> None:
    """Atomically replaces ``output`` with ``built`` (same file system)."""
    if output.exists():
        previous = staging.root / "previous"
        shutil.rmtree(previous, ignore_errors=True)
        os.rename(output, previous)
        os.rename(built, output)
        shutil.rmtree(previous, ignore_errors=True)
    else:
        os.rename(built, output)


def _existing_report(output: Path) -> dict | None:
    try:
        return json.loads((output / layout.REPORT_PATH).read_text())
    except (OSError, json.JSONDecodeError):
        return None


# --------------------------------------------------------------------------- entry point


def run_conversion(
    inputs: Sequence[str | Path],
    output: str | Path,
    config: ConvertConfig,
    *,
    workers: int | None = None,
    overwrite: bool = False,
    keep_staging: bool = False,
    progress: bool = True,
) -> ConversionResult:
    """Converts the bags under ``inputs`` into a LeRobot v3.0 dataset at ``output``."""
    output = Path(output).expanduser().absolute()
    bags = [(bag, bag_fingerprint(bag)) for bag in find_bags(inputs)]
    inputs_key = [{"bag": str(bag), "fingerprint": fp} for bag, fp in bags]
    existing = _existing_report(output) if output.exists() else None
    if existing is not None and (
        existing.get("config_fingerprint") == config.fingerprint()
        and existing.get("inputs") == inputs_key
        and existing.get("config", {}).get("split") == config.to_dict()["split"]
    ):
        return ConversionResult(output, up_to_date=True, report=existing)
    if output.exists() and not overwrite:
        raise ConversionError(
            f"output {output} exists and holds another conversion; pass --overwrite to replace it"
        )
    _import_in_background(STATISTICS_MODULE)  # seconds of imports, overlapped with the work
    with _Staging(output, config) as staging:
        results, cached = _convert_missing(bags, staging, config, workers, progress)
        bag_results = [(bag, results[bag]) for bag, _ in bags]
        skipped: list[dict] = []
        episodes = _episode_inputs(bag_results, staging, config, skipped)
        report = _report(config, bags, bag_results, episodes, skipped, cached)
        if not episodes:
            reasons = "; ".join(f"{Path(b['bag']).name}: {b['error']}" for b in report["bags"])
            raise ConversionError(f"no episode could be converted ({reasons or 'no input'})")
        built = staging.config_dir / "dataset.tmp"
        shutil.rmtree(built, ignore_errors=True)
        write_dataset(built, episodes, config, progress=progress)
        (built / layout.REPORT_PATH).write_text(json.dumps(report, indent=2) + "\n")
        _publish(built, output, staging)
    if not keep_staging:
        staging.remove()
    return ConversionResult(output, up_to_date=False, report=report)


def _convert_missing(bags, staging, config, workers, progress):
    """Loads bags converted by an earlier run; converts the rest. -> (results, cached bags)"""
    results: dict[Path, BagResult] = {}
    todo = []
    for bag, fingerprint in bags:
        final = staging.bag_dir(bag, fingerprint)
        if (final / RESULT_FILE).is_file():
            results[bag] = BagResult.from_dict(json.loads((final / RESULT_FILE).read_text()))
        else:
            todo.append((bag, fingerprint, final, _duration_s(bag)))
    cached = set(results)
    if todo:
        results.update(_run_workers(todo, config, workers or os.cpu_count() or 1, progress))
    return results, cached


def _duration_s(bag: Path) -> float:
    """Recording length from metadata.yaml (for the progress bar); 0 when unreadable."""
    import yaml

    try:
        meta = yaml.safe_load((bag / "metadata.yaml").read_text())
        return meta["rosbag2_bagfile_information"]["duration"]["nanoseconds"] / 1e9
    except Exception:
        return 0.0
