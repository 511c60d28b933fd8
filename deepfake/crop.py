"""The face-crop recipe: a square box around a face, clipped to the image and resized.

Inference and training both crop through `crop_face`, so the network always sees crops made the way it was
trained on; the recipe of a detector is stored in its config.json (`face_crop`).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class CropRecipe:
    """Square box around the face, `margin` times its longer side, clipped to the frame, resized."""
    margin: float = 1.3
    size: int = 224


def crop_box(face_box, image_shape, margin: float) -> tuple[int, int, int, int]:
    """The square crop box (x0, y0, x1, y1) of the recipe, clipped to the image."""
    x, y, w, h = face_box
    side = max(w, h) * margin
    cx, cy = x + w / 2.0, y + h / 2.0
    H, W = image_shape[:2]
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    x1, y1 = int(round(cx + side / 2)), int(round(cy + side / 2))
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(W, x1), min(H, y1)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return 0, 0, W, H
    return x0, y0, x1, y1


def crop_face(rgb: np.ndarray, face_box, recipe: CropRecipe) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Crop and resize one face; returns (crop, crop box in image pixels)."""
    x0, y0, x1, y1 = crop_box(face_box, rgb.shape, recipe.margin)
    patch = rgb[y0:y1, x0:x1]
    interp = cv2.INTER_AREA if patch.shape[0] > recipe.size else cv2.INTER_LINEAR
    return cv2.resize(patch, (recipe.size, recipe.size), interpolation=interp), (x0, y0, x1, y1)


def whole_image_crop(rgb: np.ndarray, recipe: CropRecipe) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The whole image resized to the recipe size, as a crop (the no-face fallback a caller asks for)."""
    size = recipe.size
    return cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA), (0, 0, rgb.shape[1], rgb.shape[0])
