"""Offscreen MuJoCo rendering: an RGB pass and a separate non-MSAA depth pass, with sanity checks.

Why two passes (DESIGN.md section 5): depth read from a multisampled (MSAA) framebuffer is
blended at edges and carries millimetre errors; ground-truth depth comes from a context created
with ``vis.quality.offsamples = 0``. RGB may keep MSAA (``rgb_msaa=True``) so it looks like a
camera image; with ``rgb_msaa=False`` one non-MSAA pass yields both RGB and depth (faster).

The skybox is not drawn: it writes depth although it is no surface. Each context is made
current before every render (robosuite can switch off a live context when
it frees an old one), and a frame with no valid depth or an all-black image raises
``RenderError`` instead of silently producing nothing. OpenGL returns images bottom row first;
they are flipped here, so row 0 is the top of the image.
"""

from __future__ import annotations

import contextlib

import mujoco
import numpy as np
from mujoco import gl_context


class RenderError(RuntimeError):
    """A render returned nothing usable (lost GL context, camera inside geometry, ...)."""


class _Pass:
    """One GL context + MjrContext with a fixed MSAA sample count."""

    def __init__(self, model: mujoco.MjModel, width: int, height: int, offsamples: int):
        saved = model.vis.quality.offsamples
        model.vis.quality.offsamples = offsamples
        try:
            self.gl = gl_context.GLContext(width, height)
            self.gl.make_current()
            self.con = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_150)
        finally:
            model.vis.quality.offsamples = saved
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self.con)
        self.con.readDepthMap = mujoco.mjtDepthMap.mjDEPTH_ZEROFAR
        self.rect = mujoco.MjrRect(0, 0, width, height)

    def render(self, scene: mujoco.MjvScene, rgb: np.ndarray | None, depth_buf: np.ndarray | None) -> None:
        self.gl.make_current()
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self.con)
        mujoco.mjr_render(self.rect, scene, self.con)
        mujoco.mjr_readPixels(rgb, depth_buf, self.rect, self.con)

    def close(self) -> None:
        if getattr(self, "con", None) is not None:
            self.gl.make_current()
            self.con.free()
            self.con = None
        if getattr(self, "gl", None) is not None:
            self.gl.free()
            self.gl = None


def linearize_depth(buf: np.ndarray, model: mujoco.MjModel) -> np.ndarray:
    """Metric z-depth ``[H, W]`` float32 (metres, 0 = no geometry) from a reversed-Z depth buffer.

    MuJoCo >= 3.2 renders with reversed Z and ``mjDEPTH_ZEROFAR`` (the far plane reads 0);
    pixels at the far plane (background) become 0.
    """
    extent = model.stat.extent
    znear = np.float32(model.vis.map.znear * extent)
    zfar = np.float32(model.vis.map.zfar * extent)
    c = -(zfar + znear) / (zfar - znear)
    d = -(np.float32(2) * zfar * znear) / (zfar - znear)
    c = np.float32(-0.5) * c - np.float32(0.5)
    d = np.float32(-0.5) * d
    z = d / (buf.astype(np.float64) + c)
    # background reads exactly 0; float32 round-off puts it near, not at, zfar, hence the 1 % margin
    z[(buf <= 0) | ~np.isfinite(z) | (z >= 0.99 * float(zfar)) | (z <= 0)] = 0.0
    return z.astype(np.float32)


class OffscreenRenderer:
    """Renders ``(rgb [H, W, 3] uint8, depth [H, W] float32 metres, 0 = invalid)`` from a fixed camera.

    Args:
        model, data: the live MuJoCo model and data (robosuite's ``sim.model._model`` / ``sim.data._data``).
        width, height: image size in pixels.
        rgb_msaa: keep 4x MSAA for RGB (a second, non-MSAA pass gives depth).
        scene_option: which geom / site groups are drawn (both passes use the same option).
    """

    def __init__(
        self,
        model: mujoco.MjModel,
        data: mujoco.MjData,
        width: int,
        height: int,
        rgb_msaa: bool,
        scene_option: mujoco.MjvOption,
    ):
        if width > model.vis.global_.offwidth or height > model.vis.global_.offheight:
            model.vis.global_.offwidth = max(width, model.vis.global_.offwidth)
            model.vis.global_.offheight = max(height, model.vis.global_.offheight)
        self.model, self.data = model, data
        self.width, self.height = width, height
        self.option = scene_option
        self.scene = mujoco.MjvScene(model, maxgeom=10000)
        self.scene.flags[mujoco.mjtRndFlag.mjRND_SKYBOX] = 0  # the skybox writes depth (hundreds of metres) but is no surface
        self.camera = mujoco.MjvCamera()
        self.camera.type = mujoco.mjtCamera.mjCAMERA_FIXED
        self._depth_pass = _Pass(model, width, height, offsamples=0)
        self._rgb_pass = _Pass(model, width, height, offsamples=4) if rgb_msaa else None

    def render(self, camera_id: int) -> tuple[np.ndarray, np.ndarray]:
        """RGB ``[H, W, 3]`` uint8 and z-depth ``[H, W]`` float32 (metres, 0 = invalid), top row first."""
        self.camera.fixedcamid = camera_id
        mujoco.mjv_updateScene(self.model, self.data, self.option, None, self.camera, mujoco.mjtCatBit.mjCAT_ALL, self.scene)
        rgb = np.zeros((self.height, self.width, 3), np.uint8)
        buf = np.zeros((self.height, self.width), np.float32)
        if self._rgb_pass is None:
            self._depth_pass.render(self.scene, rgb, buf)
        else:
            self._rgb_pass.render(self.scene, rgb, None)
            self._depth_pass.render(self.scene, None, buf)
        rgb = np.ascontiguousarray(rgb[::-1])
        depth = np.ascontiguousarray(linearize_depth(buf, self.model)[::-1])
        if not np.any(depth > 0):
            raise RenderError(f"camera {camera_id}: depth pass returned no geometry (lost GL context or empty view)")
        if not np.any(rgb):
            raise RenderError(f"camera {camera_id}: RGB pass returned an all-black image (lost GL context?)")
        return rgb, depth

    def close(self) -> None:
        """Free the GL resources (idempotent)."""
        for p in (self._rgb_pass, self._depth_pass):
            if p is not None:
                p.close()
        self._rgb_pass = None
        self._depth_pass = None

    def __del__(self):
        with contextlib.suppress(Exception):  # at interpreter exit GL (and its error classes) may be gone
            self.close()
