"""as_rgb: every image layout a user may push becomes (H, W, 3) uint8 C-contiguous RGB."""

from __future__ import annotations

import numpy as np
import pytest

from streamline.errors import MediaError
from streamline.face import as_rgb


def _rgb(height: int = 5, width: int = 7) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def _check(out: np.ndarray, height: int, width: int) -> None:
    assert out.shape == (height, width, 3)
    assert out.dtype == np.uint8
    assert out.flags.c_contiguous


def test_rgb_uint8_contiguous_is_returned_as_is() -> None:
    image = _rgb()
    assert as_rgb(image) is image


@pytest.mark.parametrize("shape", [(5, 7), (5, 7, 1)])
def test_grayscale_is_replicated_to_three_channels(shape: tuple[int, ...]) -> None:
    gray = np.arange(35, dtype=np.uint8).reshape(shape)
    out = as_rgb(gray)
    _check(out, 5, 7)
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], gray.reshape(5, 7))


def test_rgba_drops_alpha_and_keeps_colours() -> None:
    rgb = _rgb()
    rgba = np.concatenate([rgb, np.zeros((5, 7, 1), np.uint8)], axis=2)  # fully transparent
    out = as_rgb(rgba)
    _check(out, 5, 7)
    np.testing.assert_array_equal(out, rgb)


def test_row_padded_view_is_made_contiguous() -> None:
    # What PyAV returns for a 359-px RGB frame: rows padded to an aligned stride.
    padded = _rgb(4, 384)
    view = padded[:, :359]
    assert not view.flags.c_contiguous
    out = as_rgb(view)
    _check(out, 4, 359)
    np.testing.assert_array_equal(out, view)


def test_negative_strides_and_bgr_view() -> None:
    image = _rgb()
    flipped = image[::-1, ::-1, ::-1]
    out = as_rgb(flipped)
    _check(out, 5, 7)
    np.testing.assert_array_equal(out, flipped)


def test_float_uint16_and_bool_are_scaled_to_uint8() -> None:
    floats = np.array([[[0.0, 0.5, 1.0], [np.nan, 2.0, -1.0]]], dtype=np.float32)
    np.testing.assert_array_equal(as_rgb(floats), [[[0, 128, 255], [0, 255, 0]]])
    wide = np.array([[[0, 257 * 100, 65535]]], dtype=np.uint16)
    np.testing.assert_array_equal(as_rgb(wide), [[[0, 100, 255]]])
    mask = np.array([[True, False]])
    np.testing.assert_array_equal(as_rgb(mask), [[[255] * 3, [0] * 3]])


@pytest.mark.parametrize(
    ("image", "words"),
    [
        (np.zeros((0, 5, 3), np.uint8), "empty"),
        (np.zeros((4, 5, 2), np.uint8), "channels"),
        (np.zeros((2, 4, 5, 3), np.uint8), "shape"),
        (np.zeros(10, np.uint8), "shape"),
        (np.zeros((4, 5, 3), np.int8), "dtype"),
        (np.zeros((4, 5, 3), np.complex64), "dtype"),
        ([[1, 2], [3, 4]], "numpy array"),
    ],
)
def test_bad_images_raise_media_error_naming_the_input(image: object, words: str) -> None:
    with pytest.raises(MediaError, match=words) as info:
        as_rgb(image, name="frame at 1.000 s")  # type: ignore[arg-type]
    assert "frame at 1.000 s" in str(info.value)
