"""The Detector: one scoring step (image -> faces -> crops -> probabilities) and the typed results built on it.

Verdicts, Grad-CAM, occlusion and video analysis all score through `_find` + `Network.predict`; every front
end (app, CLI, Python API, tests, benchmarks) goes through these methods.
"""
from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import explain, media, quality, video
from .band import Band
from .crop import crop_face, whole_image_crop
from .errors import InputError
from .faces import Face, FaceDetector, load_face_detector
from .hub import resolve_source
from .model import DEFAULT_BATCH, Network
from .networks import Member, load_members, primary
from .results import (CamResult, FaceCam, FaceResult, FrameResult, ImageResult, NetworkScore, OcclusionResult,
                      Provenance, VideoResult)
from .verdict import Verdict, combine, face_label, judge, judge_video, merged_reasons, video_frames

DEFAULT_FRAMES = 32
WHOLE_IMAGE_WARNING = ("No face detected: the whole image was scored, as requested. The detector was trained "
                       "on face crops, so this score is less reliable.")


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000.0, 2)


def _gate_warning(reasons: tuple[str, ...]) -> tuple[str, ...]:
    """The warning of a verdict no face could be judged for (its reasons; empty otherwise)."""
    if not reasons:
        return ()
    return (f"No face passed the quality gates ({', '.join(reasons)}): the label is UNCERTAIN, not a verdict.",)


@dataclass(frozen=True)
class Say:
    """One network's probabilities of a set of crops, with its name, kind and the band that labels them."""
    name: str
    kind: str
    band: Band
    probs: np.ndarray


def network_scores(says, labels, probs) -> tuple[NetworkScore, ...]:
    return tuple(NetworkScore(s.name, s.kind, p, lab, s.band.fake_from, s.band.real_below)
                 for s, lab, p in zip(says, labels, probs))


def combined(says, labels, probs) -> tuple[str, str | None, tuple[NetworkScore, ...]]:
    """(label, kind of fake, each network's score) of a face, image, frame or video from each network's label and
    probability."""
    label, kind = combine(labels, probs, [s.band for s in says], [s.kind for s in says])
    return label, kind, network_scores(says, labels, probs)


def combined_verdicts(says, verdicts: list[Verdict]) -> tuple[str, str | None, tuple[NetworkScore, ...]]:
    """combined() of each network's verdict of an image, frame or video."""
    return combined(says, [v.label for v in verdicts], [v.probability for v in verdicts])


def face_results(faces, boxes, says: list[Say], qualities, reasons) -> tuple[FaceResult, ...]:
    """The FaceResult of each scored face (the only place one is built): each network's label, and their
    combination."""
    out = []
    for i, (f, b, q, r) in enumerate(zip(faces, boxes, qualities, reasons)):
        probs = [float(s.probs[i]) for s in says]
        label, kind, scores = combined(says, [face_label(p, r, s.band) for p, s in zip(probs, says)], probs)
        out.append(FaceResult(tuple(int(v) for v in f.box), tuple(int(v) for v in b), f.score, probs[0], label,
                              q.to_dict(), r, scores, kind))
    return tuple(out)


@dataclass(frozen=True)
class Scored:
    """An image through the scoring step: the faces found, each one's crop and crop box, and the network's fake
    probability of each crop. With no face and whole_image=True: one crop of the whole image and no face."""
    faces: tuple[Face, ...]
    crops: list[np.ndarray]
    boxes: list[tuple[int, int, int, int]]
    probs: np.ndarray
    timings_ms: dict  # face_detection, classification, total
    qualities: tuple = ()  # deepfake.quality.FaceQuality of each face
    reasons: tuple = ()  # the quality gates each face failed
    extra_probs: tuple = ()  # the further networks' probabilities of the crops (Detector.extra order)

    @property
    def whole_image(self) -> bool:
        return bool(self.crops) and not self.faces

    @property
    def face_boxes(self) -> list[tuple[int, int, int, int]]:
        """(x, y, w, h) of each crop's face; of the whole image when it was scored whole."""
        if self.whole_image:
            x0, y0, x1, y1 = self.boxes[0]
            return [(x0, y0, x1 - x0, y1 - y0)]
        return [tuple(int(v) for v in f.box) for f in self.faces]


@dataclass
class Detector:
    network: Network
    face_detector: FaceDetector
    model_id: str
    revision: str
    warnings: tuple[str, ...] = ()
    folder: Path | None = None  # the detector folder (model card, config), when loaded from one
    extra: tuple[Member, ...] = ()  # the folder's further networks (config.json deepfake.networks)
    _blank_p: float | None = field(default=None, repr=False)

    # ------------------------------------------------------------------------------------ basics
    @property
    def config(self):
        return self.network.config

    @property
    def threshold(self) -> float:
        return self.config.threshold

    @property
    def members(self) -> tuple[Member, ...]:
        """Every network of the detector: its own first, then the further ones."""
        return (primary(self.network, self.model_id, self.revision),) + self.extra

    def says(self, band: Band, probs, extra_probs) -> list[Say]:
        """Each network's probabilities with its band: the request's band for the first network, their own for
        the further ones."""
        bands = [band] + [m.band for m in self.extra]
        return [Say(m.name, m.kind, b, np.asarray(p)) for m, b, p in zip(self.members, bands, [probs, *extra_probs])]

    @property
    def band(self) -> Band:
        """The model's band: REAL below band.real_below, FAKE from band.fake_from (= threshold)."""
        return self.config.bands

    def band_for(self, threshold: float | None, real_below: float | None = None) -> Band:
        """The band of a request: the model's, with either bound replaced. A threshold (FAKE bound) below the
        model's REAL bound moves the REAL bound down with it, so a lone threshold still means one cut."""
        t = self.band.fake_from if threshold is None else float(threshold)
        if not 0.0 <= t <= 1.0:
            raise InputError(f"Threshold must be between 0 and 1, got {threshold}.")
        r = min(self.band.real_below, t) if real_below is None else float(real_below)
        if not 0.0 <= r <= 1.0:
            raise InputError(f"The REAL bound must be between 0 and 1, got {real_below}.")
        if r > t:
            raise InputError(f"The REAL bound ({r:g}) must not be above the FAKE threshold ({t:g}).")
        return Band(real_below=r, fake_from=t)

    @property
    def load_warnings(self) -> tuple[str, ...]:
        """What went differently from the request at load time (model source fallback, Haar face detector)."""
        fd = (self.face_detector.warning,) if self.face_detector.warning else ()
        return self.warnings + fd

    @property
    def provenance(self) -> Provenance:
        """The face detector, model, revision and load warnings every result states."""
        return Provenance(self.face_detector.name, self.model_id, self.revision, self.load_warnings)

    def _crops(self, rgb: np.ndarray, faces) -> tuple[list[np.ndarray], list[tuple[int, int, int, int]]]:
        """(crops, crop boxes) of the faces, by the model's crop recipe."""
        pairs = [crop_face(rgb, f.box, self.config.crop) for f in faces]
        return [c for c, _ in pairs], [b for _, b in pairs]

    def _whole_crop(self, rgb: np.ndarray):
        """(crop, crop box) of the whole image (kept for bench/run.py, which calls it)."""
        return whole_image_crop(rgb, self.config.crop)

    def _find(self, rgb: np.ndarray) -> tuple[tuple[Face, ...], list[np.ndarray], list, tuple, tuple]:
        """The first half of the scoring step: (faces, their crops, their crop boxes, their FaceQuality, the
        quality gates each failed)."""
        faces = tuple(self.face_detector.detect(rgb))
        crops, boxes = self._crops(rgb, faces)
        qualities = tuple(quality.measure(f, c) for f, c in zip(faces, crops))
        return faces, crops, boxes, qualities, tuple(self.config.gates.reasons(q) for q in qualities)

    def _score(self, rgb: np.ndarray, whole_image: bool = False) -> Scored:
        """The scoring step: faces, crops and each crop's fake probability (the whole image, when asked, if
        there is no face). Video scoring runs its two halves apart, to batch crops across frames."""
        t0 = time.perf_counter()
        faces, crops, boxes, qualities, reasons = self._find(rgb)
        t_find = _ms(t0)
        if not faces and whole_image:
            crop, box = self._whole_crop(rgb)
            crops, boxes, reasons = [crop], [box], ((),)  # the whole image is not gated: the warning says why
        t1 = time.perf_counter()
        probs = self.network.predict(crops)
        extra = tuple(m.network.predict(crops) for m in self.extra)
        return Scored(faces, crops, boxes, probs, {"face_detection": t_find, "classification": _ms(t1),
                                                   "total": _ms(t0)}, qualities, reasons, extra)

    def _load_and_score(self, image, threshold: float | None, whole_image: bool, real_below: float | None = None):
        """(RGB array, checked band, Scored) of an image argument."""
        rgb = media.load_image(image)
        band = self.band_for(threshold, real_below)
        return rgb, band, self._score(rgb, whole_image)

    def _image_result(self, rgb: np.ndarray, s: Scored, band: Band, **timings: float) -> ImageResult:
        says = self.says(band, s.probs, s.extra_probs)
        verdicts = [judge(x.probs, list(s.reasons), x.band) for x in says]
        label, kind, scores = combined_verdicts(says, verdicts)
        v = verdicts[0]
        return ImageResult(
            label=label, fake_probability=v.probability, threshold=band.fake_from,
            faces=face_results(s.faces, s.boxes, says, s.qualities, s.reasons),
            scored_whole_image=s.whole_image, width=int(rgb.shape[1]), height=int(rgb.shape[0]),
            timings_ms=dict(s.timings_ms, **timings), real_below=band.real_below, reasons=v.reasons,
            scores=scores, manipulation=kind,
            **self.provenance.fields(*([WHOLE_IMAGE_WARNING] if s.whole_image else []), *_gate_warning(v.reasons)))

    def warm_up(self) -> None:
        """One forward pass and one face detection, so the first request is not the slow one."""
        for m in self.members:
            m.network.predict([np.zeros((m.network.config.crop.size,) * 2 + (3,), np.uint8)])
        self.face_detector.detect(np.zeros((64, 64, 3), np.uint8))

    # ------------------------------------------------------------------------------------ images
    def analyze_image(self, image, *, threshold: float | None = None, whole_image: bool = False,
                      real_below: float | None = None) -> ImageResult:
        """Verdict for an image (path, bytes, PIL image or array). NO_FACE when no face is found,
        unless whole_image=True, which scores the whole image and says so. threshold / real_below replace the
        model's FAKE / REAL bounds (see band_for)."""
        rgb, band, s = self._load_and_score(image, threshold, whole_image, real_below)
        return self._image_result(rgb, s, band)

    def grad_cam(self, image, method: str = "gradcam", *, threshold: float | None = None,
                 whole_image: bool = False, real_below: float | None = None) -> CamResult:
        """CAM of the fake output on each face crop, pasted back onto the full image."""
        if method.lower() not in explain.CAM_METHODS:
            raise InputError(f"Unknown CAM method '{method}'. Choose one of: {', '.join(explain.CAM_METHODS)}.")
        method = method.lower()
        rgb, band, s = self._load_and_score(image, threshold, whole_image, real_below)
        target = self.config.label_names[self.config.fake_index]
        if not s.crops:
            return CamResult(method, target, self._image_result(rgb, s, band), (),
                             np.zeros(rgb.shape[:2], np.float32))
        t0 = time.perf_counter()
        x = self.network.preprocess(s.crops)
        net, lock = self.network.cam_network()
        with lock:  # hooks live on a private copy; one CAM at a time on it
            maps = explain.cam_maps(net, explain.get_module(net, self.network.cam_layer_name()), x,
                                    self.config.fake_index, method, flip=self.config.test_time_flip)
        faces = tuple(FaceCam(fb, box, float(p), explain.peak_xy(m, box), m)
                      for m, box, p, fb in zip(maps, s.boxes, s.probs, s.face_boxes))
        heatmap = explain.paste_maps(list(maps), s.boxes, rgb.shape)
        return CamResult(method, target, self._image_result(rgb, s, band, cam=_ms(t0)), faces, heatmap)

    def occlusion_map(self, image, grid: int = 8, baseline: str = "mean", *, face: int = 0,
                      threshold: float | None = None, whole_image: bool = False,
                      real_below: float | None = None) -> OcclusionResult:
        """Grid occlusion on one face crop (the largest by default): G x G signed probability changes."""
        if not explain.GRID_MIN <= int(grid) <= explain.GRID_MAX:
            raise InputError(f"Grid size must be between {explain.GRID_MIN} and {explain.GRID_MAX}, got {grid}.")
        if baseline not in explain.OCCLUSION_BASELINES:
            raise InputError(f"Unknown occlusion baseline '{baseline}'. Choose one of: "
                             f"{', '.join(explain.OCCLUSION_BASELINES)}.")
        rgb, band, s = self._load_and_score(image, threshold, whole_image, real_below)
        if not s.crops:
            raise InputError("No face detected, so there is no face crop to occlude.")
        if not 0 <= face < len(s.crops):
            raise InputError(f"Face index {face} out of range: {len(s.crops)} face(s) found.")
        t0 = time.perf_counter()
        x = self.network.preprocess([s.crops[face]])
        p0, changes = explain.occlusion_changes(self.network.probabilities, x, grid, baseline)
        result = self._image_result(rgb, s, band, occlusion=_ms(t0))
        return OcclusionResult(int(grid), baseline, p0, changes, tuple(s.boxes[face]), result, s.crops[face])

    # ------------------------------------------------------------------------------------ video
    def blank_probability(self) -> float:
        """The model's score of a blank (mid-grey) frame: one forward pass, cached."""
        if self._blank_p is None:
            size = self.config.crop.size
            self._blank_p = float(self.network.predict([np.full((size, size, 3), 127, np.uint8)])[0])
        return self._blank_p

    def analyze_video(self, path, frames: int = DEFAULT_FRAMES, *, aggregation: str = "mean",
                      threshold: float | None = None, keep_frames: bool = False, progress=None,
                      real_below: float | None = None) -> VideoResult:
        """Sample `frames` evenly spaced frames, score each face, aggregate, and rank frame importance.
        Frames are decoded and scored one at a time: of each, only a preview (FrameResult.preview) and its
        face crops (until classified) are kept. keep_frames=True also keeps every full frame (frame_images),
        for offline evaluation; memory then grows with frames x resolution."""
        if aggregation not in video.AGGREGATIONS:
            raise InputError(f"Unknown aggregation '{aggregation}'. Choose one of: {', '.join(video.AGGREGATIONS)}.")
        band = self.band_for(threshold, real_below)
        t0 = time.perf_counter()
        info, wanted, stream = media.iter_frames(path, int(frames))
        scan = _FrameScan(self, keep_frames)
        with contextlib.closing(stream):
            scan.run(stream, len(wanted), progress)
        probs, *extra = scan.classify()
        says = self.says(band, probs, extra)
        frame_faces, per_net = [], [[] for _ in says]  # per_net[n][frame]: network n's verdict
        for faces, boxes, start, qualities, reasons in scan.per_frame:
            fs = [Say(x.name, x.kind, x.band, x.probs[start:start + len(faces)]) for x in says]
            frame_faces.append(face_results(faces, boxes, fs, qualities, reasons))
            for n, x in enumerate(fs):
                per_net[n].append(judge(x.probs, list(reasons), x.band))
        verdicts = per_net[0]
        sampled = scan.sampled
        with_face = sum(v.probability is not None for v in verdicts)
        judged = sum(v.probability is not None and not v.reasons for v in verdicts)
        p_blank = self.blank_probability() if with_face else None
        video_p, loo, blank = video.importance(video_frames(verdicts), aggregation, p_blank)
        vv = judge_video(verdicts, video_p, band)
        video_verdicts = [vv] + [judge_video(vs, video.frames_probability(video_frames(vs), aggregation), x.band)
                                 for vs, x in zip(per_net[1:], says[1:])]
        label, kind, scores = combined_verdicts(says, video_verdicts)
        frames_said = [combined_verdicts(says, [vs[f] for vs in per_net]) for f in range(len(verdicts))]
        frame_results = tuple(
            FrameResult(index, ts, v.probability, ff, None if np.isnan(lo) else float(lo),
                        None if np.isnan(bl) else float(bl), preview=small, label=fl, reasons=v.reasons,
                        scores=fsc, manipulation=fk)
            for (index, ts, small), v, ff, lo, bl, (fl, fk, fsc) in zip(sampled, verdicts, frame_faces, loo, blank,
                                                                        frames_said))
        warnings = []
        if with_face and with_face < len(sampled):
            warnings.append(f"{len(sampled) - with_face} of {len(sampled)} sampled frames have no face and were "
                            "left out of the video score.")
        if not with_face:
            warnings.append("No face detected in any sampled frame.")
        if judged and judged < with_face:
            warnings.append(f"{with_face - judged} of {with_face} frames with a face failed a quality gate "
                            f"({', '.join(merged_reasons(v.reasons for v in verdicts))}) and were left out of "
                            "the video score.")
        warnings.extend(_gate_warning(vv.reasons))
        return VideoResult(
            label=label, fake_probability=video_p, threshold=band.fake_from, scores=scores, manipulation=kind,
            aggregation=aggregation, frames=frame_results, frames_sampled=len(sampled),
            frames_with_face=with_face, blank_frame_probability=p_blank, fps=round(info.fps, 3),
            duration_s=round(info.duration_s, 3), frame_count=info.frame_count, width=info.width,
            height=info.height, timings_ms=dict(scan.ms, total=_ms(t0)), real_below=band.real_below,
            frames_judged=judged, reasons=vv.reasons,
            frame_images=tuple(scan.full) if keep_frames else (), **self.provenance.fields(*warnings))

    def analyze(self, path, **kw) -> ImageResult | VideoResult:
        """Image or video, by file extension."""
        kind = media.media_kind(path)
        if kind == "video":
            return self.analyze_video(path, **{k: v for k, v in kw.items()
                                               if k in ("frames", "aggregation", "threshold", "real_below")})
        if kind == "image":
            return self.analyze_image(path, **{k: v for k, v in kw.items()
                                               if k in ("threshold", "whole_image", "real_below")})
        raise InputError(media.unsupported_reason(path))


# Crops are classified in chunks of this many as frames stream in (a multiple of the network's batch, so the
# batches, and the probabilities, are those of one call on all crops); only the probabilities are kept.
_CLASSIFY_CHUNK = 4 * DEFAULT_BATCH


class _FrameScan:
    """One pass over a video's sampled frames: faces, crops and a preview per frame, full frames dropped."""

    def __init__(self, det: Detector, keep_frames: bool):
        self.det, self.keep_frames = det, keep_frames
        self.sampled: list[tuple[int, float, np.ndarray]] = []  # (index, timestamp, preview)
        # (faces, crop boxes, first crop's number, FaceQuality of each, gates each failed)
        self.per_frame: list[tuple[tuple[Face, ...], list, int, tuple, tuple]] = []
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
            faces, crops, boxes, qualities, reasons = self.det._find(fr.rgb)
            self.sampled.append((fr.index, fr.timestamp_s, media.preview(fr.rgb)))
            if self.keep_frames:
                self.full.append(fr.rgb)
            self.ms["face_detection"] += _ms(t)
            self.per_frame.append((faces, boxes, self.n_crops, qualities, reasons))
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
        self.probs.append([m.network.predict(self.pending[:n]) for m in self.det.members])
        del self.pending[:n]
        self.ms["classification"] += _ms(t)

    def classify(self) -> list[np.ndarray]:
        """Each network's probabilities of all crops, in order."""
        self._classify(len(self.pending))
        return [np.concatenate(chunks) for chunks in zip(*self.probs)] if self.probs else \
            [np.zeros(0) for _ in self.det.members]


def load_detector(source: str | os.PathLike | None = None, *, face_detector: str | FaceDetector | None = None,
                  device: str | None = None) -> Detector:
    """Load a detector: a Hub repo id[@revision], a local folder, or (default) $DEEPFAKE_MODEL or the
    bundled model. face_detector: a FaceDetector, "yunet" (default), "haar", or a YuNet ONNX path."""
    src = resolve_source(source)
    network = Network.from_folder(src.folder, device=device)
    extra, warnings = load_members(src.folder, network.config.networks, device)
    fd = face_detector if isinstance(face_detector, FaceDetector) else load_face_detector(face_detector)
    return Detector(network, fd, src.model_id, src.revision, src.warnings + warnings, src.folder, extra)
