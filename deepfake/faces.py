"""Find faces: OpenCV YuNet (from the Hub, else the copy bundled with the package), Haar cascade as a fallback.

The same `detect` (here) + `crop.crop_face` pair is used at inference and in training, so the network always
sees crops made the way it was trained on.
"""
from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

# Re-exported for callers that still import it from here (tests/conftest.py, tests/test_train.py).
from .crop import CropRecipe  # noqa: F401
from .errors import ModelLoadError
from .hub import hub_error, hub_reachable

log = logging.getLogger(__name__)

YUNET_REPO = "opencv/face_detection_yunet"
YUNET_FILE = "face_detection_yunet_2023mar.onnx"
# The Hub's file, shipped with the package (same SHA-256; MIT licence and provenance in assets/NOTICE.md), so an
# offline install without a Hub cache detects faces with the same model as the Space.
BUNDLED_YUNET = Path(__file__).resolve().parent / "assets" / YUNET_FILE
# Faces are found on a copy whose longer side is at most this; boxes are mapped back to full size.
DETECT_MAX_SIDE = 640
# The Haar cascade needs more pixels per face than YuNet: at 640 px a 220 px face of a 4K frame is 37 px and
# goes unseen; at 1280 px it is found (tests/test_faces.py), for about 2x the cascade's time.
HAAR_MAX_SIDE = 1280
# Smaller faces carry no usable evidence (and smaller images none at all).
MIN_FACE_SIDE = 8
# Inputs that already are a tight face crop: detect again on a copy with this much border added.
_PAD_FRACTION = 0.35


@dataclass(frozen=True)
class Face:
    box: tuple[int, int, int, int]  # x, y, width, height in pixels of the analysed image
    score: float  # detector confidence (1.0 for detectors that give none)
    landmarks: tuple[tuple[float, float], ...] | None = None  # YuNet: eyes, nose tip, mouth corners

    @property
    def side(self) -> int:
        return max(self.box[2], self.box[3])


def keep_large_faces(faces: list[Face], ratio: float = 0.5) -> list[Face]:
    """Faces at least `ratio` of the largest face's size, largest first."""
    if not faces:
        return []
    faces = sorted(faces, key=lambda f: f.side, reverse=True)
    return [f for f in faces if f.side >= ratio * faces[0].side]


@dataclass
class FaceDetector:
    """One face detector instance; `detect` is safe to call from several threads."""
    name: str  # "yunet" or "haar"
    source: str  # where the model came from, for results and the UI
    warning: str | None = None  # set when a fallback was used
    _impl: object = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _input_size: tuple[int, int] | None = field(default=None, repr=False)  # YuNet's, set only when it changes

    def detect(self, rgb: np.ndarray) -> list[Face]:
        """All faces at least half the size of the largest, largest first. Tight crops are handled."""
        faces = self._detect_scaled(rgb)
        if not faces:
            faces = self._detect_padded(rgb)
        return keep_large_faces(faces)

    def _detect_padded(self, rgb: np.ndarray) -> list[Face]:
        H, W = rgb.shape[:2]
        p = int(round(max(H, W) * _PAD_FRACTION))
        padded = cv2.copyMakeBorder(rgb, p, p, p, p, cv2.BORDER_CONSTANT, value=(127, 127, 127))
        out = []
        for f in self._detect_scaled(padded):
            x, y, w, h = f.box
            x0, y0 = max(0, x - p), max(0, y - p)
            x1, y1 = min(W, x - p + w), min(H, y - p + h)
            if x1 - x0 < 0.5 * w or y1 - y0 < 0.5 * h:  # mostly in the border: not a face of the image
                continue
            lm = None if f.landmarks is None else tuple((u - p, v - p) for u, v in f.landmarks)
            out.append(Face((x0, y0, x1 - x0, y1 - y0), f.score, lm))
        return out

    def _detect_scaled(self, rgb: np.ndarray) -> list[Face]:
        H, W = rgb.shape[:2]
        if min(H, W) < MIN_FACE_SIDE:  # no face fits; YuNet returns garbage boxes on such inputs
            return []
        scale = min(1.0, (DETECT_MAX_SIDE if self.name == "yunet" else HAAR_MAX_SIDE) / max(H, W))
        small = rgb if scale == 1.0 else cv2.resize(
            rgb, (max(1, round(W * scale)), max(1, round(H * scale))), interpolation=cv2.INTER_AREA)
        bgr = cv2.cvtColor(small, cv2.COLOR_RGB2BGR)
        with self._lock:
            if self.name == "yunet":
                # setInputSize makes the next detect rebuild its anchors (+30% per call): only on a new size,
                # e.g. once per video instead of once per frame.
                size = (bgr.shape[1], bgr.shape[0])
                if size != self._input_size:
                    self._impl.setInputSize(size)
                    self._input_size = size
                raw = _yunet_detect(self._impl, bgr)
            else:
                raw = _haar_detect(self._impl, bgr)
        inv = 1.0 / scale
        faces = []
        for box, score, lm in raw:
            if not (np.all(np.isfinite(box)) and np.isfinite(score)):
                continue
            x, y, w, h = (float(v) * inv for v in box)
            x0, y0 = max(0, int(round(x))), max(0, int(round(y)))
            x1, y1 = min(W, int(round(x + w))), min(H, int(round(y + h)))
            if x1 - x0 < MIN_FACE_SIDE or y1 - y0 < MIN_FACE_SIDE:
                continue
            lm = None if lm is None or not np.all(np.isfinite(lm)) else tuple((float(u) * inv, float(v) * inv) for u, v in lm)
            faces.append(Face((x0, y0, x1 - x0, y1 - y0), round(float(score), 4), lm))
        return faces


def _yunet_detect(net, bgr):
    """Faces in a BGR image of the size last given to net.setInputSize."""
    _, dets = net.detect(bgr)
    if dets is None:
        return []
    return [(d[0:4], d[14], d[4:14].reshape(5, 2)) for d in dets]


# Haar boxes are tighter than YuNet's, on which the detector was trained: map them to YuNet's geometry
# (median over 220 faces of ciplab/val and stylegan found by both: YuNet's longer side is 1.10x Haar's
# side, its centre 0.01 side lower), so the fallback feeds the network crops of the size it knows.
HAAR_TO_YUNET_SCALE = 1.10
HAAR_TO_YUNET_SHIFT_Y = 0.01


def _haar_detect(cascade, bgr):
    gray = cv2.equalizeHist(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    min_side = max(24, min(gray.shape) // 12)
    boxes = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side))
    out = []
    for x, y, w, h in (boxes if len(boxes) else []):
        side = max(w, h) * HAAR_TO_YUNET_SCALE
        cx, cy = x + w / 2.0, y + h / 2.0 + HAAR_TO_YUNET_SHIFT_Y * side
        out.append(((cx - side / 2, cy - side / 2, side, side), 1.0, None))
    return out


def haar_detector(warning: str | None = None) -> FaceDetector:
    path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise RuntimeError("OpenCV's bundled Haar cascade is missing: reinstall opencv-python-headless 4.x")
    return FaceDetector("haar", "opencv haarcascade_frontalface_default.xml", warning, cascade)


def yunet_from_file(path: str | os.PathLike, source: str) -> FaceDetector:
    """Load YuNet from an ONNX file; raises ValueError if the file is missing or not a usable model."""
    if not Path(path).is_file():
        raise ValueError(f"{Path(path).name} does not exist")
    try:
        net = cv2.FaceDetectorYN.create(str(path), "", (320, 320), 0.7, 0.3, 5000)
    except cv2.error as exc:
        raise ValueError(f"{Path(path).name} is not a valid YuNet ONNX model") from exc
    return FaceDetector("yunet", source, None, net)


def _hub_yunet() -> tuple[str, str]:
    """(path, source) of YuNet's file from the Hub, or the local cache when the Hub is unreachable."""
    from huggingface_hub import hf_hub_download  # looked up per call: tests replace it on the module

    revision = os.environ.get("DEEPFAKE_YUNET_REVISION") or None
    path = hf_hub_download(YUNET_REPO, YUNET_FILE, revision=revision, etag_timeout=2,
                           local_files_only=not hub_reachable())
    return path, f"{YUNET_REPO}/{YUNET_FILE}" + (f"@{revision}" if revision else "")


def load_face_detector(spec: str | None = None) -> FaceDetector:
    """The face detector. spec (or env DEEPFAKE_FACE_DETECTOR): None/"yunet", "haar", or a YuNet ONNX path.

    "yunet" tries, in order: the Hub's file (the local cache when the Hub is unreachable; pin the revision
    with DEEPFAKE_YUNET_REVISION), the copy bundled with the package, and as a last resort the Haar cascade.
    Each fallback is stated in `warning`, so every result says so. An ONNX path that does not load raises
    ModelLoadError: a detector the user named is never swapped for another in silence.
    """
    spec = spec or os.environ.get("DEEPFAKE_FACE_DETECTOR") or "yunet"
    if spec == "haar":
        return haar_detector()
    if spec != "yunet":
        try:
            return yunet_from_file(spec, Path(spec).name)
        except ValueError as exc:
            raise ModelLoadError(f"Face detector: {exc}.") from None
    try:
        path, source = _hub_yunet()
    except Exception as exc:  # any failure to get the Hub's file: the bundled copy, then Haar; said in every result
        hub_reason = hub_error(exc, YUNET_REPO, os.environ.get("DEEPFAKE_YUNET_REVISION") or None)
    else:
        try:
            return yunet_from_file(path, source)
        except ValueError as exc:  # a corrupt cached file
            hub_reason = f"the Hub's {exc}"
    try:
        fd = yunet_from_file(BUNDLED_YUNET, f"bundled:{YUNET_FILE}")
    except ValueError as exc:
        msg = (f"YuNet face detector unavailable ({hub_reason}; bundled copy: {exc}); "
               "using the Haar cascade fallback.")
        log.warning(msg)
        return haar_detector(warning=msg)
    fd.warning = f"YuNet face detector: the copy bundled with the package ({hub_reason})."
    log.warning(fd.warning)
    return fd
