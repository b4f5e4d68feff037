"""Record ROS 2 topics to an MCAP file that ``ros2 bag`` reads (rosbag2's mcap storage layout).

Messages are taken as serialized CDR straight from DDS (``raw=True`` subscriptions) and written
unchanged, with the ``ros2msg`` schema of each type (the full concatenated message definition,
as rosbag2 writes it) and each publisher's offered QoS in the channel metadata. Next to the
``.mcap`` file goes a rosbag2 ``metadata.yaml``, so ``ros2 bag info <dir>`` and ``ros2 bag play
<dir>`` work on a machine with ROS 2; here, ``mcap_ros2.reader`` decodes it.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from dataclasses import dataclass, field

from mcap.writer import CompressionType, Writer
from rclpy.node import Node
from rclpy.qos import QoSProfile

_SEPARATOR = "=" * 80
_PRIMITIVES = {
    "bool", "byte", "char", "float32", "float64", "int8", "uint8", "int16", "uint16", "int32", "uint32",
    "int64", "uint64", "string", "wstring", "time", "duration",
}


def _msg_search_roots() -> list[str]:
    roots = [os.path.join(sys.prefix, "share")]
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        if prefix:
            roots.append(os.path.join(prefix, "share"))
    return roots


def _read_msg(pkg: str, name: str) -> str:
    for root in _msg_search_roots():
        path = os.path.join(root, pkg, "msg", name + ".msg")
        if os.path.isfile(path):
            with open(path) as f:
                return f.read()
    raise FileNotFoundError(f"no .msg definition for {pkg}/msg/{name} under {_msg_search_roots()}")


def message_definition(type_name: str) -> str:
    """The full ``ros2msg`` definition of ``pkg/msg/Name``: its text, then every nested type's.

    Nested types follow a line of 80 '=' and ``MSG: pkg/Name`` (the format rosbag2 and
    mcap-ros2-support use).
    """
    pkg, _, name = type_name.partition("/msg/")
    if not name:
        raise ValueError(f"type name must be 'pkg/msg/Name', got '{type_name}'")
    main = _read_msg(pkg, name)
    parts, seen, queue = [main], {f"{pkg}/{name}"}, [(pkg, main)]
    while queue:
        owner_pkg, text = queue.pop(0)
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip()
            if not line or re.match(r"^\S+\s+\w+\s*=", line):  # constants
                continue
            ftype = re.sub(r"\[.*?\]$", "", line.split()[0])
            ftype = re.sub(r"<=\d+$", "", ftype)
            if ftype in _PRIMITIVES or ftype.startswith("string<="):
                continue
            if "/" in ftype:
                dep_pkg, dep_name = ftype.split("/")[0], ftype.split("/")[-1]
            else:
                dep_pkg, dep_name = owner_pkg, ftype
            key = f"{dep_pkg}/{dep_name}"
            if key in seen:
                continue
            seen.add(key)
            dep = _read_msg(dep_pkg, dep_name)
            parts.append(f"{_SEPARATOR}\nMSG: {key}\n{dep}")
            queue.append((dep_pkg, dep))
    return "\n".join(p.rstrip("\n") for p in parts) + "\n"


def _type_name(msg_type) -> str:
    module = msg_type.__module__.split(".")  # e.g. sensor_msgs.msg._image
    return f"{module[0]}/msg/{msg_type.__name__}"


def _qos_yaml(qos: QoSProfile) -> str:
    return (
        f"- history: {int(qos.history)}\n  depth: {int(qos.depth)}\n  reliability: {int(qos.reliability)}\n"
        f"  durability: {int(qos.durability)}\n  deadline:\n    sec: 0\n    nsec: 0\n  lifespan:\n    sec: 0\n    nsec: 0\n"
        f"  liveliness: {int(qos.liveliness)}\n  liveliness_lease_duration:\n    sec: 0\n    nsec: 0\n"
        f"  avoid_ros_namespace_conventions: false\n"
    )


@dataclass
class TopicStats:
    type_name: str
    qos: str
    count: int = 0
    bytes: int = 0
    first_ns: int | None = None
    last_ns: int | None = None
    callbacks: list = field(default_factory=list)


class McapRecorder:
    """Subscribes to topics with ``raw=True`` and writes every message to ``<bag_dir>/<name>.mcap``.

    ``on_message(topic, cdr_bytes, receive_ns)`` hooks (``add_listener``) see each message too,
    so an evaluator can deserialise what it needs without a second subscription.
    """

    def __init__(self, node: Node, bag_dir: str, name: str = "recording", compression: str = "zstd"):
        self.node = node
        self.bag_dir = bag_dir
        os.makedirs(bag_dir, exist_ok=True)
        self.file_name = f"{name}.mcap"
        self.path = os.path.join(bag_dir, self.file_name)
        self._file = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        comp = {"zstd": CompressionType.ZSTD, "lz4": CompressionType.LZ4, "none": CompressionType.NONE}[compression]
        self._writer = Writer(self._file, compression=comp)
        self._writer.start(profile="ros2", library="vega_ros recorder")
        self._lock = threading.Lock()
        self._schemas: dict[str, int] = {}
        self._channels: dict[str, int] = {}
        self.topics: dict[str, TopicStats] = {}
        self._subs = []
        self._closed = False

    def add_topic(self, topic: str, msg_type, qos: QoSProfile) -> None:
        type_name = _type_name(msg_type)
        with self._lock:
            if type_name not in self._schemas:
                self._schemas[type_name] = self._writer.register_schema(
                    name=type_name, encoding="ros2msg", data=message_definition(type_name).encode()
                )
            qos_text = _qos_yaml(qos)
            self._channels[topic] = self._writer.register_channel(
                topic=topic, message_encoding="cdr", schema_id=self._schemas[type_name],
                metadata={"offered_qos_profiles": qos_text},
            )
            self.topics[topic] = TopicStats(type_name, qos_text)
        self._subs.append(self.node.create_subscription(msg_type, topic, lambda data, t=topic: self._on(t, data), qos, raw=True))

    def add_listener(self, topic: str, callback) -> None:
        self.topics[topic].callbacks.append(callback)

    def _on(self, topic: str, data: bytes) -> None:
        now = time.time_ns()
        st = self.topics[topic]
        with self._lock:
            if self._closed:
                return
            self._writer.add_message(self._channels[topic], log_time=now, data=data, publish_time=now, sequence=st.count)
            st.count += 1
            st.bytes += len(data)
            st.first_ns = now if st.first_ns is None else st.first_ns
            st.last_ns = now
        for cb in st.callbacks:
            cb(topic, data, now)

    def close(self) -> str:
        """Finish the MCAP file, write ``metadata.yaml``; returns the bag directory."""
        with self._lock:
            if self._closed:
                return self.bag_dir
            self._closed = True
            self._writer.finish()
            self._file.close()
        for sub in self._subs:
            self.node.destroy_subscription(sub)
        self._write_metadata()
        return self.bag_dir

    def _write_metadata(self) -> None:
        firsts = [s.first_ns for s in self.topics.values() if s.first_ns is not None]
        lasts = [s.last_ns for s in self.topics.values() if s.last_ns is not None]
        start = min(firsts) if firsts else 0
        duration = (max(lasts) - start) if lasts else 0
        total = sum(s.count for s in self.topics.values())
        lines = [
            "rosbag2_bagfile_information:",
            "  version: 5",
            "  storage_identifier: mcap",
            "  duration:",
            f"    nanoseconds: {duration}",
            "  starting_time:",
            f"    nanoseconds_since_epoch: {start}",
            f"  message_count: {total}",
            "  topics_with_message_count:",
        ]
        for topic, s in sorted(self.topics.items()):
            qos = s.qos.replace("\n", "\\n").replace('"', '\\"')
            lines += [
                "    - topic_metadata:",
                f"        name: {topic}",
                f"        type: {s.type_name}",
                "        serialization_format: cdr",
                f'        offered_qos_profiles: "{qos}"',
                f"      message_count: {s.count}",
            ]
        lines += [
            '  compression_format: ""',
            '  compression_mode: ""',
            "  relative_file_paths:",
            f"    - {self.file_name}",
            "  files:",
            f"    - path: {self.file_name}",
            "      starting_time:",
            f"        nanoseconds_since_epoch: {start}",
            "      duration:",
            f"        nanoseconds: {duration}",
            f"      message_count: {total}",
        ]
        tmp = os.path.join(self.bag_dir, "metadata.yaml.tmp")
        with open(tmp, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(tmp, os.path.join(self.bag_dir, "metadata.yaml"))
