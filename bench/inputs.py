"""Inputs the benchmark makes itself: a photo from scikit-image's public-domain astronaut, and videos
written with OpenCV (cached in the temp folder, so repeated runs do not pay for encoding)."""
from __future__ import annotations

import tempfile
from pathlib import Path

import cv2
import numpy as np

CACHE = Path(tempfile.gettempdir()) / "deepfake-bench-inputs"
RESOLUTIONS = {"480p": (854, 480), "1080p": (1920, 1080), "4K": (3840, 2160)}


def astronaut() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.astronaut())


def photo(side: int = 1024) -> np.ndarray:
    """The astronaut upscaled to side x side: a photo with one frontal face."""
    return cv2.resize(astronaut(), (side, side), interpolation=cv2.INTER_CUBIC)


def make_clip(resolution: str = "1080p", seconds: float = 10.0, fps: float = 30.0, noise: float = 6.0) -> Path:
    """A clip of `seconds` at `fps` with the astronaut's face drifting across a textured background
    (mp4v, OpenCV's default encoder settings: a keyframe every 12 frames). noise=0 leaves the background
    smooth, which keeps a 4K clip small on disk (the decoded frames are as large either way)."""
    width, height = RESOLUTIONS[resolution]
    n = int(round(seconds * fps))
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"clip-{resolution}-{n}f-{fps:g}fps{f'-noise{noise:g}' if noise != 6.0 else ''}.mp4"
    if path.is_file() and path.stat().st_size > 0:
        return path
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    bg = np.stack([80 + 60 * np.sin(xx / 97.0), 90 + 50 * np.cos(yy / 71.0), 110 + 40 * np.sin((xx + yy) / 53.0)], -1)
    bg = np.clip(bg + rng.normal(0, noise, bg.shape), 0, 255).astype(np.uint8)
    side = int(height * 0.6)
    face = cv2.resize(astronaut(), (side, side), interpolation=cv2.INTER_AREA)
    tmp = path.with_suffix(".tmp.mp4")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError("OpenCV cannot write mp4v videos on this machine")
    y0 = (height - side) // 2
    span = width - side
    for i in range(n):
        frame = bg.copy()
        x0 = int(span * (0.25 + 0.5 * i / max(n - 1, 1)))
        frame[y0:y0 + side, x0:x0 + side] = face
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    tmp.rename(path)
    return path
