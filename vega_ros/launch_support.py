"""Checks and small rewrites the launch files make before they start anything (no ``launch`` import here).

The launch files decide everything that can fail up front, inside an ``OpaqueFunction``, so that a
missing optional tool or a missing artifact never leaves half of a launch running:

* :func:`package_executable` finds an executable the way ``launch_ros``' ``Node(package=...)``
  does (the ament index: ``<prefix>/lib/<package>/<executable>``), so "RViz is installed" means
  exactly "the RViz node would start".
* :func:`rviz_config_for_namespace` rewrites config/vega.rviz (written for the namespace
  ``camera``) for another namespace.
* :func:`resolve_policy` turns the ``policy`` launch argument into what the policy node gets, or
  refuses with a message that says what to pass.
"""

from __future__ import annotations

import os
import re
import tempfile

RVIZ_TEMPLATE_NAMESPACE = "camera"
POLICY_CARD = "policy_card.json"
NOOP = "noop"
NOOP_WARNING = ("policy:=noop: the policy node publishes zero motion with the gripper open, so the robot will HOLD STILL; "
                "this is for bring-up only (pass policy:=<policy artifact directory> to act)")


class LaunchArgumentError(ValueError):
    """A launch argument that cannot work; the message names the argument and what to pass."""


def normalize_namespace(namespace: str) -> str:
    """``'/front/'`` -> ``'front'``; a ROS name of letters, digits, ``_`` and ``/`` separators."""
    ns = namespace.strip().strip("/")
    if not ns or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*", ns):
        raise LaunchArgumentError(f"camera:={namespace!r} is not a namespace (letters, digits, '_', separated by '/'; "
                                  "e.g. camera:=front)")
    return ns


def package_executable(package: str, executable: str) -> str | None:
    """Path of ``executable`` of ROS package ``package`` as ``launch_ros`` would run it, or None when the
    package is not in the ament index (not installed / not sourced) or lacks that executable."""
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_prefix
    except ImportError:
        return None
    try:
        prefix = get_package_prefix(package)
    except (PackageNotFoundError, ValueError):
        return None
    path = os.path.join(prefix, "lib", package, executable)
    return path if os.path.isfile(path) and os.access(path, os.X_OK) else None


def rviz_missing_message() -> str:
    distro = os.environ.get("ROS_DISTRO", "<distro>")
    return (f"use_rviz:=true but RViz is not installed (no 'rviz2' executable of package rviz2 in the ament index); "
            f"the nodes start without it. Install it with 'sudo apt install ros-{distro}-rviz2' (or view the topics "
            "from another machine on the same ROS domain)")


def rviz_config_for_namespace(template: str, namespace: str, out_dir: str | None = None) -> str:
    """A copy of the RViz config ``template`` (topics under ``/camera/``) with its topics under
    ``/<namespace>/``; returns ``template`` itself for the namespace ``camera``."""
    ns = normalize_namespace(namespace)
    if ns == RVIZ_TEMPLATE_NAMESPACE:
        return template
    with open(template) as f:
        text = f.read()
    text, n = re.subn(rf"(Value: )/{RVIZ_TEMPLATE_NAMESPACE}/", rf"\g<1>/{ns}/", text)
    if n == 0:
        raise LaunchArgumentError(f"{template}: no topic under /{RVIZ_TEMPLATE_NAMESPACE}/ to move to /{ns}/")
    fd, path = tempfile.mkstemp(prefix=f"vega_{ns.replace('/', '_')}_", suffix=".rviz", dir=out_dir)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


def resolve_policy(policy: str, task: str) -> str:
    """The ``policy`` parameter for the node: ``'noop'`` (asked for explicitly) or the absolute path of a
    policy artifact directory. Refuses an empty argument, a directory without ``policy_card.json`` and a
    trained policy without a ``task``."""
    policy = policy.strip()
    if not policy:
        raise LaunchArgumentError("policy:=<policy artifact directory> is required (the directory with policy.onnx, "
                                  f"language_embeddings.json and {POLICY_CARD}, e.g. policy:=models/bc-fused-brisk-ft); "
                                  "policy:=noop starts a policy that holds the robot still, for bring-up only")
    if policy == NOOP:
        return NOOP
    path = os.path.abspath(os.path.expanduser(policy))
    if not os.path.isfile(os.path.join(path, POLICY_CARD)):
        raise LaunchArgumentError(f"policy:={policy}: {path} is not a policy artifact (no {POLICY_CARD} in it)")
    if not task.strip():
        raise LaunchArgumentError(f"task:=<language instruction> is required with policy:={policy} "
                                  "(one of the instructions the policy was trained on)")
    return path
