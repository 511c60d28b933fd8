"""What every section shares: the loaded detector, the floor measured by section 1, helpers."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from deepfake.detector import Detector
from support.detectors import write_random_detector

from .timing import Report, Stat

def backend_of(network) -> str:
    return getattr(network, "backend", "torch")  # "torch" for versions of the package without backends


@dataclass
class Ctx:
    det: Detector
    model_dir: Path
    face_spec: str
    quick: bool
    report: Report
    crop: np.ndarray = None  # the astronaut's face crop
    x1: torch.Tensor = None  # its preprocessed tensor (1, 3, S, S)
    floor_s: float = 0.0  # seconds per forward at the best batch size
    best_batch: int = 8
    forward1: Stat = None

    def reps(self, full: int, quick: int = 2) -> int:
        return quick if self.quick else full


def random_model(folder: Path) -> Path:
    if not (folder / "model.safetensors").is_file():
        write_random_detector(folder)
    return folder


def face_crop(det: Detector, rgb: np.ndarray) -> np.ndarray:
    faces = det.face_detector.detect(rgb)
    if not faces:
        return det._whole_crop(rgb)[0]
    return det._crops(rgb, faces[:1])[0][0]


def analyze_stats(c: Ctx, path, frames: int, repeats: int) -> tuple[Stat, dict]:
    runs = []
    for i in range(repeats + 1):
        t0 = time.perf_counter()
        res = c.det.analyze_video(path, frames)
        if i:  # the first run warms caches
            runs.append((time.perf_counter() - t0, res.timings_ms, res))
    parts = {k: Stat([t[k] / 1e3 for _, t, _ in runs]) for k in runs[0][1]}
    return Stat([t for t, _, _ in runs]), dict(parts, result=runs[-1][2])
