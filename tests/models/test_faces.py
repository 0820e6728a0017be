from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from dicface.models.faces import crop_face, denormalise, hr_and_lr, lr_from_face, normalise, resize_bicubic, square_box


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[40:240, 130:330])  # (200, 200, 3) real face photo


def test_resize_is_pil_bicubic(photo: np.ndarray) -> None:
    expected = np.asarray(Image.fromarray(photo).resize((128, 128), Image.Resampling.BICUBIC))
    assert np.array_equal(resize_bicubic(photo, 128), expected)


def test_subpixel_box_equals_crop_then_resize_for_integer_boxes(photo: np.ndarray) -> None:
    direct = resize_bicubic(photo, 64, box=(20, 30, 148, 158))
    cropped = resize_bicubic(np.ascontiguousarray(photo[30:158, 20:148]), 64)
    # PIL's box resize reads real pixels beyond the box edge where a crop has to clamp: only the rim differs
    assert np.array_equal(direct[2:-2, 2:-2], cropped[2:-2, 2:-2])
    shifted = resize_bicubic(photo, 64, box=(20.5, 30.25, 148.5, 158.25))
    assert shifted.shape == (64, 64, 3) and not np.array_equal(shifted, direct)


def test_training_pair_goes_through_128_then_16(photo: np.ndarray) -> None:
    hr, lr = hr_and_lr(photo)
    assert hr.shape == (128, 128, 3) and lr.shape == (16, 16, 3)
    assert np.array_equal(lr, resize_bicubic(resize_bicubic(photo, 128), 16))
    assert np.array_equal(lr_from_face(photo), lr)
    # the antialiased PIL path differs from OpenCV's INTER_CUBIC, which DIC was not trained on
    assert np.abs(cv2.resize(hr, (16, 16), interpolation=cv2.INTER_CUBIC).astype(int) - lr).max() > 5


def test_tiny_faces_are_resized_directly() -> None:
    face = np.random.default_rng(0).integers(0, 255, (12, 14, 3), dtype=np.uint8)
    assert np.array_equal(lr_from_face(face), resize_bicubic(face, 16))
    with pytest.raises(ValueError):
        lr_from_face(face[:, :, 0])


def test_normalise_round_trip_is_exact() -> None:
    images = np.random.default_rng(1).integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    t = normalise(images)
    assert t.shape == (3, 3, 16, 16)
    assert t[0, 0, 0, 0].item() == pytest.approx(images[0, 0, 0, 0] / 255 - 0.509, abs=1e-6)
    assert np.array_equal(denormalise(t), images)


def test_square_box_is_centred_on_the_landmarks() -> None:
    pts = np.array([[10.0, 20.0], [50.0, 40.0], [30.0, 80.0]])
    assert square_box(pts, scale=1.0, shift_y=0.0) == (0.0, 20.0, 60.0, 80.0)
    assert square_box(pts, scale=1.5, shift_y=0.0) == (-15.0, 5.0, 75.0, 95.0)
    assert square_box(pts, scale=1.0, shift_y=-0.1) == (0.0, 14.0, 60.0, 74.0)


def test_crop_face_pads_boxes_that_leave_the_image(photo: np.ndarray) -> None:
    inside = crop_face(photo, (20, 30, 148, 158), size=64)
    assert np.array_equal(inside, resize_bicubic(photo, 64, box=(20, 30, 148, 158)))
    outside = crop_face(photo, (-40, -40, 60, 60), size=50)
    assert outside.shape == (50, 50, 3)
    assert np.abs(outside[:5, :5].astype(int) - photo[0, 0]).max() <= 2  # edge pixels repeated
