"""Facts of the LeRobotDataset v3.0 on-disk layout, shared by the writer and the reader.

A v3.0 dataset root holds::

    meta/info.json                      codebase_version "v3.0", fps, features, path templates
    meta/stats.json                     per-feature statistics (+ our "rynnvla" block)
    meta/tasks.parquet                  one row per task: index "task" (text) -> task_index
    meta/episodes/chunk-000/file-000.parquet   one row per episode (lengths, file refs, stats)
    data/chunk-000/file-000.parquet     one row per frame, many episodes per file
    videos/<video_key>/chunk-000/file-000.mp4  many episodes per file, back to back

An episode's frames are rows ``dataset_from_index .. dataset_to_index`` (global ``index``) of
its data file; its video frames start at ``videos/<key>/from_timestamp`` seconds in its video
file, frame ``k`` at ``from_timestamp + k / fps``.
"""

from __future__ import annotations

import json

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000  # files per chunk directory
DATA_FILES_SIZE_IN_MB = 100
VIDEO_FILES_SIZE_IN_MB = 200

INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
EPISODES_DIR = "meta/episodes"
CHUNK_FILE = "chunk-{chunk_index:03d}/file-{file_index:03d}"
EPISODES_PATH = EPISODES_DIR + "/" + CHUNK_FILE + ".parquet"
DATA_PATH = "data/" + CHUNK_FILE + ".parquet"
VIDEO_PATH = "videos/{video_key}/" + CHUNK_FILE + ".mp4"
# Our own extras (LeRobot ignores unknown files under meta/).
REPORT_PATH = "meta/rynnvla_conversion_report.json"

STATE_KEY = "observation.state"
ACTION_KEY = "action"
IMAGE_KEY_PREFIX = "observation.images."
QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)
QUANTILE_KEYS = tuple(f"q{round(q * 100):02d}" for q in QUANTILES)

# Per-frame bookkeeping columns every LeRobot dataset has.
DEFAULT_FEATURES: dict[str, dict] = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}


def image_key(camera: str) -> str:
    """Camera name ("front") -> feature / video key ("observation.images.front")."""
    return IMAGE_KEY_PREFIX + camera


def chunk_and_file(file_number: int, chunks_size: int = CHUNKS_SIZE) -> tuple[int, int]:
    """The n-th file of a sequence -> (chunk_index, file_index)."""
    return divmod(file_number, chunks_size)


def tasks_pandas_metadata() -> bytes:
    """``pandas`` schema metadata marking column "task" as the index of tasks.parquet.

    LeRobot reads meta/tasks.parquet with pandas and looks tasks up by text
    (``tasks.loc[text].task_index``), so the task text must come back as the index. This is the
    documented pandas-on-parquet metadata that ``DataFrame.to_parquet`` writes; we write it
    with pyarrow alone (pandas is not a dependency).
    """
    meta = {
        "index_columns": ["task"],
        "column_indexes": [
            {
                "name": None,
                "field_name": None,
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": {"encoding": "UTF-8"},
            }
        ],
        "columns": [
            {
                "name": "task_index",
                "field_name": "task_index",
                "pandas_type": "int64",
                "numpy_type": "int64",
                "metadata": None,
            },
            {
                "name": "task",
                "field_name": "task",
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": None,
            },
        ],
        "creator": {"library": "pyarrow", "version": _pyarrow_version()},
        "pandas_version": "2.2.3",
    }
    return json.dumps(meta).encode()


def _pyarrow_version() -> str:
    import pyarrow

    return pyarrow.__version__
