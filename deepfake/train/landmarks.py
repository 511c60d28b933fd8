"""Dense (68-point) face landmarks of training crops, for self-blended masks.

dlib's shape predictor run on the face box the crop recipe already found. Needed at training time only (dlib-bin
and face-recognition-models from requirements-dev.txt); computed once, with the crop cache."""
from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np

N_POINTS = 68
VERSION = "dlib68-v1"  # part of the crop-cache key: changing the predictor recomputes the cache


@functools.lru_cache(maxsize=1)
def _predictor():
    import dlib

    # the package's __init__ imports pkg_resources, which recent setuptools no longer ships: find the file
    # from the package spec without running it
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("face-recognition-models is not installed (pip install -r requirements-dev.txt)")
    path = Path(spec.submodule_search_locations[0]) / "models" / "shape_predictor_68_face_landmarks.dat"
    return dlib.shape_predictor(str(path))


def dense_landmarks(crop: np.ndarray, box) -> np.ndarray:
    """(68, 2) float32 landmarks in crop pixels, from an RGB uint8 crop and its face box (x, y, w, h);
    NaN when the box is unusable."""
    import dlib

    x, y, w, h = (float(v) for v in box)
    if not (np.isfinite([x, y, w, h]).all() and w >= 8 and h >= 8):
        return np.full((N_POINTS, 2), np.nan, np.float32)
    rect = dlib.rectangle(int(round(x)), int(round(y)), int(round(x + w)), int(round(y + h)))
    shape = _predictor()(np.ascontiguousarray(crop), rect)
    return np.array([(p.x, p.y) for p in shape.parts()], np.float32)


def dense_landmarks_batch(crops: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(n, 68, 2) landmarks of n crops (see dense_landmarks)."""
    out = np.full((len(crops), N_POINTS, 2), np.nan, np.float32)
    for i, (crop, box) in enumerate(zip(crops, boxes)):
        out[i] = dense_landmarks(crop, box)
    return out
