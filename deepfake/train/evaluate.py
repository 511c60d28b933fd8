"""Evaluate a detector on labelled folders through the inference path (Detector.analyze_*).

Metrics at image/frame level and at video level, ROC and reliability plots, a robustness table (JPEG quality 50,
half- and quarter-size downscale), AUC by face size, the split into sources seen in training and sources held
out of it (cross-source), and the training run's learning curve."""
from __future__ import annotations

import csv
import json
import re
import time
from pathlib import Path

import cv2
import numpy as np

from .. import media
from ..verdict import Verdict, judge_video, video_frames
from . import data

CONDITIONS = ("clean", "jpeg50", "half", "quarter")
# face side in pixels of the input as analysed: small (< 80), medium (80-160), large (> 160)
FACE_SIZE_BINS = (("<80", 0, 80), ("80-160", 80, 160), (">160", 160, 10 ** 9))
NO_FACE_POLICY = ("items where no face is found are scored on the whole image (the detector's "
                  "whole_image fallback) and counted in no_face; video frames without a face are left out "
                  "of the video score, as at inference")


def degrade(rgb: np.ndarray, condition: str) -> np.ndarray:
    if condition == "clean":
        return rgb
    if condition == "jpeg50":
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 50])
        return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    if condition in ("half", "quarter"):
        k = 2 if condition == "half" else 4
        h, w = rgb.shape[:2]
        return cv2.resize(rgb, (max(1, w // k), max(1, h // k)), interpolation=cv2.INTER_AREA)
    raise ValueError(condition)


def face_px(faces) -> float | None:
    """Side in pixels of the largest face scored (None when none was found)."""
    return float(max(max(f.box[2], f.box[3]) for f in faces)) if faces else None


def size_bin(px: float | None) -> str | None:
    if px is None:
        return None
    return next(name for name, lo, hi in FACE_SIZE_BINS if lo <= px < hi)


def binary_metrics(labels, scores, threshold: float) -> dict:
    """ROC AUC, accuracy, precision, recall, F1 and confusion matrix (scikit-learn); fake = positive,
    predicted fake when score >= threshold (as label_for at inference)."""
    from sklearn.metrics import (accuracy_score, confusion_matrix, f1_score, precision_score, recall_score,
                                 roc_auc_score)

    y = np.asarray(labels, int)
    p = np.asarray(scores, float)
    pred = (p >= threshold).astype(int)
    both = len(np.unique(y)) == 2
    return {
        "n": int(len(y)), "n_real": int((y == 0).sum()), "n_fake": int((y == 1).sum()),
        "auc": float(roc_auc_score(y, p)) if both else None,
        "accuracy": float(accuracy_score(y, pred)) if len(y) else None,
        "precision": float(precision_score(y, pred, zero_division=0)),
        "recall": float(recall_score(y, pred, zero_division=0)),
        "f1": float(f1_score(y, pred, zero_division=0)),
        "confusion_matrix": confusion_matrix(y, pred, labels=[0, 1]).tolist(),  # rows true real/fake
    }


def _select(items: list[data.Item], max_items: int | None) -> list[data.Item]:
    if not max_items:
        return items
    out = []
    for s in sorted({it.source for it in items}):
        sub = [it for it in items if it.source == s]
        for label in (0, 1):
            lab = [it for it in sub if it.label == label]
            if len(lab) > max_items // 2:
                idx = np.linspace(0, len(lab) - 1, max(1, max_items // 2)).round().astype(int)
                lab = [lab[i] for i in sorted(set(idx))]
            out += lab
    return out


def score_items(det, items: list[data.Item], frames: int, threshold: float, conditions=CONDITIONS,
                log=print) -> list[dict]:
    """One row per (item or frame, condition): source, level, path, label, score, no_face."""
    rows = []
    t0 = time.time()
    for k, it in enumerate(items):
        base = {"source": it.source, "path": str(it.path), "label": it.label, "group": it.group}
        if it.kind == "image":
            rgb = media.load_image(it.path)
            for c in conditions:
                r = det.analyze_image(degrade(rgb, c), threshold=threshold, whole_image=True)
                rows.append(dict(base, level="image", condition=c, frame=-1, score=r.fake_probability,
                                 no_face=bool(r.scored_whole_image), face_px=face_px(r.faces), verdict=r.label,
                                 gated=bool(r.reasons)))
        else:
            # the sampled frames are kept, so the degraded conditions score them without decoding again
            vr = det.analyze_video(it.path, frames=frames, threshold=threshold, keep_frames=True)
            sampled = [(f.index, rgb) for f, rgb in zip(vr.frames, vr.frame_images)]
            for c in conditions:
                if c == "clean":
                    fps = [(f.index, f.fake_probability, face_px(f.faces), f.label, bool(f.reasons))
                           for f in vr.frames]
                    vp, verdict, gated = vr.fake_probability, vr.label, bool(vr.reasons)
                else:
                    fps, verdicts = [], []
                    for idx, rgb in sampled:
                        r = det.analyze_image(degrade(rgb, c), threshold=threshold)
                        fps.append((idx, r.fake_probability, face_px(r.faces), r.label, bool(r.reasons)))
                        verdicts.append(Verdict(r.label, r.fake_probability, r.reasons, ()))
                    # the 'mean' aggregation of analyze_video over the frames it scores, and its label rule
                    got = [p for p in video_frames(verdicts) if p is not None]
                    vp = float(np.mean(got)) if got else None
                    vv = judge_video(verdicts, vp, det.band_for(threshold))
                    verdict, gated = vv.label, bool(vv.reasons)
                for idx, p, px, lab, g in fps:
                    if p is not None:
                        rows.append(dict(base, level="frame", condition=c, frame=idx, score=p, no_face=False,
                                         face_px=px, verdict=lab, gated=g))
                sizes = [px for _, _, px, _, _ in fps if px is not None]
                no_face = vp is None
                if no_face:  # no face in any frame: score the middle frame whole (the whole-image fallback)
                    mid = degrade(sampled[len(sampled) // 2][1], c)
                    whole = det.analyze_image(mid, threshold=threshold, whole_image=True)
                    vp, verdict, gated = whole.fake_probability, whole.label, False
                rows.append(dict(base, level="video", condition=c, frame=-1, score=vp, no_face=no_face,
                                 face_px=float(np.median(sizes)) if sizes else None, verdict=verdict, gated=gated))
        if log and (k + 1) % 100 == 0:
            log(f"  scored {k + 1}/{len(items)} items ({time.time() - t0:.0f}s)")
    return rows


def summarise(rows: list[dict], threshold: float) -> dict:
    """metrics[condition][level][source or 'all'] = binary_metrics + no_face count."""
    out = {}
    for c in sorted({r["condition"] for r in rows}, key=CONDITIONS.index):
        for level in ("image", "frame", "video"):
            sel = [r for r in rows if r["condition"] == c and r["level"] == level]
            if not sel:
                continue
            groups = {s: [r for r in sel if r["source"] == s] for s in sorted({r["source"] for r in sel})}
            if len(groups) > 1:
                groups["all"] = sel
            for s, rs in groups.items():
                m = binary_metrics([r["label"] for r in rs], [r["score"] for r in rs], threshold)
                m["no_face"] = int(sum(r["no_face"] for r in rs))
                out.setdefault(c, {}).setdefault(level, {})[s] = m
    return out


def band_shares(rows: list[dict]) -> dict:
    """Where the clean items land, per level (image, video) and source: {level: {source: {"real": {FAKE,
    UNCERTAIN, REAL, gated}, "fake": {...}, "n_real", "n_fake"}}} as shares of that class; gated = UNCERTAIN
    because no face passed the quality gates."""
    out = {}
    for level in ("image", "video"):
        sel = [r for r in rows if r["condition"] == "clean" and r["level"] == level and r.get("verdict")]
        for s in sorted({r["source"] for r in sel}) + (["all"] if sel else []):
            rs = [r for r in sel if s == "all" or r["source"] == s]
            entry = {}
            for name, cls in (("real", 0), ("fake", 1)):
                c = [r for r in rs if r["label"] == cls]
                entry[f"n_{name}"] = len(c)
                entry[name] = ({b: sum(r["verdict"] == b for r in c) / len(c) for b in ("FAKE", "UNCERTAIN", "REAL")}
                               | {"gated": sum(bool(r.get("gated")) for r in c) / len(c)}) if c else None
            out.setdefault(level, {})[s] = entry
    return out


def band_table(shares: dict) -> str:
    lines = ["", "labels of clean items (share of each class): real -> FAKE / UNCERTAIN (of it: gated) / REAL; "
                 "fake -> FAKE / UNCERTAIN (gated) / REAL"]
    for level, per in shares.items():
        for s, e in per.items():
            cells = []
            for name in ("real", "fake"):
                v = e[name]
                cells.append(f"{name} {e[f'n_{name}']:4d}: " + ("-" if v is None else
                             f"{v['FAKE']:.3f} / {v['UNCERTAIN']:.3f} ({v['gated']:.3f}) / {v['REAL']:.3f}"))
            lines.append(f"  {level:6} {s:12} " + "   ".join(cells))
    return "\n".join(lines)


SIZE_CONDITIONS = ("clean", "half", "quarter")  # sizes as uploaded and as downscaled: no JPEG mixed in


def by_face_size(rows: list[dict]) -> dict:
    """AUC per face-size bin (FACE_SIZE_BINS) of image and frame rows of the clean and downscaled conditions
    (a face is binned by its side as analysed): {level: {source or 'all': {bin: {"n", "auc"}}}}; a bin holding
    one class only has auc None."""
    from sklearn.metrics import roc_auc_score

    out = {}
    for level in ("image", "frame"):
        sel = [r for r in rows if r["condition"] in SIZE_CONDITIONS and r["level"] == level and r.get("face_px")]
        if not sel:
            continue
        for s in sorted({r["source"] for r in sel}) + ["all"]:
            rs = [r for r in sel if s == "all" or r["source"] == s]
            for name, _, _ in FACE_SIZE_BINS:
                b = [r for r in rs if size_bin(r["face_px"]) == name]
                y = [r["label"] for r in b]
                auc = float(roc_auc_score(y, [r["score"] for r in b])) if len(set(y)) == 2 else None
                out.setdefault(level, {}).setdefault(s, {})[name] = {"n": len(b), "auc": auc}
    return out


def source_auc(metrics: dict, source: str, condition: str = "clean") -> float | None:
    """A source's AUC at its own unit: video level for video sources, image level for image sources."""
    per = metrics.get(condition, {})
    m = per.get("video", {}).get(source) or per.get("image", {}).get(source)
    return None if m is None else m["auc"]


_DATA_SOURCE = re.compile(r"(\w+): \d+ real / \d+ fake items")


def trained_sources(config_raw: dict) -> set[str] | None:
    """Sources whose fakes a detector was trained on, the complement of cross-source: recorded by training
    (split.fake_train_sources; none for self-blends only), else every training source (split.train_sources, or
    the config's data summary "ciplab: 634 real / 590 fake items; ..."); None when nothing says."""
    cfg = config_raw.get("deepfake", {})
    if cfg.get("split", {}).get("fake_train_sources") is not None:
        return set(cfg["split"]["fake_train_sources"])
    if cfg.get("split", {}).get("train_sources") is not None:
        return set(cfg["split"]["train_sources"])
    found = set(_DATA_SOURCE.findall(str(cfg.get("data", ""))))
    return found or None


def cross_source_table(metrics: dict, cross_sources) -> dict:
    """{"in_source": {source: auc}, "cross_source": {...}, and the mean of each} over clean rows."""
    sources = sorted({s for lv in ("image", "video") for s in metrics.get("clean", {}).get(lv, {}) if s != "all"})
    out = {"in_source": {}, "cross_source": {}}
    for s in sources:
        auc = source_auc(metrics, s)
        if auc is not None:
            out["cross_source" if s in set(cross_sources) else "in_source"][s] = auc
    for k in ("in_source", "cross_source"):
        out[f"{k}_mean"] = float(np.mean(list(out[k].values()))) if out[k] else None
    return out


def learning_curve(config_raw: dict) -> list[dict]:
    """The training run's validation AUC after each epoch (steps, in-source and cross-source means), as
    training recorded it in config.json."""
    return list(config_raw.get("deepfake", {}).get("training", {}).get("learning_curve", []))


def _fmt(v) -> str:
    return "  -  " if v is None else f"{v:.3f}"


def table(metrics: dict) -> str:
    lines = [f"{'level':6} {'source':12} {'n':>5} {'noface':>6} {'AUC':>6} {'acc':>6} {'prec':>6} {'rec':>6} "
             f"{'F1':>6}  {'AUC jpeg50':>10} {'AUC half':>8} {'AUC quarter':>11}"]
    clean = metrics.get("clean", {})
    for level, per in clean.items():
        for s, m in per.items():
            j = metrics.get("jpeg50", {}).get(level, {}).get(s, {}).get("auc")
            h = metrics.get("half", {}).get(level, {}).get(s, {}).get("auc")
            q = metrics.get("quarter", {}).get(level, {}).get(s, {}).get("auc")
            lines.append(f"{level:6} {s:12} {m['n']:5d} {m['no_face']:6d} {_fmt(m['auc']):>6} {_fmt(m['accuracy']):>6} "
                         f"{_fmt(m['precision']):>6} {_fmt(m['recall']):>6} {_fmt(m['f1']):>6}  {_fmt(j):>10} "
                         f"{_fmt(h):>8} {_fmt(q):>11}")
    return "\n".join(lines)


def extra_tables(cross: dict, sizes: dict, curve: list[dict]) -> str:
    """Cross-source split, AUC by face size and the learning curve, as printed text."""
    lines = ["", "sources the model never trained on (cross-source) vs trained on (in-source), clean AUC:"]
    for k in ("in_source", "cross_source"):
        lines.append(f"  {k:13} mean {_fmt(cross[f'{k}_mean'])}  " + "  ".join(
            f"{s} {_fmt(a)}" for s, a in cross[k].items()))
    lines += ["", "AUC by face side as analysed (clean, half and quarter size; n in brackets):"]
    for level, per in sizes.items():
        for s, bins in per.items():
            lines.append(f"  {level:6} {s:12} " + "  ".join(
                f"{b} {_fmt(v['auc'])} ({v['n']})" for b, v in bins.items()))
    if curve:
        lines += ["", "learning curve (validation after each epoch):", "  steps  in-source  cross-source"]
        lines += [f"  {c['steps']:5d}  {_fmt(c.get('in_source'))}      {_fmt(c.get('cross_source'))}" for c in curve]
    return "\n".join(lines)


def plots(rows: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import roc_curve

    clean = [r for r in rows if r["condition"] == "clean"]
    keys = sorted({(r["level"], r["source"]) for r in clean})
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for level, s in keys:
        rs = [r for r in clean if r["level"] == level and r["source"] == s]
        y = [r["label"] for r in rs]
        if len(set(y)) < 2:
            continue
        fpr, tpr, _ = roc_curve(y, [r["score"] for r in rs])
        ax.plot(fpr, tpr, label=f"{s} ({level}, n={len(rs)})")
    ax.plot([0, 1], [0, 1], "k:", lw=1)
    ax.set(xlabel="false positive rate (real called fake)", ylabel="true positive rate (fakes caught)", title="ROC")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(out / "roc.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5.5, 5))
    for level in ("image", "frame", "video"):
        rs = [r for r in clean if r["level"] == level]
        if len({r["label"] for r in rs}) < 2:
            continue
        y = np.array([r["label"] for r in rs])
        p = np.array([r["score"] for r in rs])
        frac, conf = calibration_curve(y, p, n_bins=10 if len(rs) >= 100 else 5, strategy="quantile")
        ax.plot(conf, frac, "o-", label=f"{level} (n={len(rs)})")
    ax.plot([0, 1], [0, 1], "k:", lw=1)
    ax.set(xlabel="predicted fake probability", ylabel="observed share of fakes", title="Reliability (clean)",
           xlim=(0, 1), ylim=(0, 1))
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(out / "reliability.png", dpi=110)
    plt.close(fig)


def run_evaluate(args) -> int:
    import torch

    from ..detector import load_detector

    torch.set_num_threads(max(1, int(args.threads)))
    det = load_detector(str(args.model), face_detector=data.face_detector_spec(args.face_detector))
    # the split the model was trained with, unless --seed / --heldout-fraction say otherwise
    args.seed, args.heldout_fraction = data.model_split(det.config.raw, args.seed, args.heldout_fraction)
    threshold = det.threshold if args.threshold is None else float(args.threshold)
    if args.subset == "all":
        specs = [*args.dirs, *args.holdout]  # make_splits' DIR#real rule: that source's fakes are left out
        items = data.without_fakes_of_reals_only(
            [it for d in specs for it in data.list_items(data.folder_of(d))], specs)
    else:
        items = data.make_splits(args.dirs, args.holdout, args.heldout_fraction, args.seed)[args.subset]
    items = _select(items, args.max_items)
    name = Path(str(args.model)).name
    out = Path(args.out) if args.out else Path(__file__).resolve().parents[2] / "runs" / f"eval-{name}"
    out.mkdir(parents=True, exist_ok=True)
    conditions = ("clean",) if args.no_robustness else CONDITIONS
    print(f"evaluating {det.model_id} ({det.revision}) on {len(items)} items ({args.subset}), threshold {threshold:.4f}, "
          f"face detector {det.face_detector.name}", flush=True)
    for w in det.load_warnings:
        print(f"warning: {w}")
    t0 = time.time()
    rows = score_items(det, items, args.frames, threshold, conditions)
    metrics = summarise(rows, threshold)
    trained = trained_sources(det.config.raw)
    evaluated = {r["source"] for r in rows}
    cross_sources = (evaluated - trained if trained is not None
                     else set(det.config.raw.get("deepfake", {}).get("split", {}).get("heldout_sources", [])))
    cross = cross_source_table(metrics, cross_sources)
    sizes = by_face_size(rows)
    bands = band_shares(rows)
    curve = learning_curve(det.config.raw)
    report = {"model": det.model_id, "revision": det.revision, "threshold": threshold, "subset": args.subset,
              "dirs": [str(d) for d in args.dirs], "holdout": [str(d) for d in args.holdout],
              "seed": args.seed, "heldout_fraction": args.heldout_fraction, "frames_per_video": args.frames,
              "face_detector": det.face_detector.name, "no_face_policy": NO_FACE_POLICY,
              "positive_class": "fake", "seconds": round(time.time() - t0, 1), "metrics": metrics,
              "cross_source": cross, "by_face_size": sizes, "learning_curve": curve,
              "band": det.band_for(threshold).to_dict(), "band_shares": bands}
    (out / "metrics.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    with open(out / "scores.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["condition", "level", "source", "group", "path", "frame", "label",
                                           "score", "no_face", "face_px", "verdict", "gated"])
        w.writeheader()
        for r in rows:
            w.writerow({k: r[k] for k in w.fieldnames})
    plots(rows, out)
    print(table(metrics))
    print(extra_tables(cross, sizes, curve))
    print(band_table(bands))
    print(f"no-face policy: {NO_FACE_POLICY}")
    print(f"wrote {out / 'metrics.json'}, scores.csv, roc.png, reliability.png ({time.time() - t0:.0f}s)")
    return 0

