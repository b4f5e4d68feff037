"""vega_ros.image_fit: which window of a camera image the model sees, and depth back onto the image."""

import numpy as np
import pytest

from vega_ros import geometry
from vega_ros.image_fit import Window, fit_to_model, model_window, to_image
from vega_ros.perception_outputs import output_frame


@pytest.mark.parametrize("image_wh, model_wh, want", [
    ((320, 240), (224, 224), Window(40, 0, 240, 240)),    # 4:3 into a square: the centre columns
    ((240, 320), (224, 224), Window(0, 40, 240, 240)),    # portrait: the centre rows
    ((1280, 720), (224, 224), Window(280, 0, 720, 720)),  # 16:9
    ((224, 224), (224, 224), Window(0, 0, 224, 224)),     # the model's own aspect: all of it
    ((112, 56), (84, 42), Window(0, 0, 112, 56)),          # same ratio, another size
    ((640, 480), (84, 56), Window(0, 26, 640, 427)),       # a 3:2 model: 426.7 rows rounded, centred (53 // 2 above)
])
def test_crop_is_the_largest_centred_window_of_the_model_aspect(image_wh, model_wh, want):
    assert model_window(image_wh, model_wh, "crop") == want
    assert model_window(image_wh, model_wh, "stretch") == Window(0, 0, *image_wh)


def test_bad_fit_and_sizes_are_refused():
    with pytest.raises(ValueError, match="image fit"):
        model_window((320, 240), (224, 224), "pad")
    with pytest.raises(ValueError, match="positive"):
        model_window((0, 240), (224, 224), "crop")


def test_a_cropped_frame_back_projects_to_the_same_rays_as_the_camera():
    """The model's pixel (u, v) with K_model and the camera pixel it came from with K are one ray:
    a depth map predicted on the crop lands on the right image pixels and gives the same points."""
    rgb = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    K = geometry.intrinsics_from_fov(320, 240, 50.0)
    img, K_model, win = fit_to_model(rgb, K, (224, 224), "crop")
    assert img.shape == (224, 224, 3) and win == Window(40, 0, 240, 240)
    s = 224 / 240
    np.testing.assert_allclose(K_model[0, 0], K[0, 0] * s)
    np.testing.assert_allclose(K_model[1, 1], K[1, 1] * s)  # isotropic: fx / fy kept
    np.testing.assert_allclose(K_model[:2, 2], (K[:2, 2] - [40, 0]) * s)
    # a plane at 2 m seen by the model, put back onto the image: the same 3D points as the truth
    depth_model = np.full((224, 224), 2.0, np.float32)
    depth = to_image(depth_model, win, (320, 240))
    assert depth.shape == (240, 320) and np.all(depth[:, :40] == 0) and np.all(depth[:, 280:] == 0)
    assert np.all(depth[:, 40:280] == 2.0)
    pts = geometry.depth_to_points(depth, K)[:, 40:280]
    np.testing.assert_allclose(pts[..., 2], 2.0)
    centre_ray = geometry.depth_to_points(depth_model, K_model)[112, 112]
    np.testing.assert_allclose(centre_ray, pts[120, 120], atol=2.0 / K[0, 0])  # within a pixel's footprint


def test_stretch_keeps_the_old_per_axis_resize():
    rgb = np.zeros((240, 320, 3), np.uint8)
    K = geometry.intrinsics_from_fov(320, 240, 50.0)
    img, K_model, win = fit_to_model(rgb, K, (224, 224), "stretch")
    assert img.shape == (224, 224, 3) and win.covers((320, 240))
    np.testing.assert_allclose(K_model, geometry.resize_intrinsics(K, (320, 240), (224, 224)))


def test_output_frame_puts_depth_in_the_window_at_input_and_crops_the_image_at_model_resolution():
    depth, conf = np.full((56, 56), 1.5, np.float32), np.ones((56, 56), np.float32)
    rgb = np.zeros((60, 80, 3), np.uint8)
    rgb[:, 10:70] = 200  # the window's columns
    K_in = geometry.intrinsics_from_fov(80, 60, 50.0)
    win = model_window((80, 60), (56, 56), "crop")
    assert win == Window(10, 0, 60, 60)
    out = output_frame(depth, conf, np.eye(3), rgb, K_in, "input", win)
    assert out.depth.shape == (60, 80) and np.all(out.depth[:, :10] == 0) and np.all(out.depth[:, 10:70] == 1.5)
    assert np.all(out.depth_conf[:, 70:] == 0) and np.array_equal(out.K, K_in)
    out = output_frame(depth, conf, np.eye(3), rgb, K_in, "model", win)
    assert out.rgb.shape == (56, 56, 3) and np.all(out.rgb == 200)  # only the window's pixels
