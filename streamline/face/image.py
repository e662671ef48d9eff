"""Normalise whatever image a user pushes into upright, C-contiguous RGB uint8.

The sources deliver :class:`~streamline.types.VideoFrame` images that are
already ``(H, W, 3)`` uint8 RGB and C-contiguous, but a frame built by hand may
be anything. MediaPipe reads the buffer of the array it is given *ignoring its
strides*: a row-padded view (PyAV returns one for widths whose RGB row is not a
multiple of its alignment, e.g. 360 px) is silently read as garbage and no face
is ever found. A grayscale (``GRAY8``) image crashes the face detector graph.
So every image goes through :func:`as_rgb` first.
"""

from __future__ import annotations

import numpy as np

from ..errors import MediaError

__all__ = ["as_rgb"]


def as_rgb(image: np.ndarray, *, name: str = "image") -> np.ndarray:
    """Return ``image`` as an ``(H, W, 3)`` uint8 RGB C-contiguous array.

    Accepted inputs (anything else raises):

    * shape ``(H, W)`` or ``(H, W, 1)``: grayscale, replicated to 3 channels;
    * ``(H, W, 3)``: RGB (returned as is when already uint8 and C-contiguous,
      otherwise copied);
    * ``(H, W, 4)``: RGBA; the alpha channel is dropped (the colour channels are
      the picture; compositing onto a background would invent pixels);
    * dtype uint8; uint16 (scaled by 1/257); bool; float16/32/64 taken as
      [0, 1] intensities, clipped and scaled by 255 (NaN becomes 0);
    * any strides (negative, row padding, a channel-last view of a larger array).

    Args:
        image: the array.
        name: how to call the input in an error message (e.g. ``"frame at 1.200 s"``).

    Returns:
        An ``(H, W, 3)`` uint8 C-contiguous array. It is ``image`` itself when no
        conversion was needed, otherwise a new array.

    Raises:
        MediaError: not a numpy array, wrong number of dimensions or channels,
            an empty image, or an unsupported dtype (complex, object, int8...).
    """
    if not isinstance(image, np.ndarray):
        raise MediaError(f"{name}: expected a numpy array, got {type(image).__name__}")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3:
        raise MediaError(
            f"{name}: expected an (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) array, got shape {image.shape}"
        )
    height, width, channels = image.shape
    if height == 0 or width == 0:
        raise MediaError(f"{name}: empty image of shape {image.shape}")
    if channels not in (1, 3, 4):
        raise MediaError(f"{name}: expected 1, 3 or 4 channels (gray, RGB, RGBA), got {channels} (shape {image.shape})")
    image = _to_uint8(image, name)
    if channels == 4:
        image = image[:, :, :3]
    elif channels == 1:
        image = np.repeat(image, 3, axis=2)
    return np.ascontiguousarray(image)


def _to_uint8(image: np.ndarray, name: str) -> np.ndarray:
    dtype = image.dtype
    if dtype == np.uint8:
        return image
    if dtype == np.bool_:
        return image.astype(np.uint8) * np.uint8(255)
    if dtype == np.uint16:
        # 65535 / 257 = 255 exactly: the scaling that maps full range to full range.
        return ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if np.issubdtype(dtype, np.floating):
        scaled = np.nan_to_num(image.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
        return (np.clip(scaled, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    raise MediaError(
        f"{name}: unsupported pixel dtype {dtype} (use uint8, uint16, bool, or float in [0, 1])"
    )
