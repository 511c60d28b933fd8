"""The label rule: each face's band or failed quality gates, and an image's or frame's verdict over its faces.

A face that fails a quality gate is UNCERTAIN with the gates as reasons, whatever its probability. An image or
frame is judged on the faces that pass: its probability is their maximum and its label that probability's
band. When no face passes, the probability is the maximum over all faces (shown, not judged) and the label is
UNCERTAIN with every failed gate as a reason; with no face at all it is NO_FACE.

A detector with several networks (one per kind of fake) labels each face, image, frame and video by each
network's band, then combines them (`combine`): FAKE if any network says FAKE, REAL if every network says REAL,
UNCERTAIN otherwise; the likely kind of fake is that of the network furthest into its FAKE band.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .band import FAKE, NO_FACE, REAL, UNCERTAIN, Band
from .quality import REASONS


@dataclass(frozen=True)
class Verdict:
    label: str
    probability: float | None
    reasons: tuple[str, ...]  # set only when no face passed the gates
    passing: tuple[bool, ...]  # per face: passed every gate


def face_label(p: float, reasons: tuple[str, ...], band: Band) -> str:
    return UNCERTAIN if reasons else band.label(p)


def merged_reasons(reason_lists) -> tuple[str, ...]:
    """Every reason of any list, once each, in deepfake.quality.REASONS order."""
    seen = {r for rs in reason_lists for r in rs}
    return tuple(r for r in REASONS if r in seen)


def judge(probs, reasons: list[tuple[str, ...]], band: Band) -> Verdict:
    """The verdict over one image's (or frame's) faces, from each face's probability and failed gates."""
    probs = np.asarray(probs, dtype=np.float64)
    passing = tuple(not r for r in reasons)
    if not len(probs):
        return Verdict(NO_FACE, None, (), ())
    ok = np.asarray(passing, dtype=bool)
    if ok.any():
        p = float(probs[ok].max())
        return Verdict(band.label(p), p, (), passing)
    return Verdict(UNCERTAIN, float(probs.max()), merged_reasons(reasons), passing)


def video_frames(verdicts) -> list[float | None]:
    """Per frame, its probability where it makes the video score, else None: the frames judged (a face passed the
    gates), or every frame with a face when none was judged (the video is then UNCERTAIN)."""
    judged = any(v.probability is not None and not v.reasons for v in verdicts)
    return [v.probability if (not v.reasons or not judged) else None for v in verdicts]


def judge_video(verdicts, probability: float | None, band: Band) -> Verdict:
    """A video's verdict from its frames' verdicts and its aggregated probability (over video_frames): the band
    of that probability when a frame was judged; UNCERTAIN with every failed gate when frames have faces but none
    passed; NO_FACE without a face."""
    passing = tuple(v.probability is not None and not v.reasons for v in verdicts)
    if any(passing):
        return Verdict(band.label(probability), probability, (), passing)
    if any(v.probability is not None for v in verdicts):
        return Verdict(UNCERTAIN, probability, merged_reasons(v.reasons for v in verdicts), passing)
    return Verdict(NO_FACE, None, (), passing)


def fake_margin(p: float | None, band: Band) -> float:
    """How far p lies into the band's FAKE range, as a share of that range (0 at the bound, 1 at p = 1)."""
    if p is None:
        return float("-inf")
    return (p - band.fake_from) / max(1.0 - band.fake_from, 1e-9)


def combine(labels, probs, bands, kinds) -> tuple[str, str | None]:
    """(label, kind of fake or None) from each network's label, probability, band and kind."""
    labels = list(labels)
    if FAKE in labels:
        fakes = [i for i, lab in enumerate(labels) if lab == FAKE]
        best = max(fakes, key=lambda i: fake_margin(probs[i], bands[i]))
        return FAKE, kinds[best]
    if all(lab == REAL for lab in labels):
        return REAL, None
    if all(lab == NO_FACE for lab in labels):
        return NO_FACE, None
    return UNCERTAIN, None
