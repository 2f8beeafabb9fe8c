"""Turn a drawing into the images the models were trained on.

MNIST (LeCun et al. 1998) digits are white ink on black, size-normalised to fit a 20×20 box
(keeping the aspect ratio), then placed in a 28×28 image so that the centre of mass of the ink
sits at the centre. A drawing from the app's sketchpad (black strokes on white) needs the same
treatment before a model sees it, or the models answer a question they were never asked.

scikit-learn's 8×8 digits (the UCI optdigits set) were made differently: a 32×32 bitmap of the
digit, fitted to the box, counted in 4×4 blocks (0..16 ink pixels per block). :func:`digits_style`
imitates that and scales to [0, 1] as :func:`vaelab.data.load_digits` does.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

INK_THRESHOLD = 0.05  # ink below this (after inversion, in [0, 1]) counts as empty paper


MAX_DRAWING_BYTES = 2_000_000  # a 280×280 drawing is a few kB as PNG
MAX_DRAWING_SIDE = 2048


class DrawingError(ValueError):
    """A drawing that cannot be read: not a PNG/JPEG data URL, too large, or corrupt."""


def decode_data_url(url: str) -> np.ndarray:
    """A ``data:image/...;base64,...`` URL (what a page's canvas gives) -> the image as an array.
    The size is checked from the header before any pixel is decoded."""
    import base64
    import binascii
    import io

    head, sep, body = url.partition(",")
    if not sep or not head.startswith("data:image/") or ";base64" not in head:
        raise DrawingError("a drawing must be sent as a data:image/...;base64 URL")
    if len(body) > MAX_DRAWING_BYTES * 4 // 3 + 4:
        raise DrawingError(f"the drawing is over {MAX_DRAWING_BYTES // 1_000_000} MB")
    try:
        raw = base64.b64decode(body, validate=True)
        with Image.open(io.BytesIO(raw)) as im:
            if max(im.size) > MAX_DRAWING_SIDE:
                raise DrawingError(f"the drawing is {im.size[0]}×{im.size[1]} pixels; at most "
                                   f"{MAX_DRAWING_SIDE} on a side")
            return np.asarray(im.convert("LA"))
    except Image.DecompressionBombError:
        raise DrawingError(f"the drawing claims far more pixels than a drawing has; at most {MAX_DRAWING_SIDE} "
                           "on a side") from None
    except (binascii.Error, OSError, SyntaxError, ValueError) as error:
        if isinstance(error, DrawingError):
            raise
        raise DrawingError(f"the drawing could not be read ({type(error).__name__})") from error


def sketch_to_ink(value) -> np.ndarray | None:
    """A drawing -> ink ``(H, W)`` float in [0, 1], 1 = full ink; ``None`` when there is no image.

    Takes the drawing pad's value (a PNG data URL, dark strokes on white or on transparent
    paper; ``""`` when cleared), a Sketchpad/ImageEditor value (dict with ``composite``) or an
    array: grey (dark strokes on white), RGB, or RGBA (strokes may exist only in the alpha
    channel).
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        value = decode_data_url(value.strip())
    image = value.get("composite") if isinstance(value, dict) else value
    if image is None:
        return None
    a = np.asarray(image, dtype=np.float32)
    if a.size == 0:
        return None
    if a.max() > 1.0:
        a = a / 255.0
    if a.ndim == 2:
        return 1.0 - a
    if a.ndim == 3 and a.shape[2] in (3, 4):
        grey = a[..., :3].mean(2)
        ink = 1.0 - grey
        if a.shape[2] == 4:
            ink = a[..., 3] * ink  # transparent paper is not ink, whatever its colour
        return ink
    if a.ndim == 3 and a.shape[2] == 1:
        return 1.0 - a[..., 0]
    if a.ndim == 3 and a.shape[2] == 2:  # grey + alpha
        return a[..., 1] * (1.0 - a[..., 0])
    raise ValueError(f"cannot read a drawing of shape {a.shape}")


def is_blank(ink: np.ndarray | None) -> bool:
    return ink is None or float(ink.max(initial=0.0)) < INK_THRESHOLD


def _crop_to_ink(ink: np.ndarray) -> np.ndarray:
    rows = np.flatnonzero(ink.max(1) >= INK_THRESHOLD)
    cols = np.flatnonzero(ink.max(0) >= INK_THRESHOLD)
    return ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def _fit(ink: np.ndarray, box: int) -> np.ndarray:
    """Scale ``ink`` so its longer side is ``box`` pixels, keeping the aspect ratio."""
    h, w = ink.shape
    scale = box / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))  # PIL wants (width, height)
    img = Image.fromarray(np.clip(ink * 255, 0, 255).astype(np.uint8))
    return np.asarray(img.resize(size, Image.Resampling.LANCZOS), dtype=np.float32) / 255.0


def mnist_style(ink: np.ndarray, size: int = 28, box: int = 20) -> np.ndarray:
    """Ink ``(H, W)`` -> MNIST-style image, float32 ``(1, 1, size, size)`` in [0, 1]:
    crop to the ink's bounding box, fit into ``box``×``box``, centre by centre of mass."""
    if is_blank(ink):
        raise ValueError("the drawing is empty")
    digit = np.clip(_fit(_crop_to_ink(ink), box), 0.0, 1.0)
    h, w = digit.shape
    out = np.zeros((size, size), np.float32)
    total = digit.sum()
    cy = (digit.sum(1) * np.arange(h)).sum() / total  # centre of mass inside the box
    cx = (digit.sum(0) * np.arange(w)).sum() / total
    top = int(round((size - 1) / 2 - cy))
    left = int(round((size - 1) / 2 - cx))
    top = min(max(top, 0), size - h)  # keep the whole digit on the canvas
    left = min(max(left, 0), size - w)
    out[top:top + h, left:left + w] = digit
    return out[None, None]


def digits_style(ink: np.ndarray) -> np.ndarray:
    """Ink -> an 8×8 image like scikit-learn's digits, float32 ``(1, 1, 8, 8)`` in [0, 1]:
    fitted into a 32×32 box (centred), then averaged over 4×4 blocks."""
    if is_blank(ink):
        raise ValueError("the drawing is empty")
    digit = _fit(_crop_to_ink(ink), 32)
    h, w = digit.shape
    canvas = np.zeros((32, 32), np.float32)
    top, left = (32 - h) // 2, (32 - w) // 2
    canvas[top:top + h, left:left + w] = (digit >= 0.5)  # optdigits counts on pixels of a bitmap
    blocks = canvas.reshape(8, 4, 8, 4).mean((1, 3))
    return blocks[None, None].astype(np.float32)


def preprocess(ink: np.ndarray, image_shape) -> np.ndarray:
    """The drawing as a model with ``image_shape`` (C, H, W) expects it: ``(1, C, H, W)``."""
    c, h, w = tuple(image_shape)
    if (h, w) == (8, 8):
        return digits_style(ink)
    if h == w:
        return mnist_style(ink, size=h, box=round(h * 20 / 28))
    raise ValueError(f"no drawing preprocessing for images of shape {tuple(image_shape)}")
