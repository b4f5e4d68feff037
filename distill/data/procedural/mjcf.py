"""Sample a procedural scene and build it as a MuJoCo model (``mujoco.MjSpec``, no robosuite environment).

A scene: a walled room (most with a ceiling) with a textured floor, a table (and sometimes a counter along a wall),
objects from the LIBERO library and primitives on them, 0-2 robosuite arms on pedestals at the table,
1-3 lights, and one free camera ``free_cam`` that clips pose each frame. Objects are placed after
compiling (:mod:`distill.data.procedural.scene`), when their true extents are known: here they get
a surface and a yaw. World z is up; metres. Everything random comes from the one ``rng`` passed in,
so a scene is a pure function of its seed and the config.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

import cv2
import mujoco
import numpy as np

from distill.data.procedural.assets import (
    asset_pool,
    libero_objects,
    libero_textures,
    object_texture_file,
    robot_asset,
)
from distill.data.procedural.config import ProceduralConfig

FREE_CAMERA = "free_cam"
VISIBLE_GROUP = 1
PRIMITIVES = ("box", "sphere", "cylinder", "capsule", "ellipsoid")
_GEOM = {"box": mujoco.mjtGeom.mjGEOM_BOX, "sphere": mujoco.mjtGeom.mjGEOM_SPHERE, "cylinder": mujoco.mjtGeom.mjGEOM_CYLINDER,
         "capsule": mujoco.mjtGeom.mjGEOM_CAPSULE, "ellipsoid": mujoco.mjtGeom.mjGEOM_ELLIPSOID}


@dataclass
class Surface:
    """A horizontal support (table or counter top): centre ``xy``, half sizes, top height (world, m)."""

    name: str
    xy: tuple[float, float]
    half: tuple[float, float]
    top_z: float
    yaw: float = 0.0


@dataclass
class SceneInfo:
    """What a built scene holds (JSON-able parts go into the index)."""

    family: str
    surfaces: list[Surface]
    objects: list[dict] = field(default_factory=list)  # {"body", "kind", "asset", "surface"}
    robots: list[dict] = field(default_factory=list)  # {"name", "prefix", "joints", "ready_qpos"}
    textures: list[str] = field(default_factory=list)
    room: tuple[float, float] = (0.0, 0.0)

    def to_meta(self) -> dict:
        return {"family": self.family, "room_m": [round(v, 3) for v in self.room], "textures": sorted(set(self.textures)),
                "objects": [o["asset"] for o in self.objects], "robots": [r["name"] for r in self.robots],
                "surfaces": [s.name for s in self.surfaces]}


def _load(path) -> mujoco.MjSpec:
    """A robosuite / LIBERO model file as a spec, with its angles read as radians (robosuite's convention)."""
    spec = mujoco.MjSpec.from_file(str(path))
    spec.compiler.degree = False
    return spec


def _quat_z(yaw: float) -> list[float]:
    return [float(np.cos(yaw / 2)), 0.0, 0.0, float(np.sin(yaw / 2))]


@cache
def _png_rgb(path: str, size: int) -> bytes:
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(f"cannot read texture {path}")
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)[..., ::-1].tobytes()


class _Builder:
    def __init__(self, cfg: ProceduralConfig, family: str, rng: np.random.Generator):
        self.cfg, self.family, self.rng = cfg, family, rng
        self.spec = mujoco.MjSpec()
        self.spec.modelname = "procedural"
        self.spec.compiler.autolimits = True
        self.spec.compiler.degree = False  # robosuite's and LIBERO's models give angles (joint ranges) in radians
        self.n_mat = 0
        pool = "heldout" if family == "heldout" else "train"
        self.textures = [t for t in libero_textures() if asset_pool(t.name, cfg.heldout_percent, "tex-") == pool]
        self.objects = [o for o in libero_objects() if asset_pool(o.name, cfg.heldout_percent, "obj-") == pool]
        self.builtins = [cfg.heldout_builtin] if family == "heldout" else [b for b in ("checker", "flat") if b != cfg.heldout_builtin]
        self.used_textures: list[str] = []

    # -------------------------------------------------------------- materials
    def material(self, textured: bool = True, repeat: float = 1.0) -> str:
        """A new random material (image texture, builtin texture, or plain colour); returns its name."""
        rng, cfg = self.rng, self.cfg
        name = f"mat{self.n_mat}"
        self.n_mat += 1
        mat = self.spec.add_material(name=name)
        mat.specular = float(rng.uniform(0.0, 0.6))
        mat.shininess = float(rng.uniform(0.0, 0.8))
        mat.rgba = [1.0, 1.0, 1.0, 1.0]
        choice = rng.uniform() if textured else 1.0
        if choice < 0.55 and self.textures:
            t = self.textures[int(rng.integers(len(self.textures)))]
            tex = self.spec.add_texture(name=f"tex_{name}", type=mujoco.mjtTexture.mjTEXTURE_2D,
                                        width=cfg.texture_px, height=cfg.texture_px, nchannel=3)
            tex.data = _png_rgb(str(t.path), cfg.texture_px)
            self.used_textures.append(t.name)
        elif choice < 0.85:
            kind = self.builtins[int(rng.integers(len(self.builtins)))]
            tex = self.spec.add_texture(name=f"tex_{name}", type=mujoco.mjtTexture.mjTEXTURE_2D,
                                        builtin={"checker": mujoco.mjtBuiltin.mjBUILTIN_CHECKER, "flat": mujoco.mjtBuiltin.mjBUILTIN_FLAT,
                                                 "gradient": mujoco.mjtBuiltin.mjBUILTIN_GRADIENT}[kind],
                                        width=cfg.texture_px, height=cfg.texture_px,
                                        rgb1=rng.uniform(0, 1, 3).tolist(), rgb2=rng.uniform(0, 1, 3).tolist())
            if kind == "flat":
                tex.mark = mujoco.mjtMark.mjMARK_RANDOM
                tex.random = float(rng.uniform(0.05, 0.4))
                tex.markrgb = rng.uniform(0, 1, 3).tolist()
            self.used_textures.append(f"builtin:{kind}")
        else:
            mat.rgba = [*rng.uniform(0.05, 1.0, 3).tolist(), 1.0]
            return name
        mat.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = f"tex_{name}"
        mat.texrepeat = [repeat, repeat]
        mat.texuniform = True
        return name

    def box(self, name: str, pos, half, material: str, yaw: float = 0.0, collide: bool = True) -> None:
        self.spec.worldbody.add_geom(name=name, type=mujoco.mjtGeom.mjGEOM_BOX, pos=list(pos), size=list(half),
                                     quat=_quat_z(yaw), material=material, group=VISIBLE_GROUP,
                                     contype=int(collide), conaffinity=int(collide))

    # -------------------------------------------------------------- layout
    def room(self) -> tuple[float, float]:
        rng = self.rng
        sx, sy = rng.uniform(*self.cfg.room_m, 2)
        wall_h = float(rng.uniform(2.4, 3.4))
        self.box("floor", (0, 0, -0.05), (sx / 2, sy / 2, 0.05), self.material(repeat=float(rng.uniform(0.5, 3.0))))
        wall_mat = self.material(repeat=float(rng.uniform(0.3, 2.0)))
        for k, (x, y, hx, hy) in enumerate([(sx / 2, 0, 0.05, sy / 2), (-sx / 2, 0, 0.05, sy / 2), (0, sy / 2, sx / 2, 0.05), (0, -sy / 2, sx / 2, 0.05)]):
            mat = wall_mat if rng.uniform() < 0.7 else self.material(repeat=float(rng.uniform(0.3, 2.0)))
            self.box(f"wall{k}", (x, y, wall_h / 2), (hx, hy, wall_h / 2), mat)
        if rng.uniform() < self.cfg.ceiling_prob:
            self.box("ceiling", (0, 0, wall_h + 0.05), (sx / 2, sy / 2, 0.05), self.material(textured=rng.uniform() < 0.3))
        return float(sx), float(sy)

    def table(self, sx: float, sy: float) -> Surface:
        rng = self.rng
        hx, hy = float(rng.uniform(0.3, 0.9)), float(rng.uniform(0.25, 0.6))
        top = float(rng.uniform(*self.cfg.table_height_m))
        th = float(rng.uniform(0.02, 0.06))
        yaw = float(rng.uniform(-np.pi, np.pi))
        lim = np.array([sx / 2, sy / 2]) - max(hx, hy) - 1.0
        xy = rng.uniform(-1, 1, 2) * np.maximum(lim, 0.0)
        mat = self.material(repeat=float(rng.uniform(0.5, 2.0)))
        self.box("table_top", (xy[0], xy[1], top - th / 2), (hx, hy, th / 2), mat, yaw)
        leg_mat = mat if rng.uniform() < 0.5 else self.material(textured=False)
        c, s = np.cos(yaw), np.sin(yaw)
        leg = float(rng.uniform(0.02, 0.05))
        for k, (u, v) in enumerate([(1, 1), (1, -1), (-1, 1), (-1, -1)]):
            lx, ly = u * (hx - 2 * leg), v * (hy - 2 * leg)
            self.box(f"table_leg{k}", (xy[0] + c * lx - s * ly, xy[1] + s * lx + c * ly, (top - th) / 2),
                     (leg, leg, (top - th) / 2), leg_mat, yaw)
        return Surface("table", (float(xy[0]), float(xy[1])), (hx, hy), top, yaw)

    def counter(self, sx: float, sy: float) -> Surface:
        rng = self.rng
        side = int(rng.integers(4))
        run = sy if side < 2 else sx  # the wall it stands against
        depth = float(rng.uniform(0.25, 0.35))
        length = float(rng.uniform(0.6, min(1.6, run / 2 - 0.1)))
        top = float(rng.uniform(0.85, 0.95))
        along = float(rng.uniform(-1, 1) * max(0.0, run / 2 - length - 0.1))
        if side < 2:  # against the +/- x wall, running along y
            x = (1 if side == 0 else -1) * (sx / 2 - 0.05 - depth)
            pos, half, yaw = (x, along), (depth, length), 0.0
        else:
            y = (1 if side == 2 else -1) * (sy / 2 - 0.05 - depth)
            pos, half, yaw = (along, y), (length, depth), 0.0
        self.box("counter", (pos[0], pos[1], top / 2), (half[0], half[1], top / 2), self.material(repeat=float(rng.uniform(0.5, 2.0))), yaw)
        return Surface("counter", (float(pos[0]), float(pos[1])), (float(half[0]), float(half[1])), top, yaw)

    def objects_on(self, surfaces: list[Surface]) -> list[dict]:
        rng, cfg = self.rng, self.cfg
        out = []
        for k in range(int(rng.integers(cfg.objects[0], cfg.objects[1] + 1))):
            surf = surfaces[0] if len(surfaces) == 1 or rng.uniform() < 0.7 else surfaces[int(rng.integers(1, len(surfaces)))]
            body = f"obj{k}"
            frame = self.spec.worldbody.add_frame(pos=[surf.xy[0], surf.xy[1], surf.top_z + 0.5], quat=_quat_z(float(rng.uniform(-np.pi, np.pi))))
            scale = float(rng.uniform(*cfg.object_scale))
            if self.objects and rng.uniform() < cfg.libero_object_share:
                asset = self.objects[int(rng.integers(len(self.objects)))]
                child = _load(asset.xml)
                for tex in child.textures:  # decoded and downscaled once per process, not at every compile
                    if tex.file:
                        px = cfg.object_texture_px
                        tex.data = _png_rgb(str(object_texture_file(asset, tex.file)), px)
                        tex.file, tex.width, tex.height, tex.nchannel = "", px, px, 3
                for g in list(child.geoms):
                    if g.group != VISIBLE_GROUP:
                        child.delete(g)
                    else:
                        g.pos = np.asarray(g.pos) * scale
                        g.contype, g.conaffinity = 0, 0
                for m in child.meshes:
                    m.scale = np.asarray(m.scale) * scale
                for s in list(child.sites):
                    child.delete(s)
                b = frame.attach_body(child.body("object"), f"{body}_", "")
                b.name = body
                out.append({"body": body, "kind": "libero", "asset": f"{asset.source}/{asset.name}", "surface": surf.name})
            else:
                prim = PRIMITIVES[int(rng.integers(len(PRIMITIVES)))]
                size = (rng.uniform(0.015, 0.07, 3) * scale).tolist()
                b = frame.add_body(name=body)
                tilt = rng.uniform() < 0.3
                quat = [1.0, 0.0, 0.0, 0.0] if not tilt else _rand_quat(rng).tolist()
                b.add_geom(type=_GEOM[prim], size=size, quat=quat, material=self.material(repeat=float(rng.uniform(1, 4))),
                           group=VISIBLE_GROUP, contype=0, conaffinity=0)
                out.append({"body": body, "kind": "primitive", "asset": f"primitive:{prim}", "surface": surf.name})
        return out

    def robots(self, table: Surface) -> list[dict]:
        rng, cfg = self.rng, self.cfg
        n = int(rng.integers(cfg.robot_counts[0], cfg.robot_counts[1] + 1))
        out = []
        sides = rng.permutation(4)
        for i in range(n):
            asset = robot_asset(cfg.robots[int(rng.integers(len(cfg.robots)))])
            side = int(sides[i])
            hx, hy = table.half
            u = float(rng.uniform(-0.6, 0.6))
            local = {0: (hx + 0.12, u * hy), 1: (-hx - 0.12, u * hy), 2: (u * hx, hy + 0.12), 3: (u * hx, -hy - 0.12)}[side]
            facing = {0: np.pi, 1: 0.0, 2: -np.pi / 2, 3: np.pi / 2}[side]
            c, s = np.cos(table.yaw), np.sin(table.yaw)
            x = table.xy[0] + c * local[0] - s * local[1]
            y = table.xy[1] + s * local[0] + c * local[1]
            base_z = table.top_z + float(rng.uniform(-0.15, 0.05))
            prefix = f"r{i}_"
            self.box(f"{prefix}pedestal", (x, y, base_z / 2 - 0.005), (0.1, 0.1, base_z / 2 - 0.005), self.material(textured=False))
            frame = self.spec.worldbody.add_frame(pos=[x, y, base_z], quat=_quat_z(table.yaw + facing + float(rng.uniform(-0.3, 0.3))))
            robot = _load(asset.xml)
            for a in list(robot.actuators):
                robot.delete(a)
            for cam in list(robot.cameras):
                if cam.name != "eye_in_hand":
                    robot.delete(cam)
            frame.attach_body(robot.body("base"), prefix, "")
            grip = _load(asset.gripper_xml)
            for a in list(grip.actuators):
                grip.delete(a)
            for e in list(grip.equalities):
                grip.delete(e)
            for t in list(grip.tendons):
                grip.delete(t)
            self.spec.body(f"{prefix}right_hand").add_frame().attach_body(grip.worldbody.first_body(), f"{prefix}g_", "")
            out.append({"name": asset.name, "prefix": prefix, "joints": [prefix + j for j in asset.joints],
                        "ready_qpos": list(asset.ready_qpos), "camera": f"{prefix}eye_in_hand", "hand": f"{prefix}right_hand"})
        return out

    def lights(self, sx: float, sy: float) -> None:
        rng, cfg = self.rng, self.cfg
        vis = self.spec.visual
        vis.headlight.ambient = rng.uniform(0.1, 0.35, 3).tolist() if rng.uniform() < 0.3 else [float(rng.uniform(0.1, 0.35))] * 3
        vis.headlight.diffuse = [float(rng.uniform(0.1, 0.4))] * 3
        vis.headlight.specular = [0.1, 0.1, 0.1]
        vis.quality.shadowsize = 512
        n_lights = int(rng.integers(cfg.lights[0], cfg.lights[1] + 1))
        shadow_light = int(rng.integers(n_lights)) if rng.uniform() < cfg.shadow_prob else -1  # at most one: each costs a pass
        for k in range(n_lights):
            pos = [float(rng.uniform(-sx / 3, sx / 3)), float(rng.uniform(-sy / 3, sy / 3)), float(rng.uniform(1.8, 3.0))]
            d = np.array([-pos[0] * rng.uniform(0, 0.5), -pos[1] * rng.uniform(0, 0.5), -pos[2]])
            warm = rng.uniform(0.8, 1.0, 3)
            self.spec.worldbody.add_light(name=f"light{k}", pos=pos, dir=(d / np.linalg.norm(d)).tolist(),
                                          diffuse=(warm * rng.uniform(0.3, 0.8)).tolist(), specular=[0.2, 0.2, 0.2],
                                          castshadow=k == shadow_light,
                                          type=mujoco.mjtLightType.mjLIGHT_DIRECTIONAL if rng.uniform() < 0.4 else mujoco.mjtLightType.mjLIGHT_SPOT,
                                          cutoff=float(rng.uniform(40, 80)))


def _rand_quat(rng: np.random.Generator) -> np.ndarray:
    q = rng.normal(size=4)
    return q / np.linalg.norm(q)


def build_scene(cfg: ProceduralConfig, family: str, rng: np.random.Generator) -> tuple[mujoco.MjSpec, SceneInfo]:
    """Sample a scene of ``family`` (``"train"`` or ``"heldout"`` assets) and return its spec (not compiled) and info."""
    if family not in ("train", "heldout"):
        raise ValueError(f"family must be 'train' or 'heldout', got {family!r}")
    b = _Builder(cfg, family, rng)
    sx, sy = b.room()
    surfaces = [b.table(sx, sy)]
    if rng.uniform() < cfg.counter_prob:
        surfaces.append(b.counter(sx, sy))
    objects = b.objects_on(surfaces)
    robots = b.robots(surfaces[0])
    b.lights(sx, sy)
    b.spec.worldbody.add_camera(name=FREE_CAMERA, pos=[0, 0, 1], fovy=60.0)
    for mesh in b.spec.meshes:  # thin robot shells (e.g. Sawyer's head) have no volume; nothing here is simulated
        mesh.inertia = mujoco.mjtMeshInertia.mjMESH_INERTIA_SHELL
    vis = b.spec.visual
    vis.global_.offwidth = max(cfg.width, 64)
    vis.global_.offheight = max(cfg.height, 64)
    info = SceneInfo(family, surfaces, objects, robots, b.used_textures, (sx, sy))
    return b.spec, info
