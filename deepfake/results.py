"""Typed results of an analysis: frozen dataclasses whose to_dict() is JSON-serialisable.

Array fields (maps, frames) are kept for rendering but marked `json=False` and left out of the JSON."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

import numpy as np

from .band import FAKE, NO_FACE, REAL, UNCERTAIN  # noqa: F401  (re-exported: the labels of every result)


def _array_field(default=None):
    return field(default=default, repr=False, compare=False, metadata={"json": False})


def _plain(value):
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)
                if f.metadata.get("json", True)}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, (np.floating, float)):
        return None if not np.isfinite(value) else round(float(value), 6)
    if isinstance(value, np.integer):
        return int(value)
    return value


class _Json:
    def to_dict(self) -> dict:
        return _plain(self)

    def to_json(self, **kw) -> str:
        return json.dumps(self.to_dict(), **kw)


@dataclass(frozen=True)
class Provenance:
    """What produced a result: face detector, model id and revision, and what went differently from the request.
    ImageResult and VideoResult carry these as flat fields (the JSON README documents), filled from fields()."""
    face_detector: str
    model_id: str
    model_revision: str
    warnings: tuple[str, ...] = ()

    def fields(self, *warnings: str) -> dict:
        """The four fields as keyword arguments of a result, with `warnings` added to these."""
        return dict(dataclasses.asdict(self), warnings=self.warnings + tuple(warnings))


@dataclass(frozen=True)
class NetworkScore(_Json):
    """One network's say on a face, image, frame or video: its probability, and its label by its own band."""
    network: str  # the network's name (config.json): "face_swap", "generated", ...
    kind: str  # the kind of fake it finds: face_swap or generated
    fake_probability: float | None  # None: no face
    label: str  # FAKE, REAL, UNCERTAIN or NO_FACE by this network's band (UNCERTAIN when the gates failed)
    threshold: float  # this network's FAKE bound
    real_below: float  # this network's REAL bound


@dataclass(frozen=True)
class FaceResult(_Json):
    box: tuple[int, int, int, int]  # x, y, width, height of the detected face
    crop_box: tuple[int, int, int, int]  # x0, y0, x1, y1 of the square crop the detector scored
    detection_score: float
    fake_probability: float
    label: str  # FAKE, REAL or UNCERTAIN (by the band, or because a quality gate failed)
    quality: dict = field(default_factory=dict)  # deepfake.quality.FaceQuality: side_px, sharpness, brightness, yaw
    reasons: tuple[str, ...] = ()  # quality gates this face failed (face_too_small, blurred, too_dark, profile)
    # Each network's probability and label (the first is the detector's own network, whose probability is
    # fake_probability); `label` combines them (deepfake/verdict.py) and `manipulation` is the likely kind of fake
    # (face_swap, generated) when the label is FAKE.
    scores: tuple[NetworkScore, ...] = ()
    manipulation: str | None = None


@dataclass(frozen=True)
class ImageResult(_Json):
    label: str  # FAKE, REAL, UNCERTAIN or NO_FACE
    # Max over the faces that pass the quality gates (over all faces when none does: the label is then
    # UNCERTAIN); None when no face was found.
    fake_probability: float | None
    threshold: float  # FAKE from this probability (the band's upper bound)
    faces: tuple[FaceResult, ...]
    scored_whole_image: bool  # no face found and the whole image was scored on request
    face_detector: str  # "yunet" or "haar"
    model_id: str
    model_revision: str
    width: int  # of the image as decoded (after EXIF rotation)
    height: int
    timings_ms: dict  # milliseconds per step: detect, classify, ...
    warnings: tuple[str, ...] = ()
    kind: str = "image"
    real_below: float | None = None  # REAL below this probability; UNCERTAIN from it up to threshold
    reasons: tuple[str, ...] = ()  # why the label is UNCERTAIN when no face passed the quality gates
    # Each network's image probability and label; fake_probability, threshold and real_below are the first
    # network's. manipulation: the likely kind of fake when the label is FAKE.
    scores: tuple[NetworkScore, ...] = ()
    manipulation: str | None = None


@dataclass(frozen=True)
class FrameResult(_Json):
    index: int
    timestamp_s: float
    fake_probability: float | None  # max over the frame's faces that pass the gates (all when none does)
    faces: tuple[FaceResult, ...]
    importance_leave_one_out: float | None  # video probability minus the same without this frame
    importance_blank: float | None  # video probability minus the same with this frame blanked
    # The frame shrunk to media.PREVIEW_MAX_SIDE (RGB), for galleries; the full frame is not kept.
    # Face boxes are in full-frame pixels: scale them by preview width / VideoResult.width.
    preview: np.ndarray | None = _array_field()
    label: str = NO_FACE  # the frame's band: FAKE, REAL, UNCERTAIN (band or gates) or NO_FACE
    reasons: tuple[str, ...] = ()  # gates all the frame's faces failed: the video score leaves such frames out
    scores: tuple[NetworkScore, ...] = ()  # each network's frame probability and label
    manipulation: str | None = None


@dataclass(frozen=True)
class VideoResult(_Json):
    label: str
    fake_probability: float | None
    threshold: float
    aggregation: str  # "mean" or "confident"
    frames: tuple[FrameResult, ...]
    frames_sampled: int
    frames_with_face: int
    blank_frame_probability: float | None  # the model's score of a blank frame (blank-frame importance)
    fps: float
    duration_s: float
    frame_count: int
    width: int
    height: int
    face_detector: str
    model_id: str
    model_revision: str
    timings_ms: dict
    warnings: tuple[str, ...] = ()
    kind: str = "video"
    real_below: float | None = None  # REAL below this probability; UNCERTAIN from it up to threshold
    frames_judged: int = 0  # frames with a face that passes the quality gates: the video score's frames
    reasons: tuple[str, ...] = ()  # why the label is UNCERTAIN when no frame passed the gates
    # Each network's video probability (its frames aggregated alike) and label; manipulation as for images.
    scores: tuple[NetworkScore, ...] = ()
    manipulation: str | None = None
    # Full-size RGB frames, only with keep_frames=True (offline evaluation re-scores them); galleries use
    # FrameResult.preview, which is always there and bounded.
    frame_images: tuple = _array_field(())


@dataclass(frozen=True)
class FaceCam(_Json):
    box: tuple[int, int, int, int]
    crop_box: tuple[int, int, int, int]
    fake_probability: float
    peak_xy: tuple[int, int]  # image pixel where this face's map is highest
    cam: np.ndarray = _array_field()  # (crop size, crop size) in [0, 1]


@dataclass(frozen=True)
class CamResult(_Json):
    method: str
    target: str  # the output explained: always the "fake" class, whatever the prediction
    result: ImageResult
    faces: tuple[FaceCam, ...]
    heatmap: np.ndarray = _array_field()  # (H, W) in [0, 1]: each face's map pasted at its crop box


@dataclass(frozen=True)
class OcclusionResult(_Json):
    grid: int
    baseline: str
    fake_probability: float  # of the unoccluded crop
    # changes[i][j]: fake probability of the crop minus that with cell (row i, column j) occluded;
    # positive = the cell pushes toward FAKE.
    changes: np.ndarray
    crop_box: tuple[int, int, int, int]
    result: ImageResult
    crop: np.ndarray = _array_field()  # the face crop that was occluded (RGB)
