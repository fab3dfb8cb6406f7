"""rosbag2 writing with the pure-Python ``rosbags`` library (no ROS install needed).

``EpisodeBagWriter`` writes one episode: messages are given with their header stamp already set
and the time the recorder would have received them (the bag's log time). Messages are buffered
briefly and written in log-time order, as ``ros2 bag record`` does. Bags use rosbag2 format
version 9 (what Jazzy and Kilted write and ``ros2 bag info`` reads) with the standard message
definitions of Jazzy, sqlite3 or MCAP storage, and the offered QoS profiles of the live topics
(``/instruction`` transient local: played back like a latched topic).
"""

from __future__ import annotations

import functools
import heapq
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rosbags.interfaces import (
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

BAG_VERSION = 9
STORAGES = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}
_INFINITE = QosTime(9223372036, 854775807)  # rmw's "infinite" duration, as ros2 bag records it


@functools.cache
def typestore():
    """The message definitions bags are written with (ROS 2 Jazzy; identical in Kilted)."""
    return get_typestore(Stores.ROS2_JAZZY)


def qos(*, reliable: bool, transient_local: bool = False, depth: int = 10) -> Qos:
    return Qos(
        QosHistory.KEEP_LAST,
        depth,
        QosReliability.RELIABLE if reliable else QosReliability.BEST_EFFORT,
        QosDurability.TRANSIENT_LOCAL if transient_local else QosDurability.VOLATILE,
        _INFINITE,
        _INFINITE,
        QosLiveliness.AUTOMATIC,
        _INFINITE,
        False,
    )


SENSOR_QOS = qos(reliable=False, depth=5)  # rclpy's qos_profile_sensor_data
RELIABLE_QOS = qos(reliable=True)
LATCHED_QOS = qos(reliable=True, transient_local=True, depth=1)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    msgtype: str  # e.g. "sensor_msgs/msg/JointState"
    qos: Qos


class EpisodeBagWriter:
    """One rosbag2 directory; ``write`` in any order within ``reorder_window_ns``."""

    def __init__(
        self,
        path: Path,
        storage: str,
        topics: list[TopicSpec],
        *,
        reorder_window_ns: int = 200_000_000,
        custom_data: dict[str, str] | None = None,
    ):
        if storage not in STORAGES:
            raise ValueError(f"storage must be one of {sorted(STORAGES)}, got {storage!r}")
        self.types = typestore()
        self._writer = Writer(Path(path), version=BAG_VERSION, storage_plugin=STORAGES[storage])
        for key, value in (custom_data or {}).items():
            self._writer.set_custom_data(key, value)
        self._writer.open()
        self._connections = {
            t.name: self._writer.add_connection(
                t.name, t.msgtype, typestore=self.types, offered_qos_profiles=[t.qos]
            )
            for t in topics
        }
        self._msgtypes = {t.name: t.msgtype for t in topics}
        self._window = int(reorder_window_ns)
        self._heap: list[tuple[int, int, str, bytes]] = []
        self._order = itertools.count()  # ties keep the order of write()
        self._latest_ns = 0
        self.counts = dict.fromkeys(self._connections, 0)

    def write(self, topic: str, msg: Any, log_time_ns: int) -> None:
        """Queue ``msg`` on ``topic`` as received at ``log_time_ns``."""
        if topic not in self._connections:
            raise KeyError(f"topic {topic!r} was not declared; declared: {sorted(self._msgtypes)}")
        data = self.types.serialize_cdr(msg, self._msgtypes[topic])
        heapq.heappush(self._heap, (int(log_time_ns), next(self._order), topic, bytes(data)))
        self._latest_ns = max(self._latest_ns, int(log_time_ns))
        self._flush(self._latest_ns - self._window)

    def _flush(self, until_ns: int | None) -> None:
        while self._heap and (until_ns is None or self._heap[0][0] <= until_ns):
            log_ns, _, topic, data = heapq.heappop(self._heap)
            self._writer.write(self._connections[topic], log_ns, data)
            self.counts[topic] += 1

    def close(self) -> None:
        """Write what is queued, the index and metadata.yaml."""
        self._flush(None)
        self._writer.close()

    def abort(self) -> None:
        self._writer.abort()

    def __enter__(self) -> EpisodeBagWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
