"""Free-camera paths: they look at their target, stay in the configured ranges, and move smoothly."""

from __future__ import annotations

import numpy as np
import pytest

from distill.data.camera_paths import PathKind, PathRanges, make_free_path

RANGES = PathRanges(radius_m=(0.6, 1.3), elevation_deg=(15.0, 65.0), fov_y_deg=(40.0, 75.0), target_jitter_m=0.06)


@pytest.mark.parametrize("kind", [PathKind.ORBIT, PathKind.ARC, PathKind.RANDOM_WALK])
def test_paths_look_at_target_within_ranges(kind):
    for seed in range(20):
        path = make_free_path(kind, np.random.default_rng(seed), np.array([0.1, -0.2, 0.9]), 24, RANGES)
        T_wc = path.poses()
        offset = path.eye - path.target
        radius = np.linalg.norm(offset, axis=1)
        elevation = np.rad2deg(np.arcsin(offset[:, 2] / radius))
        # Catmull-Rom interpolation of a random walk may overshoot its knots' range a little
        slack = 0.15 if kind == PathKind.RANDOM_WALK else 1e-9
        assert np.all((radius > 0.6 - slack * 0.7) & (radius < 1.3 + slack * 0.7))
        assert np.all((elevation > 15 - slack * 50) & (elevation < 65 + slack * 50))
        assert np.all((path.fov_y_deg >= 40 - slack * 35) & (path.fov_y_deg <= 75 + slack * 35))
        # the optical axis (OpenCV +z) points at the target; image "down" (+y) has no upward component
        np.testing.assert_allclose(T_wc[:, :3, 2], -offset / radius[:, None], atol=1e-12)
        assert np.all(T_wc[:, 2, 1] <= 1e-12)
        step = np.linalg.norm(np.diff(path.eye, axis=0), axis=1)
        assert step.max() < 0.5  # no jumps: at most ~25 degrees of view change per frame at the shortest radius
        if kind == PathKind.ORBIT:
            np.testing.assert_allclose(radius, radius[0])


def test_paths_are_seeded():
    a = make_free_path(PathKind.RANDOM_WALK, np.random.default_rng(5), np.zeros(3), 24, RANGES)
    b = make_free_path(PathKind.RANDOM_WALK, np.random.default_rng(5), np.zeros(3), 24, RANGES)
    c = make_free_path(PathKind.RANDOM_WALK, np.random.default_rng(6), np.zeros(3), 24, RANGES)
    np.testing.assert_array_equal(a.eye, b.eye)
    assert not np.allclose(a.eye, c.eye)


def test_pulling_eyes_in_keeps_the_view_direction():
    path = make_free_path(PathKind.ARC, np.random.default_rng(1), np.zeros(3), 12, RANGES)
    closer = path.scaled_towards_target(0.5)
    np.testing.assert_allclose(closer.poses()[:, :3, :3], path.poses()[:, :3, :3], atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(closer.eye - closer.target, axis=1), 0.5 * np.linalg.norm(path.eye - path.target, axis=1))


def test_sim_kinds_are_not_free_paths():
    with pytest.raises(ValueError):
        make_free_path(PathKind.WRIST, np.random.default_rng(0), np.zeros(3), 8, RANGES)
    assert PathKind.WRIST.moves_arm and PathKind.AGENTVIEW.moves_arm and not PathKind.ORBIT.moves_arm
