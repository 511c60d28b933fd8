"""The Detector: faces -> crops -> network -> typed results, plus explanations and video analysis.
Every front end (app, CLI, Python API, tests, benchmarks) goes through these methods."""
from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from . import explain, media, video
from .errors import InputError
from .faces import Face, FaceDetector, crop_face, load_face_detector
from .hub import resolve_source
from .model import DEFAULT_BATCH, Network
from .results import (NO_FACE, CamResult, FaceCam, FaceResult, FrameResult, ImageResult, OcclusionResult,
                      VideoResult, label_for)

DEFAULT_FRAMES = 32


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000.0, 2)


@dataclass
class Detector:
    network: Network
    face_detector: FaceDetector
    model_id: str
    revision: str
    warnings: tuple[str, ...] = ()
    folder: Path | None = None  # the detector folder (model card, config), when loaded from one
    _blank_p: float | None = field(default=None, repr=False)

    # ------------------------------------------------------------------------------------ basics
    @property
    def config(self):
        return self.network.config

    @property
    def threshold(self) -> float:
        return self.config.threshold

    def _threshold(self, threshold: float | None) -> float:
        t = self.threshold if threshold is None else float(threshold)
        if not 0.0 <= t <= 1.0:
            raise InputError(f"Threshold must be between 0 and 1, got {threshold}.")
        return t

    @property
    def load_warnings(self) -> tuple[str, ...]:
        """What went differently from the request at load time (model source fallback, Haar face detector)."""
        fd = (self.face_detector.warning,) if self.face_detector.warning else ()
        return self.warnings + fd

    def _crops(self, rgb: np.ndarray, faces: list[Face]):
        pairs = [crop_face(rgb, f.box, self.config.crop) for f in faces]
        return [c for c, _ in pairs], [b for _, b in pairs]

    def _whole_crop(self, rgb: np.ndarray):
        size = self.config.crop.size
        return cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA), (0, 0, rgb.shape[1], rgb.shape[0])

    def warm_up(self) -> None:
        """One forward pass and one face detection, so the first request is not the slow one."""
        self.network.predict([np.zeros((self.config.crop.size,) * 2 + (3,), np.uint8)])
        self.face_detector.detect(np.zeros((64, 64, 3), np.uint8))

    # ------------------------------------------------------------------------------------ images
    def _score_image(self, rgb: np.ndarray, threshold: float, whole_image: bool):
        """(ImageResult, crops, crop boxes) for an RGB array."""
        t0 = time.perf_counter()
        faces = self.face_detector.detect(rgb)
        t_detect = _ms(t0)
        t1 = time.perf_counter()
        crops, boxes = self._crops(rgb, faces)
        scored_whole = False
        warnings = self.load_warnings
        if not faces and whole_image:
            crop, box = self._whole_crop(rgb)
            crops, boxes, scored_whole = [crop], [box], True
            warnings += ("No face detected: the whole image was scored, as requested. The detector was "
                         "trained on face crops, so this score is less reliable.",)
        probs = self.network.predict(crops)
        t_classify = _ms(t1)
        face_results = tuple(
            FaceResult(tuple(int(v) for v in f.box), tuple(int(v) for v in b), f.score, float(p), label_for(p, threshold))
            for f, b, p in zip(faces, boxes, probs))
        prob = float(probs.max()) if len(probs) else None
        result = ImageResult(
            label=label_for(prob, threshold), fake_probability=prob, threshold=threshold, faces=face_results,
            scored_whole_image=scored_whole, face_detector=self.face_detector.name, model_id=self.model_id,
            model_revision=self.revision, width=int(rgb.shape[1]), height=int(rgb.shape[0]),
            timings_ms={"face_detection": t_detect, "classification": t_classify, "total": _ms(t0)},
            warnings=warnings)
        return result, crops, boxes

    def analyze_image(self, image, *, threshold: float | None = None, whole_image: bool = False) -> ImageResult:
        """Verdict for an image (path, bytes, PIL image or array). NO_FACE when no face is found,
        unless whole_image=True, which scores the whole image and says so."""
        rgb = media.load_image(image)
        return self._score_image(rgb, self._threshold(threshold), whole_image)[0]

    def grad_cam(self, image, method: str = "gradcam", *, threshold: float | None = None,
                 whole_image: bool = False) -> CamResult:
        """CAM of the fake output on each face crop, pasted back onto the full image."""
        if method.lower() not in explain.CAM_METHODS:
            raise InputError(f"Unknown CAM method '{method}'. Choose one of: {', '.join(explain.CAM_METHODS)}.")
        rgb = media.load_image(image)
        result, crops, boxes = self._score_image(rgb, self._threshold(threshold), whole_image)
        if not crops:
            return CamResult(method, self.config.label_names[self.config.fake_index], result, (),
                             np.zeros(rgb.shape[:2], np.float32))
        t0 = time.perf_counter()
        x = self.network.preprocess(crops)
        net, lock = self.network.cam_network()
        with lock:  # hooks live on a private copy; one CAM at a time on it
            maps = explain.cam_maps(net, explain.get_module(net, self.network.cam_layer_name()), x,
                                    self.config.fake_index, method, flip=self.config.test_time_flip)
        heatmap = explain.paste_maps(list(maps), boxes, rgb.shape)
        faces = []
        probs = [f.fake_probability for f in result.faces] or [result.fake_probability]
        for m, box, p in zip(maps, boxes, probs):
            x0, y0, x1, y1 = box
            fb = next((f.box for f in result.faces if tuple(f.crop_box) == tuple(box)), (x0, y0, x1 - x0, y1 - y0))
            faces.append(FaceCam(fb, box, float(p), explain.peak_xy(m, box), m))
        timings = dict(result.timings_ms, cam=_ms(t0))
        result = _replace(result, timings_ms=timings)
        return CamResult(method.lower(), self.config.label_names[self.config.fake_index], result, tuple(faces), heatmap)

    def occlusion_map(self, image, grid: int = 8, baseline: str = "mean", *, face: int = 0,
                      threshold: float | None = None, whole_image: bool = False) -> OcclusionResult:
        """Grid occlusion on one face crop (the largest by default): G x G signed probability changes."""
        if not explain.GRID_MIN <= int(grid) <= explain.GRID_MAX:
            raise InputError(f"Grid size must be between {explain.GRID_MIN} and {explain.GRID_MAX}, got {grid}.")
        if baseline not in explain.OCCLUSION_BASELINES:
            raise InputError(f"Unknown occlusion baseline '{baseline}'. Choose one of: "
                             f"{', '.join(explain.OCCLUSION_BASELINES)}.")
        rgb = media.load_image(image)
        result, crops, boxes = self._score_image(rgb, self._threshold(threshold), whole_image)
        if not crops:
            raise InputError("No face detected, so there is no face crop to occlude.")
        if not 0 <= face < len(crops):
            raise InputError(f"Face index {face} out of range: {len(crops)} face(s) found.")
        t0 = time.perf_counter()
        x = self.network.preprocess([crops[face]])
        p0, changes = explain.occlusion_changes(self.network.probabilities, x, grid, baseline)
        result = _replace(result, timings_ms=dict(result.timings_ms, occlusion=_ms(t0)))
        return OcclusionResult(int(grid), baseline, p0, changes, tuple(boxes[face]), result, crops[face])

    # ------------------------------------------------------------------------------------ video
    def blank_probability(self) -> float:
        """The model's score of a blank (mid-grey) frame: one forward pass, cached."""
        if self._blank_p is None:
            size = self.config.crop.size
            self._blank_p = float(self.network.predict([np.full((size, size, 3), 127, np.uint8)])[0])
        return self._blank_p

    def analyze_video(self, path, frames: int = DEFAULT_FRAMES, *, aggregation: str = "mean",
                      threshold: float | None = None, keep_frames: bool = False, progress=None) -> VideoResult:
        """Sample `frames` evenly spaced frames, score each face, aggregate, and rank frame importance.
        Frames are decoded and scored one at a time: of each, only a preview (FrameResult.preview) and its
        face crops (until classified) are kept. keep_frames=True also keeps every full frame (frame_images),
        for offline evaluation; memory then grows with frames x resolution."""
        if aggregation not in video.AGGREGATIONS:
            raise InputError(f"Unknown aggregation '{aggregation}'. Choose one of: {', '.join(video.AGGREGATIONS)}.")
        threshold = self._threshold(threshold)
        t0 = time.perf_counter()
        info, wanted, stream = media.iter_frames(path, int(frames))
        scan = _FrameScan(self, keep_frames)
        with contextlib.closing(stream):
            scan.run(stream, len(wanted), progress)
        probs = scan.classify()
        frame_p, frame_faces = [], []
        for faces, boxes, start in scan.per_frame:
            fp = probs[start:start + len(faces)]
            frame_faces.append(tuple(
                FaceResult(tuple(int(v) for v in f.box), tuple(int(v) for v in b), f.score, float(p), label_for(p, threshold))
                for f, b, p in zip(faces, boxes, fp)))
            frame_p.append(float(fp.max()) if len(fp) else None)
        sampled = scan.sampled
        has_face = np.array([p is not None for p in frame_p], dtype=bool)
        scored = np.array([p for p in frame_p if p is not None], dtype=np.float64)
        video_p = video.aggregate(scored, aggregation) if scored.size else None
        loo = np.full(len(sampled), np.nan)
        blank = np.full(len(sampled), np.nan)
        p_blank = None
        if scored.size:
            loo[has_face] = video.leave_one_out(scored, aggregation)
            p_blank = self.blank_probability()
            blank[has_face] = video.blank_frame(scored, p_blank, aggregation)
        frame_results = tuple(
            FrameResult(index, ts, p, ff, None if np.isnan(lo) else float(lo), None if np.isnan(bl) else float(bl),
                        preview=small)
            for (index, ts, small), p, ff, lo, bl in zip(sampled, frame_p, frame_faces, loo, blank))
        warnings = self.load_warnings
        if scored.size and scored.size < len(sampled):
            warnings += (f"{len(sampled) - scored.size} of {len(sampled)} sampled frames have no face and were "
                         "left out of the video score.",)
        if not scored.size:
            warnings += ("No face detected in any sampled frame.",)
        return VideoResult(
            label=label_for(video_p, threshold), fake_probability=video_p, threshold=threshold,
            aggregation=aggregation, frames=frame_results, frames_sampled=len(sampled),
            frames_with_face=int(scored.size), blank_frame_probability=p_blank, fps=round(info.fps, 3),
            duration_s=round(info.duration_s, 3), frame_count=info.frame_count, width=info.width,
            height=info.height, face_detector=self.face_detector.name, model_id=self.model_id,
            model_revision=self.revision,
            timings_ms={"decode": scan.ms["decode"], "face_detection": scan.ms["face_detection"],
                        "classification": scan.ms["classification"], "total": _ms(t0)},
            warnings=warnings, frame_images=tuple(scan.full) if keep_frames else ())

    def analyze(self, path, **kw) -> ImageResult | VideoResult:
        """Image or video, by file extension."""
        kind = media.media_kind(path)
        if kind == "video":
            return self.analyze_video(path, **{k: v for k, v in kw.items() if k in ("frames", "aggregation", "threshold")})
        if kind == "image":
            return self.analyze_image(path, **{k: v for k, v in kw.items() if k in ("threshold", "whole_image")})
        raise InputError(media.unsupported_reason(path))


# Crops are classified in chunks of this many as frames stream in (a multiple of the network's batch, so the
# batches, and the probabilities, are those of one call on all crops); only the probabilities are kept.
_CLASSIFY_CHUNK = 4 * DEFAULT_BATCH


class _FrameScan:
    """One pass over a video's sampled frames: faces, crops and a preview per frame, full frames dropped."""

    def __init__(self, det: Detector, keep_frames: bool):
        self.det, self.keep_frames = det, keep_frames
        self.sampled: list[tuple[int, float, np.ndarray]] = []  # (index, timestamp, preview)
        self.per_frame: list[tuple[list[Face], list, int]] = []  # (faces, crop boxes, first crop's number)
        self.full: list[np.ndarray] = []
        self.pending: list[np.ndarray] = []  # crops not classified yet
        self.probs: list[np.ndarray] = []
        self.n_crops = 0
        self.ms = {"decode": 0.0, "face_detection": 0.0, "classification": 0.0}

    def run(self, stream, total: int, progress) -> None:
        t = time.perf_counter()
        for i, fr in enumerate(stream):
            self.ms["decode"] += _ms(t)
            t = time.perf_counter()
            faces = self.det.face_detector.detect(fr.rgb)
            crops, boxes = self.det._crops(fr.rgb, faces)
            self.sampled.append((fr.index, fr.timestamp_s, media.preview(fr.rgb)))
            if self.keep_frames:
                self.full.append(fr.rgb)
            self.ms["face_detection"] += _ms(t)
            self.per_frame.append((faces, boxes, self.n_crops))
            self.n_crops += len(crops)
            self.pending.extend(crops)
            if len(self.pending) >= _CLASSIFY_CHUNK:
                self._classify(_CLASSIFY_CHUNK * (len(self.pending) // _CLASSIFY_CHUNK))
            if progress is not None:
                progress((i + 1) / total)
            t = time.perf_counter()
        self.ms["decode"] += _ms(t)

    def _classify(self, n: int) -> None:
        t = time.perf_counter()
        self.probs.append(self.det.network.predict(self.pending[:n]))
        del self.pending[:n]
        self.ms["classification"] += _ms(t)

    def classify(self) -> np.ndarray:
        """Probabilities of all crops, in order."""
        self._classify(len(self.pending))
        return np.concatenate(self.probs) if self.probs else np.zeros(0)


def _replace(obj, **changes):
    import dataclasses
    return dataclasses.replace(obj, **changes)


def load_detector(source: str | os.PathLike | None = None, *, face_detector: str | FaceDetector | None = None,
                  device: str | None = None) -> Detector:
    """Load a detector: a Hub repo id[@revision], a local folder, or (default) $DEEPFAKE_MODEL or the
    bundled model. face_detector: a FaceDetector, "yunet" (default), "haar", or a YuNet ONNX path."""
    src = resolve_source(source)
    network = Network.from_folder(src.folder, device=device)
    fd = face_detector if isinstance(face_detector, FaceDetector) else load_face_detector(face_detector)
    return Detector(network, fd, src.model_id, src.revision, src.warnings, src.folder)
