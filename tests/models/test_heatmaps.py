from __future__ import annotations

import numpy as np
import pytest
import torch

from dicface.models.heatmaps import COMPONENT_GROUPS_68, decode_landmarks, merge_to_five, render_heatmaps


def test_render_is_a_unit_gaussian_at_quarter_scale() -> None:
    heat = render_heatmaps(np.array([[40.0, 60.0]]))
    assert heat.shape == (1, 32, 32)
    assert heat[0, 15, 10] == pytest.approx(1.0)  # (x, y) = (40, 60) / 4 -> column 10, row 15
    assert heat[0, 15, 11] == pytest.approx(np.exp(-0.5), rel=1e-6)  # sigma 1


def test_render_decode_round_trip_is_sub_pixel() -> None:
    gen = torch.Generator().manual_seed(0)
    points = torch.rand(4, 68, 2, generator=gen) * 112 + 8  # inside the crop, away from the border
    decoded = decode_landmarks(render_heatmaps(points))
    assert decoded.shape == (4, 68, 2)
    assert (decoded - points).abs().max() < 0.05


def test_decode_on_the_border_keeps_the_integer_peak() -> None:
    heat = torch.zeros(1, 1, 32, 32)
    heat[0, 0, 0, 31] = 1.0
    assert decode_landmarks(heat)[0, 0].tolist() == [124.0, 0.0]


def test_merge_to_five_sums_normalised_maps_per_component() -> None:
    heat = torch.zeros(1, 68, 32, 32)
    for i in range(68):
        heat[0, i, i % 32, 3] = 0.5  # every map peaks at 0.5; normalised to 1
    merged = merge_to_five(heat)
    assert merged.shape == (1, 5, 32, 32)
    for c, (a, b) in enumerate(COMPONENT_GROUPS_68):
        assert merged[0, c].sum().item() == pytest.approx(b - a)
    assert merged[0, 4].sum().item() == 27  # silhouette: jaw 0-16 and brows 17-26


def test_merge_to_five_clamps_weak_peaks_and_leaves_input_untouched() -> None:
    heat = torch.full((1, 68, 32, 32), 0.01)
    before = heat.clone()
    merged = merge_to_five(heat)
    assert torch.equal(heat, before)
    assert merged[0, 0, 0, 0].item() == pytest.approx(6 * 0.01 / 0.05)  # left eye: 6 maps, max clamped at 0.05


def test_merge_to_five_refuses_other_counts() -> None:
    with pytest.raises(ValueError):
        merge_to_five(torch.zeros(1, 7, 32, 32))
