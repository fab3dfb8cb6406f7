"""Bag discovery, fingerprints and header stamps read straight from CDR bytes."""

from __future__ import annotations

import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore

from rynnvla_policy.conversions import ns_to_stamp
from rynnvla_training.convert.bag import BagError, BagSource, find_bags, header_stamp_ns


@pytest.mark.parametrize("little_endian", [True, False])
def test_header_stamp_from_raw_cdr_matches_deserialisation(little_endian):
    store = get_typestore(Stores.ROS2_HUMBLE)
    types = store.types
    stamp = ns_to_stamp(1_700_000_123_456_789_012, types["builtin_interfaces/msg/Time"])
    message = types["std_msgs/msg/Header"](stamp=stamp, frame_id="cam")
    state = types["sensor_msgs/msg/JointState"](
        header=message,
        name=["a"],
        position=np.array([1.0]),
        velocity=np.zeros(0),
        effort=np.zeros(0),
    )
    raw = store.serialize_cdr(state, state.__msgtype__, little_endian=little_endian)
    assert header_stamp_ns(raw) == 1_700_000_123_456_789_012
    with pytest.raises(BagError, match="too short"):
        header_stamp_ns(raw[:10])


def test_find_bags_walks_folders_and_names_bad_inputs(tmp_path):
    for name in ("b", "a/nested"):
        (tmp_path / "rec" / name).mkdir(parents=True)
        (tmp_path / "rec" / name / "metadata.yaml").write_text("x")
    (tmp_path / "rec" / "notes").mkdir()
    assert [p.name for p in find_bags([tmp_path / "rec"])] == ["nested", "b"]
    with pytest.raises(BagError, match="does not exist"):
        find_bags([tmp_path / "missing"])
    with pytest.raises(BagError, match="no rosbag2 recording"):
        find_bags([tmp_path / "rec" / "notes"])


def test_bag_without_metadata_suggests_reindex(tmp_path):
    (tmp_path / "bag").mkdir()
    (tmp_path / "bag" / "bag_0.db3").write_bytes(b"")
    with pytest.raises(BagError, match="ros2 bag reindex"), BagSource(tmp_path / "bag"):
        pass


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_deserialised_image_data_is_a_view_of_the_raw_message(tmp_path, storage):
    from rynnvla_training.convert.synthetic import RecordingSpec, write_recording

    spec = RecordingSpec(duration_s=0.2, image_size=(96, 128), storage=storage, cameras=("front",))
    write_recording(tmp_path / "bag", spec)
    with BagSource(tmp_path / "bag") as source:
        topic = "/camera/front/image_raw"
        _, _, raw = next(source.messages([topic]))
        message = source.deserialize(raw, topic)
        image_bytes = 96 * 128 * 3
        assert message.data.shape == (image_bytes,)
        # no copy of the ~1 MB payload of a real camera: the array shares the raw bytes
        assert np.shares_memory(message.data, np.frombuffer(raw, np.uint8))
        assert bytes(raw)[-image_bytes:] == message.data.tobytes()
