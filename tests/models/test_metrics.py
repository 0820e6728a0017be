from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from dicface.models.metrics import landmark_nme, psnr_y, rgb_to_y, ssim_y


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray]:
    from skimage import data

    hr = np.ascontiguousarray(data.astronaut()[60:188, 160:288])
    noisy = np.clip(hr + np.random.default_rng(0).normal(0, 10, hr.shape), 0, 255).astype(np.uint8)
    return hr, noisy


def test_y_is_matlab_bt601() -> None:
    assert rgb_to_y(np.array([[[255, 255, 255]]], np.uint8))[0, 0] == pytest.approx(235.0, abs=1e-3)
    assert rgb_to_y(np.zeros((1, 1, 3), np.uint8))[0, 0] == pytest.approx(16.0)


def test_psnr_against_a_hand_computation(pair: tuple[np.ndarray, np.ndarray]) -> None:
    hr, noisy = pair
    ya, yb = rgb_to_y(hr)[8:-8, 8:-8], rgb_to_y(noisy)[8:-8, 8:-8]
    expected = 10 * math.log10(255**2 / np.mean((ya - yb) ** 2))
    assert psnr_y(noisy, hr) == pytest.approx(expected, abs=1e-9)
    assert psnr_y(hr, hr) == math.inf


def test_ssim_equals_skimage_gaussian_ssim(pair: tuple[np.ndarray, np.ndarray]) -> None:
    hr, noisy = pair
    ya, yb = rgb_to_y(hr)[8:-8, 8:-8], rgb_to_y(noisy)[8:-8, 8:-8]
    expected = structural_similarity(
        ya, yb, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
    )
    assert ssim_y(noisy, hr) == pytest.approx(expected, abs=1e-6)
    assert ssim_y(hr, hr) == pytest.approx(1.0)


def test_nme_normalises_by_the_interocular_distance() -> None:
    target = np.zeros((68, 2))
    target[37], target[46] = (0.0, 0.0), (40.0, 0.0)
    pred = target + np.array([3.0, 4.0])  # every point 5 px off
    assert landmark_nme(pred, target) == pytest.approx(5 / 40)
    assert landmark_nme(np.stack([pred, target]), np.stack([target, target])) == pytest.approx(5 / 80)


def test_metrics_refuse_mismatched_shapes(pair: tuple[np.ndarray, np.ndarray]) -> None:
    with pytest.raises(ValueError):
        psnr_y(pair[0], pair[0][:64])


def test_fine_detail_and_gmsd_rank_blur_as_a_viewer_would(real_faces: list[np.ndarray]) -> None:
    from dicface.models.faces import resize_bicubic
    from dicface.models.metrics import fine_detail, gmsd

    face = resize_bicubic(real_faces[0], 128)
    softer = resize_bicubic(resize_bicubic(face, 64), 128)
    softest = resize_bicubic(resize_bicubic(face, 32), 128)
    assert fine_detail(face) > fine_detail(softer) > fine_detail(softest)
    assert gmsd(face, face) == 0 and 0 < gmsd(softer, face) < gmsd(softest, face)


def test_identity_distance_tells_a_blurred_face_from_another_person(real_faces: list[np.ndarray]) -> None:
    from dicface.models.faces import resize_bicubic
    from dicface.models.identity import FaceIdentity
    from dicface.pipeline.detect.dlib_backend import DlibDetector

    face = resize_bicubic(real_faces[0], 128)  # the astronaut
    points = DlibDetector(upsample=1)(face)[0].landmarks
    other = resize_bicubic(real_faces[1], 128)  # an LFW face, another person
    identity = FaceIdentity()
    assert identity.distance(face, face, points) == 0
    blurred = identity.distance(resize_bicubic(resize_bicubic(face, 48), 128), face, points)
    assert blurred < 0.6 < identity.distance(other, face, points)  # dlib: the same person below 0.6
