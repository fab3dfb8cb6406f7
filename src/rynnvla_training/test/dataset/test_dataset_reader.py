"""LeRobotV3Dataset, validate, preview and the rynnvla-dataset CLI on converted datasets."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rynnvla_training.convert import ConvertConfig, run_conversion
from rynnvla_training.convert.synthetic import RecordingSpec, read_frame_code, write_recording
from rynnvla_training.dataset import DatasetError, LeRobotV3Dataset
from rynnvla_training.dataset.cli import main as dataset_main
from rynnvla_training.dataset.validate import validate


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("reader")
    for i, task in enumerate(("pick", "place", "pick")):
        spec = RecordingSpec(duration_s=1.5 + 0.5 * i, seed=i, instructions=((0.0, task),))
        write_recording(root / "bags" / f"ep{i}", spec)
    config = ConvertConfig.from_dict({"split": {"val_fraction": 0.34}})
    result = run_conversion([root / "bags"], root / "dataset", config, progress=False)
    return result.output


def test_episode_arrays_match_the_data_files(dataset_root):
    dataset = LeRobotV3Dataset(dataset_root)
    table = pq.read_table(dataset_root / "data/chunk-000/file-000.parquet").to_pylist()
    assert len(dataset) == len(table) == dataset.info["total_frames"]
    for episode in dataset.episode_indices:
        data = dataset.episode(episode)
        rows = [r for r in table if r["episode_index"] == episode]
        np.testing.assert_array_equal(data.states, np.array([r["observation.state"] for r in rows]))
        np.testing.assert_array_equal(data.actions, np.array([r["action"] for r in rows]))
        np.testing.assert_allclose(data.timestamps, np.arange(data.length) / 30, atol=1e-6)
        assert data.states.dtype == np.float32 and data.states.shape[1] == 6
    assert sorted(dataset.tasks) == ["pick", "place"]


def test_episode_frames_decode_once_in_order(dataset_root):
    dataset = LeRobotV3Dataset(dataset_root)
    for episode in dataset.episode_indices:
        frames = dataset.episode_frames(episode, "front")
        assert frames.shape == (dataset.episode(episode).length, 96, 128, 3)
        codes = [read_frame_code(f) for f in frames]
        assert codes == sorted(codes) and codes[0] <= 1  # camera frames in order, from the start
    picked = dataset.episode_frames(1, "observation.images.wrist", frame_indices=[5, 0, 5])
    full = dataset.episode_frames(1, "wrist")
    np.testing.assert_array_equal(picked, full[[5, 0, 5]])
    small = dataset.episode_frames(1, "wrist", size=(48, 64))
    assert small.shape == (full.shape[0], 48, 64, 3)


def test_getitem_gives_frames_with_cached_episode_video(dataset_root):
    dataset = LeRobotV3Dataset(dataset_root)
    first = dataset.episode_indices[0]
    length = dataset.episode(first).length
    item = dataset[length - 1]
    assert item["episode_index"] == first and item["frame_index"] == length - 1
    assert item["task"] == dataset.tasks[item["task_index"]]
    frames = dataset.episode_frames(first, "front")
    np.testing.assert_array_equal(item["observation.images.front"], frames[-1])
    assert set(dataset._cache) == {first}  # the whole episode was decoded once and kept
    nxt = dataset[length]
    assert nxt["episode_index"] == dataset.episode_indices[1] and nxt["frame_index"] == 0
    assert nxt["index"] == length
    with pytest.raises(IndexError):
        dataset[len(dataset)]


def test_subsets_splits_and_errors(dataset_root):
    info = json.loads((dataset_root / "meta/info.json").read_text())
    assert info["splits"] == {"train": "0:2", "val": "2:3"}
    assert LeRobotV3Dataset(dataset_root, split="val").episode_indices == [2]
    subset = LeRobotV3Dataset(dataset_root, episodes=[2, 0], load_images=False)
    assert subset.episode_indices == [2, 0]
    assert "observation.images.front" not in subset[0]
    with pytest.raises(DatasetError, match=r"episodes \[7\] not in the dataset"):
        LeRobotV3Dataset(dataset_root, episodes=[7])
    with pytest.raises(DatasetError, match="split 'test'"):
        LeRobotV3Dataset(dataset_root, split="test")
    with pytest.raises(DatasetError, match="no camera 'side'"):
        subset.episode_frames(0, "side")
    stats = subset.processor_statistics()
    assert len(stats["rel_mean_action"]) == 6 and stats["absolute_dims"] == [5]


def test_not_a_dataset_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match=r"not a LeRobot v3\.0 dataset"):
        LeRobotV3Dataset(tmp_path)
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta/info.json").write_text(json.dumps({"codebase_version": "v2.1"}))
    with pytest.raises(DatasetError, match=r"'v2\.1'"):
        LeRobotV3Dataset(tmp_path)


def test_lerobot_layout_facts(dataset_root):
    info = json.loads((dataset_root / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0"
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert (dataset_root / "videos/observation.images.front/chunk-000/file-000.mp4").is_file()
    tasks = pq.read_table(dataset_root / "meta/tasks.parquet")
    assert json.loads(tasks.schema.metadata[b"pandas"])["index_columns"] == ["task"]
    episodes = pq.read_table(dataset_root / "meta/episodes/chunk-000/file-000.parquet")
    for column in (
        "episode_index",
        "tasks",
        "length",
        "data/chunk_index",
        "dataset_from_index",
        "videos/observation.images.front/from_timestamp",
        "stats/observation.state/mean",
        "meta/episodes/file_index",
    ):
        assert column in episodes.column_names
    state_type = pq.read_schema(dataset_root / "data/chunk-000/file-000.parquet").field(
        "observation.state"
    )
    assert pa.types.is_fixed_size_list(state_type.type) and state_type.type.list_size == 6
    assert state_type.type.value_type == pa.float32()
    stats = json.loads((dataset_root / "meta/stats.json").read_text())
    assert np.array(stats["observation.images.front"]["mean"]).shape == (3, 1, 1)
    assert stats["observation.state"]["count"] == [info["total_frames"]]


def test_validate_finds_problems(dataset_root, tmp_path):
    assert validate(dataset_root) == []
    broken = tmp_path / "broken"
    shutil.copytree(dataset_root, broken)
    info = json.loads((broken / "meta/info.json").read_text())
    info["total_frames"] += 1
    (broken / "meta/info.json").write_text(json.dumps(info))
    (broken / "videos/observation.images.wrist/chunk-000/file-000.mp4").unlink()
    stats = json.loads((broken / "meta/stats.json").read_text())
    del stats["rynnvla"]
    (broken / "meta/stats.json").write_text(json.dumps(stats))
    problems = validate(broken)
    assert any("info says" in p for p in problems)
    assert any("missing video" in p for p in problems)
    assert any("'rynnvla'" in p for p in problems)


def test_cli_info_preview_validate(dataset_root, tmp_path, capsys):
    assert dataset_main(["info", str(dataset_root)]) == 0
    out = capsys.readouterr().out
    assert "episodes  3" in out and "'pick' (2 episodes)" in out and "h264" in out
    png = tmp_path / "sheet.png"
    assert dataset_main(["preview", str(dataset_root), "-e", "1", "-o", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert dataset_main(["validate", str(dataset_root), "--decode"]) == 0
    assert dataset_main(["info", str(tmp_path)]) == 1
