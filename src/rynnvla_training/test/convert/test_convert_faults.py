"""Bad inputs never crash a conversion: each bad bag is skipped with its reason, the good ones
make the dataset. Plus atomic, resumable writing: interrupted-then-resumed == uninterrupted."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from convert_truth import rewrite_bag

from rynnvla_training.convert import ConversionError, ConvertConfig, run_conversion
from rynnvla_training.convert import pipeline as pipeline_module
from rynnvla_training.convert.synthetic import RecordingSpec, write_recording
from rynnvla_training.dataset import LeRobotV3Dataset

SHORT = RecordingSpec(duration_s=2.0)


def _truncate(path: Path, fraction: float) -> None:
    file = next(p for p in path.iterdir() if p.suffix in (".db3", ".mcap"))
    with open(file, "r+b") as handle:
        handle.truncate(int(file.stat().st_size * fraction))


def _bad_encoding(topic, log_ns, message):
    if topic.startswith("/camera/front"):
        message.encoding = "32FC1"  # float depth: not an RGB camera
    return message


def _size_change(topic, log_ns, message):
    if topic.startswith("/camera/wrist") and log_ns > 1_700_000_001 * 10**9:
        message.height, message.step = message.height // 2, message.step
        message.data = message.data[: message.height * message.step]
    return message


def _make_fault_bags(root: Path) -> dict[str, str]:
    """Bag name -> expected words of its skip reason."""
    write_recording(root / "a_good", SHORT)
    write_recording(root / "trunc_sqlite", SHORT)
    _truncate(root / "trunc_sqlite", 0.5)
    write_recording(root / "trunc_mcap", RecordingSpec(duration_s=2.0, storage="mcap"))
    _truncate(root / "trunc_mcap", 0.6)
    write_recording(root / "no_metadata", SHORT)
    (root / "no_metadata" / "metadata.yaml").unlink()
    write_recording(root / "no_wrist", RecordingSpec(duration_s=2.0, cameras=("front",)))
    write_recording(
        root / "clock_jump", RecordingSpec(duration_s=3.0, state_clock_jump=(1.0, -20.0))
    )
    write_recording(root / "source", SHORT)
    rewrite_bag(root / "source", root / "bad_encoding", _bad_encoding)
    rewrite_bag(root / "source", root / "size_change", _size_change)
    shutil.rmtree(root / "source")
    return {
        "trunc_sqlite": "malformed",
        "trunc_mcap": "mcap recover",
        "no_metadata": "ros2 bag reindex",
        "no_wrist": "camera.wrist topic /camera/wrist/image_raw or",
        "clock_jump": "non-monotonic stamps",
        "bad_encoding": "unsupported image encoding '32FC1'",
        "size_change": "is (48, 128), the video is (96, 128)",
    }


def test_each_bad_bag_is_skipped_with_its_reason(tmp_path):
    expected = _make_fault_bags(tmp_path / "bags")
    result = run_conversion([tmp_path / "bags"], tmp_path / "out", ConvertConfig(), progress=False)
    reasons = {Path(b["bag"]).name: b["error"] for b in result.report["bags"]}
    assert reasons.pop("a_good") is None
    for name, words in expected.items():
        assert words in (reasons[name] or ""), f"{name}: {reasons[name]}"
    assert result.episodes == 1
    assert LeRobotV3Dataset(result.output, load_images=False).episode_indices == [0]


def test_no_usable_bag_means_no_dataset_and_a_clear_error(tmp_path):
    write_recording(tmp_path / "bags" / "bag", RecordingSpec(duration_s=2.0, cameras=("front",)))
    with pytest.raises(ConversionError, match=r"no episode could be converted.*wrist"):
        run_conversion([tmp_path / "bags"], tmp_path / "out", ConvertConfig(), progress=False)
    assert not (tmp_path / "out").exists()


def _dataset_content(root: Path) -> dict:
    """Everything that must be identical between two conversions of the same bags."""
    dataset = LeRobotV3Dataset(root)
    content = {
        "data": pq.read_table(root / "data/chunk-000/file-000.parquet").to_pylist(),
        "episodes": pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pylist(),
        "info": (root / "meta/info.json").read_text(),
        "stats": (root / "meta/stats.json").read_text(),
        "tasks": dataset.tasks,
    }
    for episode in dataset.episode_indices:
        for camera in dataset.cameras:
            content[f"{episode}/{camera}"] = dataset.episode_frames(episode, camera).tobytes()
    return content


def test_interrupted_then_resumed_equals_uninterrupted(tmp_path):
    bags = tmp_path / "bags"
    for i in range(4):
        write_recording(bags / f"ep{i}", RecordingSpec(duration_s=6.0, seed=i))
    output = tmp_path / "resumed"
    staging = tmp_path / ".resumed.rynnvla-staging"
    command = [sys.executable, "-m", "rynnvla_training.convert.cli", str(bags), "-o", str(output)]
    command += ["--quiet", "--workers", "1"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        done: list[Path] = []
        while time.monotonic() < deadline and process.poll() is None:
            done = [p for p in staging.glob("config-*/bags/ep*") if (p / "result.json").exists()]
            if done:
                break
            time.sleep(0.01)
        assert done, "the conversion finished no bag before the deadline"
        process.send_signal(signal.SIGKILL)  # the harshest interruption: no cleanup at all
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert not output.exists(), "an interrupted run must not leave a visible dataset"

    resumed = run_conversion([bags], output, ConvertConfig(), workers=1, progress=False)
    cached = [Path(b["bag"]).name for b in resumed.report["bags"] if b["cached"]]
    assert len(cached) >= 1  # the finished bags were not converted again
    assert not staging.exists()
    fresh = run_conversion([bags], tmp_path / "fresh", ConvertConfig(), progress=False)
    assert _dataset_content(output) == _dataset_content(fresh.output)


def test_failure_while_assembling_leaves_previous_output_and_resumes(tmp_path, monkeypatch):
    write_recording(tmp_path / "bags" / "one", SHORT)
    output = tmp_path / "out"
    first = run_conversion([tmp_path / "bags"], output, ConvertConfig(), progress=False)
    before = (output / "meta/info.json").read_text()
    write_recording(tmp_path / "bags" / "two", SHORT)

    real_write = pipeline_module.write_dataset

    def write_then_fail(root, *args, **kwargs):
        real_write(root, *args, **kwargs)
        raise OSError("disk full (injected)")

    monkeypatch.setattr(pipeline_module, "write_dataset", write_then_fail)
    with pytest.raises(OSError, match="injected"):
        run_conversion([tmp_path / "bags"], output, ConvertConfig(), overwrite=True, progress=False)
    assert (output / "meta/info.json").read_text() == before  # old dataset untouched
    monkeypatch.setattr(pipeline_module, "write_dataset", real_write)
    second = run_conversion(
        [tmp_path / "bags"], output, ConvertConfig(), overwrite=True, progress=False
    )
    assert first.episodes == 1 and second.episodes == 2
    assert sum(b["cached"] for b in second.report["bags"]) == 2  # both reused from staging
    assert not any(p.name.startswith(".") for p in output.iterdir())


def test_concurrent_runs_on_one_output_are_refused(tmp_path):
    write_recording(tmp_path / "bags" / "one", SHORT)
    config = ConvertConfig()
    staging = pipeline_module._Staging(tmp_path / "out", config)
    with staging, pytest.raises(ConversionError, match="another conversion"):
        run_conversion([tmp_path / "bags"], tmp_path / "out", config, progress=False)


def test_many_messages_with_bad_data_name_the_message_time(tmp_path):
    write_recording(tmp_path / "source", SHORT)

    def nan_state(topic, log_ns, message):
        if topic == "/joint_states" and log_ns > 1_700_000_001 * 10**9:
            message.position = np.full(6, np.nan)
        return message

    rewrite_bag(tmp_path / "source", tmp_path / "bags" / "nan", nan_state)
    write_recording(tmp_path / "bags" / "ok", SHORT)
    result = run_conversion([tmp_path / "bags"], tmp_path / "out", ConvertConfig(), progress=False)
    error = next(b["error"] for b in result.report["bags"] if b["bag"].endswith("nan"))
    assert "state message stamped 17000000" in error and "non-finite" in error
    assert os.listdir(tmp_path / "out")
