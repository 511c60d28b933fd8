"""Face quality gates: measure a face's size, sharpness, brightness and frontalness, and say which gates it fails.

A face that fails a gate is too poor for the detector's score to be acted on (where its validation ROC AUC falls
below a stated level); the thresholds are measured by deepfake/train/gates.py (docs/gates/).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING

import cv2
import numpy as np

from .errors import ModelLoadError

if TYPE_CHECKING:  # only for the annotation: the model's config reads the gates without loading face detection
    from .faces import Face

REASONS = ("face_too_small", "blurred", "too_dark", "profile")
# Sharpness and brightness are measured on the grey crop resized to this side, so that they do not depend on
# the crop size of a model's recipe; the Laplacian's variance falls ~4x per halving of resolution otherwise.
MEASURE_SIDE = 112
# Sharpness is measured on the region rescaled to this mean grey level (about a lit face's), so that a sharp face
# that is only under-exposed is not taken for a blurred one: the Laplacian's variance scales with the square of
# the exposure, and a face at a third of the brightness would score ~10x lower. Blur lowers it at any exposure.
MEAN_REF = 100.0
# The middle of the crop (60% of its side): the face box is the middle 77% of a crop of margin 1.3, so this is
# skin, eyes and mouth, not background or hair.
CENTRAL_FRACTION = 0.6


@dataclass(frozen=True)
class FaceQuality:
    """What the gates look at, for one face; plain floats (JSON-ready)."""
    side_px: float  # longer side of the detected face box, in pixels of the analysed image (Face.side)
    # variance of the Laplacian of the grey central face region at MEASURE_SIDE px, rescaled to a mean of MEAN_REF
    sharpness: float
    brightness: float  # mean luma (0-255) of the same region
    # Head turn from the 5 landmarks: the nose tip's offset from the eye-mouth midline in half inter-eye
    # distances; about tan(yaw angle): 0 frontal, 0.58 at 30 degrees, 1 at 45, 1.7 at 60. None without landmarks.
    yaw: float | None

    def to_dict(self) -> dict:
        return asdict(self)


def _central_grey(crop: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(np.ascontiguousarray(crop, np.uint8), cv2.COLOR_RGB2GRAY)
    if grey.shape[:2] != (MEASURE_SIDE, MEASURE_SIDE):
        interp = cv2.INTER_AREA if grey.shape[0] > MEASURE_SIDE else cv2.INTER_LINEAR
        grey = cv2.resize(grey, (MEASURE_SIDE, MEASURE_SIDE), interpolation=interp)
    lo = int(round(MEASURE_SIDE * (1 - CENTRAL_FRACTION) / 2))
    return grey[lo:MEASURE_SIDE - lo, lo:MEASURE_SIDE - lo]


def yaw_of(landmarks) -> float | None:
    """Frontalness from YuNet's 5 points (right eye, left eye, nose tip, right and left mouth corner): |offset of
    the nose from the midpoint of eyes and mouth corners along the eye axis| / half the inter-eye distance.
    Along the eye axis, so a tilted (rolled) head is not taken for a turned one. None without landmarks."""
    if landmarks is None:
        return None
    p = np.asarray(landmarks, np.float64).reshape(5, 2)
    if not np.all(np.isfinite(p)):
        return None
    axis = p[1] - p[0]
    d = float(np.hypot(*axis))
    if d < 1e-6:  # both eyes on one point: the head is seen side-on
        return 10.0
    mid = p[[0, 1, 3, 4]].mean(axis=0)
    offset = float(np.dot(p[2] - mid, axis / d))
    return round(min(abs(offset) / (d / 2), 10.0), 3)  # capped: beyond 10 (~84 degrees) it is all one


def measure(face: Face, crop: np.ndarray) -> FaceQuality:
    """The quality of one face: face is its deepfake.faces.Face, crop the RGB uint8 square crop the network
    scores (deepfake.crop.crop_face)."""
    region = _central_grey(crop).astype(np.float64)
    mean = float(region.mean())
    return FaceQuality(side_px=float(face.side), sharpness=round(_sharpness(region, mean), 2),
                       brightness=round(mean, 2), yaw=yaw_of(face.landmarks))


def _sharpness(region: np.ndarray, mean: float) -> float:
    # A black region (mean under one grey level) shows nothing to judge: sharpness 0.
    return float(cv2.Laplacian(region * (MEAN_REF / mean), cv2.CV_64F).var()) if mean >= 1.0 else 0.0


def sharpness(crop: np.ndarray) -> float:
    """The `blurred` gate's measure of one face crop: variance of the Laplacian of its grey central region
    (exposure-normalised), unrounded."""
    region = _central_grey(crop).astype(np.float64)
    return _sharpness(region, float(region.mean()))


def measure_all(faces, crops) -> list[FaceQuality]:
    """measure() of each (face, crop) pair."""
    return [measure(f, c) for f, c in zip(faces, crops)]


@dataclass(frozen=True)
class QualityGates:
    """A face fails a gate when its side, sharpness or brightness is below the minimum or its yaw above the
    maximum; a gate at 0 (a minimum) never fails."""
    min_side_px: float
    min_sharpness: float
    min_brightness: float
    max_yaw: float

    def reasons(self, q: FaceQuality) -> tuple[str, ...]:
        """The gates q fails, in REASONS order (a face without landmarks never fails `profile`)."""
        failed = (q.side_px < self.min_side_px, q.sharpness < self.min_sharpness,
                  q.brightness < self.min_brightness, q.yaw is not None and q.yaw > self.max_yaw)
        return tuple(r for r, bad in zip(REASONS, failed) if bad)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d) -> "QualityGates":
        """Gates from config.json's `quality_gates`; keys left out keep DEFAULT_GATES's value."""
        where = "config.json: field 'quality_gates'"
        if not isinstance(d, dict):
            raise ModelLoadError(f"{where} must be an object, got {type(d).__name__}")
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(d) - set(names))
        if unknown:
            raise ModelLoadError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; "
                                 f"known: {', '.join(names)}")
        values = {}
        for name in names:
            v = d.get(name, getattr(DEFAULT_GATES, name))
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ModelLoadError(f"{where}: '{name}' must be a finite number >= 0, got {v!r}")
            values[name] = float(v)
        return cls(**values)


# Measured for the bundled face-swap network (lite2 at 260 px, weights e17fb1fdd694) on its validation split
# (deepfake/train/gates.py, 1754 clean faces plus degraded copies; docs/gates/README.md has the tables and the
# command): the bin edges where the within-source ROC AUC first falls under 0.65. Side: 0.63 in [24, 28) px.
# Sharpness: 0.63 in [60, 80) (about a 2 px blur of the crop). Brightness: 0.6497 in [10, 15). Yaw: 0.63 above 0.6
# (about 31 degrees). The bundled config.json overrides min_sharpness to 60 (`quality_gates`): 80 gated 52 % of
# DFDC test fakes, which still rank at AUC 0.81.
DEFAULT_GATES = QualityGates(min_side_px=28.0, min_sharpness=80.0, min_brightness=15.0, max_yaw=0.6)
