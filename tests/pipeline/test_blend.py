from __future__ import annotations

import numpy as np
import pytest

from dicface.configs.video import BlendConfig
from dicface.pipeline.blend import Blender, PasteFace, feather_mask

BOX = (40.3, 30.6, 72.3, 62.6)  # a 32-px face box, sub-pixel position


def test_pixels_outside_face_boxes_are_untouched() -> None:
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (100, 120, 3), dtype=np.uint8)
    sr = rng.integers(0, 255, (128, 128, 3), dtype=np.uint8)
    out = Blender()(frame, [PasteFace(BOX, sr)])
    outside = np.ones((100, 120), bool)
    outside[30:63, 40:73] = False  # floor/ceil of the box
    assert np.array_equal(out[outside], frame[outside])
    assert not np.array_equal(out[~outside], frame[~outside])


def test_colour_is_matched_to_the_surroundings() -> None:
    frame = np.full((100, 120, 3), 100, np.uint8)
    sr = np.full((128, 128, 3), 180, np.uint8)
    sr[60:68, 60:68] = 255  # a detail that must survive
    matched = Blender(BlendConfig(colour_match=True))(frame, [PasteFace(BOX, sr)])
    raw = Blender(BlendConfig(colour_match=False))(frame, [PasteFace(BOX, sr)])
    centre = matched[44:49, 54:59].astype(int)
    assert abs(int(raw[40, 50, 0]) - 180) < 3  # without matching the flat SR colour shows
    assert abs(int(matched[36, 46, 0]) - 100) < 6  # with it, no step to the surroundings
    assert centre.max() > 130  # and the detail is kept


def test_the_sr_image_lands_on_the_crop_box() -> None:
    frame = np.zeros((100, 120, 3), np.uint8)
    sr = np.zeros((128, 128, 3), np.uint8)
    sr[60:68, 60:68] = 255  # centred at 64 in the crop -> frame (BOX centre)
    out = Blender(BlendConfig(colour_match=False, feather=0.05))(frame, [PasteFace(BOX, sr)])
    ys, xs = np.nonzero(out[..., 0] > 60)
    assert xs.mean() == pytest.approx((BOX[0] + BOX[2]) / 2 - 0.5, abs=0.6)
    assert ys.mean() == pytest.approx((BOX[1] + BOX[3]) / 2 - 0.5, abs=0.6)


def test_a_face_pasted_at_a_sub_pixel_offset_keeps_its_detail() -> None:
    """One resampling onto the frame's pixels: stripes of a 4-px period keep ~89 % of their contrast at a half-pixel
    offset (a resize to the box followed by a linear-interpolated shift kept ~71 %)."""
    x = np.arange(128)
    stripes = np.repeat((128 + 80 * np.sin(2 * np.pi * x / 4 + 0.3))[None, :, None], 128, 0)
    sr = np.repeat(stripes, 3, 2).astype(np.uint8)
    frame = np.full((160, 160, 3), 128, np.uint8)
    out = Blender(BlendConfig(feather=0.01))(frame, [PasteFace((10.5, 10.5, 138.5, 138.5), sr)])
    assert out[40:100, 40:100, 0].std() > 0.85 * sr[..., 0].std()


def test_upscaled_output_places_faces_at_scale() -> None:
    frame = np.zeros((50, 60, 3), np.uint8)
    sr = np.full((128, 128, 3), 200, np.uint8)
    out = Blender(BlendConfig(colour_match=False))(frame, [PasteFace((10, 10, 26, 26), sr)], scale=3.0)
    assert out.shape == (150, 180, 3)
    assert out[54, 54, 0] > 190 and out[20, 20, 0] == 0 and out[100, 100, 0] == 0


def test_feather_mask_is_zero_on_the_edge_and_one_inside() -> None:
    mask = feather_mask(40, 40, (0, 0, 40, 40), ramp=8)
    assert mask[0, 20] < 0.02 and mask[20, 20] == 1.0 and 0 < mask[4, 20] < 1
