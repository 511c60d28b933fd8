"""Measure the face quality gates: where the detector's validation AUC falls below usefulness, per face measure.

Validation faces are binned by size, sharpness, brightness and yaw, and the ROC AUC of each bin computed. Hard
cases are rare in validation data, so faces are also scored degraded: downscaled (face side 26-90 px),
Gaussian-blurred and darkened. Each measure is binned over the clean faces plus its own degradation (side: the
downscaled copies; sharpness: the blurred; brightness: the darkened; yaw: clean faces only, a head cannot be
turned synthetically). Writes gates.json and README.md (docs/gates/ by default).

    python -m deepfake.train.gates DIR [DIR ...] --holdout DIR [DIR ...] [--model models/deepfake-lite0-sbi]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from .. import media, quality
from ..crop import crop_face
from ..errors import clear_errors
from ..faces import Face
from . import data

DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "models" / "deepfake-lite0-sbi"
DEFAULT_OUT = Path(__file__).resolve().parents[2] / "docs" / "gates"
# Below this ROC AUC the score no longer ranks fakes above reals well enough to act on (0.5 is chance; the bundled
# model's clean validation AUC is about 0.78).
USEFUL_AUC = 0.65
# A bin is rated only with at least this many faces of each class (in sources holding both classes there).
MIN_PER_CLASS = 20
# Degradations. Downscale: the image is shrunk so the face's side is this many pixels (inside the side bins
# below) and cropped from there, as inference would. Blur: Gaussian sigma in pixels of the network's crop
# (e.g. 260 px, the face about 200 px of it). Dark: v' = 255 s (v/255)^g for each (s, g): under-exposure.
DOWNSCALE_SIDES = (26, 30, 36, 44, 56, 72, 90)
BLUR_SIGMAS = (1.0, 2.0, 3.0, 4.0, 5.0, 6.5)
DARKEN = ((0.6, 1.2), (0.4, 1.4), (0.25, 1.6), (0.15, 1.8), (0.11, 1.9), (0.08, 2.0))
FAMILIES = {"side_px": ("clean", "small"), "sharpness": ("clean", "blur"), "brightness": ("clean", "dark"),
            "yaw": ("clean",)}
# Gate direction: a face fails a "min" gate below its threshold and a "max" gate above it.
DIRECTION = {"side_px": "min", "sharpness": "min", "brightness": "min", "yaw": "max"}
GATE_FIELD = {"side_px": "min_side_px", "sharpness": "min_sharpness", "brightness": "min_brightness",
              "yaw": "max_yaw"}
# Fixed bin edges (finite, so that a gate is always a number); the last edge is beyond any value.
EDGES = {
    "side_px": (0, 24, 28, 32, 40, 48, 64, 80, 100, 128, 160, 224, 100000),
    "sharpness": (0, 5, 10, 15, 20, 30, 40, 60, 80, 120, 160, 240, 320, 640, 10 ** 7),
    "brightness": (0, 5, 10, 15, 20, 30, 40, 50, 60, 80, 100, 130, 256),
    "yaw": (0, 0.1, 0.2, 0.3, 0.45, 0.6, 0.8, 1.0, 1.3, 10.0),
}
PREDICT_BATCH = 32


def rule_text(level: float = USEFUL_AUC, min_per_class: int = MIN_PER_CLASS) -> str:
    """The threshold rule of bin_table + choose_gate, in words (stated in gates.json and the README)."""
    return ("per measure, faces are binned (fixed edges); a bin's AUC is the ROC AUC of the network's fake "
            "probability over the (real, fake) pairs of the same source (each source's AUC weighted by its "
            "pairs), so that a bin is not rated on which sources it happens to hold; a bin is rated with at "
            f"least {min_per_class} faces of each class in such sources. Walking from the best-quality bin "
            f"(largest side, sharpness, brightness; smallest yaw) towards worse, the gate is the edge where the "
            f"first rated bin with an AUC under {level} begins, so every rated bin a face passing the gate can "
            f"fall in has an AUC of at least {level}; when no rated bin is under {level}, the gate is the outer "
            "edge of the worst rated bin (the end of the range measured)")


# ------------------------------------------------------------------------------------ binning (pure)
def within_source_auc(labels, scores, sources) -> tuple[float | None, int, int]:
    """(AUC over same-source (real, fake) pairs, reals and fakes in sources with both classes). The mean of
    each source's ROC AUC weighted by its n_real * n_fake; None when no source has both classes."""
    from sklearn.metrics import roc_auc_score

    y, p, s = np.asarray(labels), np.asarray(scores, float), np.asarray(sources)
    total = pairs = 0.0
    n_real = n_fake = 0
    for src in np.unique(s):
        m = s == src
        nf = int((y[m] == 1).sum())
        nr = int(m.sum()) - nf
        if nr and nf:
            total += roc_auc_score(y[m], p[m]) * nr * nf
            pairs += nr * nf
            n_real, n_fake = n_real + nr, n_fake + nf
    return (total / pairs if pairs else None), n_real, n_fake


def bin_table(values, labels, scores, edges, sources=None, min_per_class: int = MIN_PER_CLASS) -> list[dict]:
    """One row per bin [lo, hi): counts, the within-source AUC (None unless rated: min_per_class faces of each
    class in sources holding both) and the pooled AUC of all its faces (for reference; None unless rated). NaN
    values (a measure missing) are left out; sources None: all faces one source."""
    from sklearn.metrics import roc_auc_score

    v, y, p = np.asarray(values, float), np.asarray(labels), np.asarray(scores, float)
    s = np.zeros(len(v), int) if sources is None else np.asarray(sources)
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (v >= lo) & (v < hi)
        n_fake = int((y[m] == 1).sum())
        auc, paired_real, paired_fake = within_source_auc(y[m], p[m], s[m])
        ok = min(paired_real, paired_fake) >= min_per_class
        rows.append({"lo": float(lo), "hi": float(hi), "n": int(m.sum()), "n_real": int(m.sum()) - n_fake,
                     "n_fake": n_fake, "auc": round(float(auc), 4) if ok else None,
                     "auc_pooled": round(float(roc_auc_score(y[m], p[m])), 4) if ok else None})
    return rows


def choose_gate(table: list[dict], direction: str, level: float = USEFUL_AUC) -> float:
    """The gate of rule_text() on a bin_table: direction "min" (fail below) or "max" (fail above)."""
    if direction not in ("min", "max"):
        raise ValueError(f"direction must be 'min' or 'max', got {direction!r}")
    rated = [r for r in table if r["auc"] is not None]
    if not rated:
        raise ValueError("no bin has enough faces of both classes to rate")
    best_first = rated[::-1] if direction == "min" else rated
    for r in best_first:
        if r["auc"] < level:
            return r["hi"] if direction == "min" else r["lo"]
    return best_first[-1]["lo"] if direction == "min" else best_first[-1]["hi"]


def measure_gates(rows: dict, level: float = USEFUL_AUC, min_per_class: int = MIN_PER_CLASS,
                  edges: dict = EDGES) -> dict:
    """{measure: {"direction", "families", "threshold", "table"}} from rows: a dict of equal-length arrays
    "family", "label", "score", optionally "source", and one per measure (NaN where missing). threshold is None
    for a measure none of whose bins could be rated (e.g. yaw without landmarks)."""
    out = {}
    fam = np.asarray(rows["family"])
    src = np.asarray(rows["source"]) if "source" in rows else np.zeros(len(fam), int)
    for name, families in FAMILIES.items():
        m = np.isin(fam, families)
        table = bin_table(np.asarray(rows[name], float)[m], np.asarray(rows["label"])[m],
                          np.asarray(rows["score"])[m], edges[name], src[m], min_per_class)
        try:
            threshold = choose_gate(table, DIRECTION[name], level)
        except ValueError:
            threshold = None
        out[name] = {"direction": DIRECTION[name], "families": list(families), "threshold": threshold,
                     "table": table}
    return out


def level_table(rows: dict) -> list[dict]:
    """Within-source AUC of each degradation level over the same faces (those given degraded copies): a
    controlled comparison, with the median measures each level produced."""
    fam, lev, deg = rows["family"], rows["level"], rows["degraded"].astype(bool)
    out = []
    for family in ("clean", "small", "blur", "dark"):
        for level in sorted(set(lev[(fam == family) & deg].tolist())):
            m = (fam == family) & (lev == level) & deg
            auc, _, _ = within_source_auc(rows["label"][m], rows["score"][m], rows["source"][m])
            out.append({"family": family, "level": float(level), "n": int(m.sum()),
                        "auc": None if auc is None else round(float(auc), 4),
                        "median": {name: round(float(np.nanmedian(rows[name][m])), 2)
                                   for name in ("side_px", "sharpness", "brightness", "yaw")
                                   if np.isfinite(rows[name][m]).any()}})
    return out


def source_auc(rows: dict) -> dict:
    """Clean faces' ROC AUC per source, and within-source over all (the baseline the gates fall from)."""
    from sklearn.metrics import roc_auc_score

    m = rows["family"] == "clean"
    out = {}
    for s in sorted(set(rows["source"][m].tolist())) + ["all"]:
        sel = m & ((rows["source"] == s) if s != "all" else True)
        y, p = rows["label"][sel], rows["score"][sel]
        auc = within_source_auc(y, p, rows["source"][sel])[0] if s == "all" else (
            roc_auc_score(y, p) if len(set(y.tolist())) == 2 else None)
        out[s] = {"faces": int(sel.sum()), "real": int((y == 0).sum()), "fake": int((y == 1).sum()),
                  "auc": None if auc is None else round(float(auc), 4)}
    return out


# ------------------------------------------------------------------------------------ faces and copies
def _scaled_face(face: Face, k: float) -> Face:
    box = tuple(int(round(v * k)) for v in face.box)
    lm = None if face.landmarks is None else tuple((u * k, v * k) for u, v in face.landmarks)
    return Face(box, face.score, lm)


def darken(crop: np.ndarray, scale: float, gamma: float) -> np.ndarray:
    lut = np.clip(np.round(255.0 * scale * (np.arange(256) / 255.0) ** gamma), 0, 255).astype(np.uint8)
    return lut[crop]


def face_copies(rgb: np.ndarray, face: Face, crop: np.ndarray, recipe, degrade: bool = True
                ) -> list[tuple[str, float, Face, np.ndarray]]:
    """(family, level, face, crop) of the clean face and, with degrade, each degraded copy. Downscaled copies
    keep the clean face's box and landmarks, scaled: re-detecting would only drop the faces YuNet misses, which
    are NO_FACE at inference and never reach a gate. Blur and darkening are applied to the crop (as to the
    image around the face, then cropped)."""
    out = [("clean", 0.0, face, crop)]
    if not degrade:
        return out
    H, W = rgb.shape[:2]
    for side in DOWNSCALE_SIDES:
        k = side / face.side
        if k >= 1.0:
            continue
        small = cv2.resize(rgb, (max(1, round(W * k)), max(1, round(H * k))), interpolation=cv2.INTER_AREA)
        f = _scaled_face(face, k)
        out.append(("small", float(side), f, crop_face(small, f.box, recipe)[0]))
    for sigma in BLUR_SIGMAS:
        out.append(("blur", sigma, face, cv2.GaussianBlur(crop, (0, 0), sigma)))
    for scale, gamma in DARKEN:
        out.append(("dark", scale, face, darken(crop, scale, gamma)))
    return out


def cap_items(items: list[data.Item], max_items: int | None) -> list[data.Item]:
    """At most max_items per source (half real, half fake), evenly spaced through each sorted list."""
    if not max_items:
        return list(items)
    out = []
    for s in sorted({it.source for it in items}):
        for label in (0, 1):
            lab = [it for it in items if it.source == s and it.label == label]
            if len(lab) > max_items // 2:
                idx = sorted(set(np.linspace(0, len(lab) - 1, max(1, max_items // 2)).round().astype(int)))
                lab = [lab[i] for i in idx]
            out += lab
    return out


ROW_KEYS = ("source", "item", "label", "family", "level", "degraded", "score", "side_px", "sharpness",
            "brightness", "yaw")


def score_faces(det, items: list[data.Item], frames: int, degrade: set[int], log=print) -> tuple[dict, dict]:
    """(rows, counts): one row per face copy (ROW_KEYS, as arrays; yaw NaN without landmarks) of every face
    inference scores in each item (videos: `frames` sampled frames), degraded copies for the items whose index
    is in degrade; counts per source of items, faces and items without a face."""
    cols = {k: [] for k in ROW_KEYS}
    counts: dict[str, dict] = {}
    t0 = time.time()
    for k, it in enumerate(items):
        rgbs = [f.rgb for f in media.sample_frames(it.path, frames)[1]] if it.kind == "video" \
            else [media.load_image(it.path)]
        c = counts.setdefault(it.source, {"items": 0, "faces": 0, "no_face": 0, "degraded_items": 0})
        c["items"] += 1
        c["degraded_items"] += int(k in degrade)
        copies = []
        for rgb in rgbs:
            found = det._find(rgb)  # (faces, crops, crop boxes, ...): the faces and crops inference scores
            c["faces"] += len(found[0])
            for f, crop in zip(found[0], found[1]):
                copies += face_copies(rgb, f, crop, det.config.crop, k in degrade)
        c["no_face"] += int(not copies)
        if not copies:
            continue
        probs = det.network.predict([cr for _, _, _, cr in copies], PREDICT_BATCH)
        for (family, level, f, cr), p in zip(copies, probs):
            q = quality.measure(f, cr)
            row = (it.source, k, it.label, family, level, k in degrade, float(p), q.side_px, q.sharpness,
                   q.brightness, np.nan if q.yaw is None else q.yaw)
            for key, v in zip(ROW_KEYS, row):
                cols[key].append(v)
        if log and (k + 1) % 50 == 0:
            log(f"  {k + 1}/{len(items)} items, {len(cols['score'])} face copies scored ({time.time() - t0:.0f}s)")
    return {k: np.asarray(v) for k, v in cols.items()}, counts


# ------------------------------------------------------------------------------------ report
def _fmt(v) -> str:
    return "-" if v is None else f"{v:.3f}"


def _num(v: float | None) -> str:
    return "not measured (no rated bin)" if v is None else f"{v:g}"


def write_report(result: dict, out: Path) -> None:
    """gates.json (everything) and README.md (the gates, the rule, the command and the tables)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "gates.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    g = result["thresholds"]
    lines = [
        "# Face quality gates: where the detector stops being useful",
        "",
        f"Measured by `deepfake/train/gates.py` on the validation split of `{result['model']}`: "
        f"{result['faces_clean']} clean validation faces, and {result['face_copies']} face copies in all with the "
        f"degraded ones ({result['seconds']:.0f} s on {result['threads']} torch thread(s)). A face that fails a "
        "gate is labelled UNCERTAIN with the gate as its reason (`deepfake/quality.py`, `DEFAULT_GATES`).",
        "",
        "| gate | threshold | a face fails when |",
        "|---|---|---|",
        f"| `face_too_small` | min_side_px = {_num(g['min_side_px'])} | the longer side of its detected box (px of "
        "the analysed image) is below it |",
        f"| `blurred` | min_sharpness = {_num(g['min_sharpness'])} | the variance of the Laplacian of its grey "
        f"central region ({quality.MEASURE_SIDE} px crop, mean rescaled to {quality.MEAN_REF:g}) is below it |",
        f"| `too_dark` | min_brightness = {_num(g['min_brightness'])} | the mean luma (0-255) of that region is "
        "below it |",
        f"| `profile` | max_yaw = {_num(g['max_yaw'])} | its yaw (nose offset from the eye-mouth midline / half the "
        "inter-eye distance, about tan of the head's turn; YuNet landmarks only) is above it |",
        "",
        f"**Rule.** {result['rule']}.",
        "",
        f"**Faces.** {result['items_note']}",
        "",
        f"**Hard cases.** {result['degradations']}",
        "",
        "**Command** (from the repository root):",
        "",
        "```bash",
        result["command"],
        "```",
        "",
        "## Clean validation faces: ROC AUC per source",
        "",
        "| source | faces | real | fake | AUC |",
        "|---|---|---|---|---|",
    ]
    for s, r in result["clean_auc"].items():
        lines.append(f"| {s} | {r['faces']} | {r['real']} | {r['fake']} | {_fmt(r['auc'])} |")
    lines += ["", "(`all`: within-source AUC, the statistic of the bins below.)"]
    for name, m in result["measures"].items():
        lines += ["", f"## {name}: AUC per bin ({' + '.join(m['families'])} faces; gate: fail "
                  f"{'below' if m['direction'] == 'min' else 'above'} {_num(m['threshold'])})", "",
                  "| bin | faces | real | fake | AUC (within source) | AUC (pooled) |", "|---|---|---|---|---|---|"]
        for r in m["table"]:
            if r["n"]:
                lines.append(f"| [{r['lo']:g}, {r['hi']:g}) | {r['n']} | {r['n_real']} | {r['n_fake']} | "
                             f"{_fmt(r['auc'])} | {_fmt(r['auc_pooled'])} |")
    lines += ["", "## Within-source AUC per degradation level (the same faces at each level)", "",
              "| copy | level | faces | AUC | median side_px | median sharpness | median brightness |",
              "|---|---|---|---|---|---|---|"]
    for r in result["levels"]:
        md = r["median"]
        lines.append(f"| {r['family']} | {r['level']:g} | {r['n']} | {_fmt(r['auc'])} | {md.get('side_px', '-')} | "
                     f"{md.get('sharpness', '-')} | {md.get('brightness', '-')} |")
    lines += ["", "Levels: small = the face's side in px after downscaling; blur = Gaussian sigma in px of the "
              f"{result.get('crop_size', 224)} px crop; dark = the luma scale s (gamma g in gates.json).", ""]
    (out / "README.md").write_text("\n".join(lines), encoding="utf-8")


def _caps(n: int | None) -> str:
    return f"at most {n} per source, half real, half fake, evenly spaced" if n else "all"


def run_gates(args) -> int:
    import torch

    from ..detector import load_detector

    t0 = time.time()
    torch.set_num_threads(max(1, int(args.threads)))
    det = load_detector(str(args.model), face_detector=data.face_detector_spec(args.face_detector))
    seed, fraction = data.model_split(det.config.raw, None, None)
    items = data.make_splits(args.dirs, args.holdout, fraction, seed)["val"]
    chosen = cap_items(items, args.max_items)
    wanted = {id(it) for it in cap_items(chosen, args.max_degraded)}
    degrade = {k for k, it in enumerate(chosen) if id(it) in wanted}
    print(f"validation split: {len(items)} items (seed {seed}, held-out fraction {fraction}); scoring {len(chosen)}, "
          f"{len(degrade)} with degraded copies; face detector {det.face_detector.name}")
    rows, counts = score_faces(det, chosen, args.frames, degrade)
    if not len(rows["score"]):
        print("error: no face found in any validation item", file=sys.stderr)
        return 2
    if args.rows:
        np.savez_compressed(args.rows, **rows)
    measures = measure_gates(rows, args.level, args.min_per_class)
    thresholds = {GATE_FIELD[n]: m["threshold"] for n, m in measures.items()}
    command = " ".join(["python -m deepfake.train.gates", *map(str, args.dirs), "--holdout", *map(str, args.holdout),
                        "--model", str(args.model), "--out", str(args.out), "--frames", str(args.frames),
                        "--max-items", str(args.max_items or 0), "--max-degraded", str(args.max_degraded or 0),
                        "--threads", str(args.threads)])
    result = {
        "model": Path(str(args.model)).name,
        "command": command,
        "rule": rule_text(args.level, args.min_per_class),
        "usefulness_auc": args.level,
        "min_per_class": args.min_per_class,
        "thresholds": thresholds,
        "split": {"seed": seed, "heldout_fraction": fraction, "val_items": len(items), "scored_items": len(chosen),
                  "degraded_items": len(degrade)},
        "items_note": (f"{len(chosen)} of the {len(items)} validation items scored ({_caps(args.max_items)}), every "
                       f"face inference scores in each (videos: {args.frames} evenly spaced frames); degraded copies "
                       f"of the faces of {len(degrade)} of them ({_caps(args.max_degraded)})."),
        "counts": counts,
        "faces_clean": int((rows["family"] == "clean").sum()),
        "face_copies": int(len(rows["score"])),
        "degradations": ("each face of a degraded item is also scored downscaled so its side is "
                         f"{', '.join(map(str, DOWNSCALE_SIDES))} px (sizes below its own only), Gaussian-blurred "
                         f"with sigma {', '.join(f'{s:g}' for s in BLUR_SIGMAS)} px of the "
                         f"{det.config.crop.size} px crop, and darkened "
                         "to v' = 255 s (v/255)^g with (s, g) = " + ", ".join(f"({s}, {g})" for s, g in DARKEN) + "."),
        "darken": [list(sg) for sg in DARKEN],
        "clean_auc": source_auc(rows),
        "measures": measures,
        "levels": level_table(rows),
        "crop_size": det.config.crop.size,
        "threads": int(args.threads),
        "seconds": round(time.time() - t0, 1),
    }
    write_report(result, Path(args.out))
    print(json.dumps(thresholds))
    print(f"wrote {Path(args.out) / 'gates.json'} and README.md ({time.time() - t0:.0f}s)")
    return 0


DESCRIPTION = ("Bin validation faces (and degraded copies) by size, sharpness, brightness and yaw; each gate is "
               "where the detector's ROC AUC falls below usefulness. Writes gates.json and README.md.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dirs", nargs="+", type=Path, metavar="DIR", help="the training folders (to rebuild the split)")
    p.add_argument("--holdout", nargs="*", type=Path, default=[], metavar="DIR",
                   help="folders held apart entirely, as in training (their validation half is used)")
    p.add_argument("--model", default=str(DEFAULT_MODEL), metavar="MODEL_DIR", help="detector folder or Hub repo id")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="DIR", help="where gates.json and README.md go")
    p.add_argument("--frames", type=int, default=8, help="frames sampled per validation video (default 8)")
    p.add_argument("--max-items", type=int, default=None, help="score at most N validation items per source")
    p.add_argument("--max-degraded", type=int, default=400,
                   help="of those, give at most N per source degraded copies (default 400; 0: all)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--level", type=float, default=USEFUL_AUC, help=f"usefulness AUC (default {USEFUL_AUC})")
    p.add_argument("--min-per-class", type=int, default=MIN_PER_CLASS,
                   help=f"faces of each class a bin needs to be rated (default {MIN_PER_CLASS})")
    p.add_argument("--face-detector", default=None,
                   help="YuNet ONNX path, 'yunet' or 'haar' (default: the shared YuNet file if present)")
    p.add_argument("--rows", type=Path, default=None, metavar="FILE.npz",
                   help="also save every scored face copy (ROW_KEYS arrays) here")


def register(subparsers) -> None:
    p = subparsers.add_parser("gates", help="measure the face quality gates on a detector's validation split",
                              description=DESCRIPTION)
    add_arguments(p)
    p.set_defaults(func=clear_errors(run_gates))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deepfake.train.gates", description=DESCRIPTION)
    add_arguments(parser)
    return clear_errors(run_gates)(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
