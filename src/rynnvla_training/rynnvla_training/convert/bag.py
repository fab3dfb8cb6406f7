"""Reading rosbag2 recordings with the pure-Python ``rosbags`` library (no ROS install).

sqlite3 and MCAP storage, file- or message-compressed bags, message definitions from the bag
itself or, for bags that do not embed them, from a chosen distro's typestore.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

BAG_FILE_SUFFIXES = (".db3", ".mcap")


class BagError(Exception):
    """A bag cannot be read; the message names the bag and, where known, the fix."""


def is_bag_dir(path: Path) -> bool:
    return path.is_dir() and (
        (path / "metadata.yaml").is_file()
        or any(p.suffix in BAG_FILE_SUFFIXES for p in path.iterdir() if p.is_file())
    )


def find_bags(paths: Iterable[str | Path]) -> list[Path]:
    """Bag directories named by ``paths`` (a bag directory, or a folder searched recursively).

    Raises BagError for a path that does not exist or holds no bag.
    """
    bags: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise BagError(f"input {path} does not exist")
        if path.is_file() and path.suffix in BAG_FILE_SUFFIXES:
            path = path.parent
        if is_bag_dir(path):
            bags.append(path)
            continue
        found = sorted(p for p in path.rglob("*") if is_bag_dir(p))
        if not found:
            raise BagError(f"no rosbag2 recording (metadata.yaml, *.db3, *.mcap) under {path}")
        bags.extend(found)
    unique = list(dict.fromkeys(p.resolve() for p in bags))
    return unique


def bag_fingerprint(path: Path) -> str:
    """Hash of a bag's location and its files' names, sizes and modification times."""
    digest = hashlib.sha256(str(path.resolve()).encode())
    for file in sorted(p for p in path.iterdir() if p.is_file()):
        stat = file.stat()
        digest.update(f"{file.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def header_stamp_ns(raw: bytes | memoryview) -> int:
    """header.stamp of a CDR-serialised message whose first field is std_msgs/Header.

    Reads 8 bytes instead of deserialising (a raw image is ~1 MB): after the 4-byte
    encapsulation header come int32 sec and uint32 nanosec, in the byte order the
    encapsulation names (byte 1: 1 = little endian, 0 = big endian).
    """
    if len(raw) < 12:
        raise BagError(f"message of {len(raw)} bytes is too short to hold a header stamp")
    order = "<" if raw[1] == 1 else ">"
    sec, nanosec = struct.unpack_from(order + "iI", raw, 4)
    return sec * 1_000_000_000 + nanosec


_HINTS = (
    ("end magic", " (MCAP file truncated: interrupted recording? try `mcap recover`)"),
    ("malformed", " (damaged sqlite3 file: truncated copy or crashed recording?)"),
    ("not a database", " (not an sqlite3 file)"),
    ("Zstandard", " (damaged zstd-compressed bag file)"),
)


def _hint(exc: Exception) -> str:
    text = str(exc)
    return next((hint for key, hint in _HINTS if key in text), "")


class BagSource:
    """An open bag: its topics and time-ordered raw messages. Use as a context manager."""

    def __init__(self, path: Path, typestore: str = "latest"):
        self.path = Path(path)
        self._typestore_name = typestore
        self._reader: Any = None
        self._types: dict[str, str] = {}

    def __enter__(self) -> BagSource:
        from rosbags.highlevel import AnyReader
        from rosbags.typesys import Stores, get_typestore

        if not (self.path / "metadata.yaml").is_file():
            raise BagError(
                f"bag {self.path} has no metadata.yaml (was the recording interrupted?); "
                "recreate it with `ros2 bag reindex <bag>`"
            )
        try:
            store = get_typestore(Stores(self._typestore_name))
            self._reader = AnyReader([self.path], default_typestore=store)
            self._reader.open()
        except Exception as exc:  # rosbags raises many types for unreadable files
            raise BagError(
                f"cannot open bag {self.path}: {type(exc).__name__}: {exc}{_hint(exc)}"
            ) from exc
        for connection in self._reader.connections:
            self._types.setdefault(connection.topic, connection.msgtype)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._reader is not None:
            try:
                self._reader.close()
            finally:
                self._reader = None

    @property
    def topics(self) -> dict[str, str]:
        """topic -> message type ("sensor_msgs/msg/Image")."""
        return dict(self._types)

    @property
    def start_time_ns(self) -> int:
        return int(self._reader.start_time)

    @property
    def duration_ns(self) -> int:
        return int(self._reader.duration)

    def message_count(self, topic: str) -> int:
        return sum(c.msgcount for c in self._reader.connections if c.topic == topic)

    def resolve(self, candidates: Iterable[str]) -> str | None:
        """The first candidate topic recorded in this bag, or None."""
        return next((t for t in candidates if t in self._types), None)

    def messages(self, topics: Iterable[str]) -> Iterator[tuple[str, int, bytes]]:
        """(topic, log time ns, raw CDR bytes) of ``topics`` in log-time order."""
        wanted = set(topics)
        connections = [c for c in self._reader.connections if c.topic in wanted]
        try:
            for connection, log_time, raw in self._reader.messages(connections=connections):
                yield connection.topic, int(log_time), raw
        except BagError:
            raise
        except Exception as exc:  # a corrupt chunk / truncated file surfaces mid-iteration
            raise BagError(
                f"bag {self.path} is corrupt or truncated: {type(exc).__name__}: {exc}"
            ) from exc

    def deserialize(self, raw: bytes | memoryview, topic: str) -> Any:
        """The message; its arrays (image data...) are read-only views of ``raw``, not copies.

        rosbags slices the 4-byte CDR header off its input: on ``bytes`` that copies the
        whole message (~1 MB for a raw image), on a memoryview it does not.
        """
        try:
            return self._reader.deserialize(memoryview(raw), self._types[topic])
        except Exception as exc:
            raise BagError(
                f"cannot deserialise a {self._types[topic]} message on {topic} in "
                f"{self.path}: {type(exc).__name__}: {exc}"
            ) from exc
