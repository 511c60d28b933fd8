"""Training data: labelled folders -> items with source and identity group -> cached face crops.

Folders hold real/ and fake/ (images and videos); crops are made with exactly the inference recipe (detect +
crop_face, largest face) and cached on disk.

Splits are by identity group, never by frame: a video's frames share its group; a FaceForensics++ fake
`A_B` joins originals A and B (and every other fake made from either) in one group; in-the-wild Real*/Fake* clips group by person; DFDC
fakes are paired with their real source crop (nearest neighbour on small grayscale thumbnails) and
share its group.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .. import media
from ..errors import InputError
from ..crop import CropRecipe, crop_face
from ..faces import FaceDetector
from . import landmarks as dense

LABELS = {"real": 0, "fake": 1}
SPLITS = ("train", "val", "test")
DEFAULT_CACHE = Path(__file__).resolve().parents[2] / "cache" / "crops"
# A development checkout keeps the shared data beside the repo (../shared); without that file the face
# detector loads as at inference (the Hub cache, else the bundled YuNet copy, with a warning).
DEFAULT_YUNET = Path(__file__).resolve().parents[3] / "shared" / "models" / "face_detection_yunet_2023mar.onnx"
_SPLIT_NAMES = {"train", "val", "valid", "validation", "test"}


@dataclass(frozen=True)
class Item:
    path: Path
    label: int  # 0 real, 1 fake
    source: str  # dataset name, e.g. "ciplab", "stylegan", "dfdc_faces", "videos"
    group: str  # identity / pair / video: the unit of splitting
    kind: str  # "image" or "video"


@dataclass
class Crops:
    """Face crops of one item (a video gives several frames)."""
    crops: np.ndarray  # (n, S, S, 3) uint8
    landmarks: np.ndarray  # (n, 5, 2) float32 in crop pixels, NaN when unknown
    boxes: np.ndarray  # (n, 4) float32 face box x, y, w, h in crop pixels
    frames_total: int = 1  # frames (or images) looked at; n of them had a face
    landmarks68: np.ndarray | None = None  # (n, 68, 2) float32 dense landmarks in crop pixels (self-blend masks)


@dataclass
class Dataset:
    """Crops of many items in memory, one row per crop."""
    crops: np.ndarray
    landmarks: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    item_index: np.ndarray  # row -> index into items
    items: list[Item] = field(default_factory=list)
    landmarks68: np.ndarray | None = None  # (n, 68, 2), NaN where unknown

    @property
    def groups(self) -> np.ndarray:
        return np.array([self.items[i].group for i in self.item_index])

    @property
    def sources(self) -> np.ndarray:
        return np.array([self.items[i].source for i in self.item_index])


def source_name(folder: Path) -> str:
    """Dataset name of a labelled folder: its name, or parent name for train/val/test folders."""
    folder = Path(folder).resolve()
    return folder.parent.name if folder.name.lower() in _SPLIT_NAMES else folder.name


_FFPP = re.compile(r"ffpp_.*?_(\d{3})(?:_(\d{3}))?$")
_WILD = re.compile(r"^(real|fake)[-_ ]?(.+)$", re.IGNORECASE)
_PERSON_HASH = re.compile(r"^([a-z]+)_[0-9a-f]{12}$")  # flux_faces: <person>_<hash>, real and fake alike


def identity_of(stem: str) -> str:
    """Identity group from a file name: FF++ fakes join their target original; Real*/Fake* by person."""
    m = _FFPP.match(stem)
    if m:
        return f"ffpp:{m.group(1)}"
    m = _WILD.match(stem)
    if m:
        return "person:" + m.group(2).lower()
    m = _PERSON_HASH.match(stem)
    if m:
        return "person:" + m.group(1)
    return "file:" + stem


def list_items(folder: Path) -> list[Item]:
    """Every image and video under folder/real and folder/fake (recursively), sorted, with groups."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder")
    src = source_name(folder)
    items = []
    for name, label in LABELS.items():
        sub = folder / name
        if not sub.is_dir():
            continue
        for p in sorted(sub.rglob("*")):
            kind = media.media_kind(p)
            if kind is None or not p.is_file():
                continue
            items.append(Item(p, label, src, identity_of(p.stem), kind))
    if not items:
        raise InputError(f"{folder}: no images or videos under real/ or fake/")
    items = join_ffpp_pairs(items)
    if (folder / "pairs.csv").is_file():
        items = pair_groups(items)
    return items


def join_ffpp_pairs(items: list[Item]) -> list[Item]:
    """A FaceForensics++ fake A_B shows A with B's face or expression: originals A and B and every fake made
    from either form one group (union-find over the ids), named by the smallest id."""
    parent: dict[str, str] = {}

    def find(a: str) -> str:
        while parent.setdefault(a, a) != a:
            a = parent[a]
        return a

    ids = [_FFPP.match(it.path.stem) for it in items]  # identity_of named FF++ groups by the first id
    for m in ids:
        if m and m.group(2):
            a, b = find(m.group(1)), find(m.group(2))
            parent[max(a, b)] = min(a, b)
    if not parent:
        return items
    return [Item(it.path, it.label, it.source, f"ffpp:{find(m.group(1))}", it.kind) if m else it
            for it, m in zip(items, ids)]


def thumbnail(path: Path, size: int = 16) -> np.ndarray:
    """Small grayscale thumbnail, zero mean, unit norm: for pairing a fake with its real source."""
    gray = cv2.cvtColor(media.load_image(path), cv2.COLOR_RGB2GRAY)
    t = cv2.resize(gray, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
    t -= t.mean()
    return t / (np.linalg.norm(t) + 1e-6)


def pair_groups(items: list[Item]) -> list[Item]:
    """Give each fake image the group of the real image it was made from (one-to-one assignment on
    thumbnail distance), so that a pair never straddles a split. Videos keep their own groups."""
    from scipy.optimize import linear_sum_assignment

    reals = [i for i, it in enumerate(items) if it.label == 0 and it.kind == "image"]
    fakes = [i for i, it in enumerate(items) if it.label == 1 and it.kind == "image"]
    if not reals or not fakes:
        return items
    tr = np.stack([thumbnail(items[i].path) for i in reals])
    tf = np.stack([thumbnail(items[i].path) for i in fakes])
    cost = 1.0 - tf @ tr.T  # (fakes, reals) cosine distance
    rows, cols = linear_sum_assignment(cost)
    out = list(items)
    for r, c in zip(rows, cols):
        fi = fakes[r]
        out[fi] = Item(items[fi].path, 1, items[fi].source, items[reals[c]].group, items[fi].kind)
    return out


def face_detector_spec(spec: str | None) -> str | None:
    """The face detector that train, evaluate and threshold use: the one asked for, else DEFAULT_YUNET if
    present, else None (load_face_detector's default)."""
    return spec or (str(DEFAULT_YUNET) if DEFAULT_YUNET.is_file() else None)


def _unit(text: str) -> float:
    return (zlib.crc32(text.encode()) & 0xFFFFFFFF) / 2 ** 32


def split_items(items: list[Item], heldout_fraction: float, seed: int,
                heldout_sources: set[str] = frozenset()) -> dict[str, list[Item]]:
    """Split by group: per source, a `heldout_fraction` of groups (all groups for heldout_sources) is
    held out, and held-out groups alternate between 'val' (checkpoint and threshold choice) and 'test'
    (reported numbers). Deterministic in (seed, group names): adding files does not move groups."""
    out = {s: [] for s in SPLITS}
    by_source: dict[str, dict[str, list[Item]]] = {}
    for it in items:
        by_source.setdefault(it.source, {}).setdefault(it.group, []).append(it)
    for src, groups in by_source.items():
        names = sorted(groups, key=lambda g: (_unit(f"{seed}:{src}:{g}"), g))
        held_all = src in heldout_sources
        n_held = len(names) if held_all else int(round(heldout_fraction * len(names)))
        if not held_all and heldout_fraction > 0 and len(names) >= 2:
            n_held = min(max(n_held, 2), len(names) - 1) if len(names) >= 3 else 1
        for k, g in enumerate(names):
            split = ("val" if k % 2 == 0 else "test") if k < n_held else "train"
            out[split].extend(groups[g])
    return out


def subsample_groups(items: list[Item], fraction: float, seed: int) -> list[Item]:
    """The items of a `fraction` of the identity groups (deterministic in seed and group names): smaller
    training sets for a learning curve against training-set size."""
    if fraction >= 1.0:
        return list(items)
    return [it for it in items if _unit(f"{seed}:subsample:{it.source}:{it.group}") < fraction]


def _cache_key(item: Item, recipe: CropRecipe, detector: FaceDetector, frames: int) -> str:
    st = item.path.stat()
    text = json.dumps([str(item.path.resolve()), st.st_size, int(st.st_mtime), recipe.margin, recipe.size,
                       detector.name, detector.source, frames if item.kind == "video" else 0, dense.VERSION])
    return hashlib.sha1(text.encode()).hexdigest()


def _in_crop(face, box, size: int):
    x0, y0, x1, y1 = box
    sx, sy = size / max(x1 - x0, 1), size / max(y1 - y0, 1)
    lm = np.full((5, 2), np.nan, np.float32)
    if face.landmarks is not None:
        lm = np.array(face.landmarks, np.float32)
        lm = np.stack([(lm[:, 0] - x0) * sx, (lm[:, 1] - y0) * sy], axis=1)
    x, y, w, h = face.box
    fb = np.array([(x - x0) * sx, (y - y0) * sy, w * sx, h * sy], np.float32)
    return lm, fb


def face_crops(rgbs: list[np.ndarray], detector: FaceDetector, recipe: CropRecipe) -> Crops:
    """The largest face of each image, cropped with the inference recipe; images without a face skipped."""
    crops, lms, fbs = [], [], []
    for rgb in rgbs:
        faces = detector.detect(rgb)
        if not faces:
            continue
        crop, box = crop_face(rgb, faces[0].box, recipe)
        lm, fb = _in_crop(faces[0], box, recipe.size)
        crops.append(crop), lms.append(lm), fbs.append(fb)
    s = recipe.size
    c = Crops(np.stack(crops) if crops else np.zeros((0, s, s, 3), np.uint8),
              np.stack(lms) if lms else np.zeros((0, 5, 2), np.float32),
              np.stack(fbs) if fbs else np.zeros((0, 4), np.float32), len(rgbs))
    c.landmarks68 = dense.dense_landmarks_batch(c.crops, c.boxes)
    return c


def item_crops(item: Item, detector: FaceDetector, recipe: CropRecipe, cache: Path | None,
               frames: int = 16) -> Crops:
    """Crops of one item, from the on-disk cache when present."""
    path = None
    if cache is not None:
        key = _cache_key(item, recipe, detector, frames)
        path = Path(cache) / key[:2] / f"{key}.npz"
        if path.is_file():
            z = np.load(path)
            return Crops(z["crops"], z["landmarks"], z["boxes"], int(z["frames_total"]), z["landmarks68"])
    if item.kind == "video":
        _, sampled = media.sample_frames(item.path, frames)
        rgbs = [f.rgb for f in sampled]
    else:
        rgbs = [media.load_image(item.path)]
    c = face_crops(rgbs, detector, recipe)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # A name of this process's own: two training runs may fill one cache at once.
        tmp = path.with_name(f"{key}.{os.getpid()}.tmp.npz")
        np.savez(tmp, crops=c.crops, landmarks=c.landmarks, boxes=c.boxes, frames_total=c.frames_total,
                 landmarks68=c.landmarks68)
        tmp.replace(path)
    return c


def build_dataset(items: list[Item], detector: FaceDetector, recipe: CropRecipe, cache: Path | None,
                  frames: int = 16, log=print) -> tuple[Dataset, dict]:
    """All crops of items in memory, plus counts (items, crops, items without any face) per source."""
    parts, stats = [], {}
    for k, it in enumerate(items):
        c = item_crops(it, detector, recipe, cache, frames)
        s = stats.setdefault(it.source, {"items": 0, "crops": 0, "no_face": 0, "real": 0, "fake": 0})
        s["items"] += 1
        s["crops"] += len(c.crops)
        s["no_face"] += int(len(c.crops) == 0)
        s["fake" if it.label else "real"] += 1
        parts.append((k, c))
        if log and (k + 1) % 500 == 0:
            log(f"  crops: {k + 1}/{len(items)} items")
    size = recipe.size
    n = sum(len(c.crops) for _, c in parts)
    ds = Dataset(np.empty((n, size, size, 3), np.uint8), np.empty((n, 5, 2), np.float32),
                 np.empty((n, 4), np.float32), np.empty(n, np.int64), np.empty(n, np.int64), list(items),
                 np.empty((n, dense.N_POINTS, 2), np.float32))
    row = 0
    for k, c in parts:
        m = len(c.crops)
        ds.crops[row:row + m], ds.landmarks[row:row + m], ds.boxes[row:row + m] = c.crops, c.landmarks, c.boxes
        ds.landmarks68[row:row + m] = c.landmarks68
        ds.labels[row:row + m], ds.item_index[row:row + m] = items[k].label, k
        row += m
    return ds, stats


def model_split(config_raw: dict, seed: int | None, heldout_fraction: float | None) -> tuple[int, float]:
    """(seed, held-out fraction) for make_splits: the ones given, else the split a trained detector's
    config.json records (training's defaults, 0 and 0.25, when it records none)."""
    split = config_raw.get("deepfake", {}).get("split", {}) or {}
    return (int(split.get("seed", 0)) if seed is None else int(seed),
            float(split.get("heldout_fraction", 0.25)) if heldout_fraction is None else float(heldout_fraction))


def make_splits(dirs, holdout_dirs, heldout_fraction: float, seed: int,
                train_only_dirs=()) -> dict[str, list[Item]]:
    """Items of `dirs` split by group (a heldout_fraction of each source's groups held out), items
    of `holdout_dirs` (sources held out of training entirely, e.g. ciplab) all held out, and items of
    `train_only_dirs` (data without identity labels, e.g. ffpp_faces, which may show the people of other
    folders) all in training; held-out groups alternate between 'val' and 'test'. Training and evaluation
    call this with the same arguments (train-only folders change neither 'val' nor 'test')."""
    items = [it for d in dirs for it in list_items(folder_of(d))]
    held = [it for d in holdout_dirs for it in list_items(folder_of(d))]
    a = split_items(items, heldout_fraction, seed)
    b = split_items(held, heldout_fraction, seed, {it.source for it in held})
    out = {s: a[s] + b[s] for s in SPLITS}
    out["train"] += [it for d in train_only_dirs for it in list_items(folder_of(d))]
    # A DIR#real folder is split with its fakes (so its groups fall as for every other model trained on it), then
    # its fakes are left out: reals of every source for a network that learns another kind of fake.
    specs = [*dirs, *holdout_dirs, *train_only_dirs]
    return {s: without_fakes_of_reals_only(v, specs) for s, v in out.items()}


REALS_ONLY = "#real"


def reals_only(spec) -> bool:
    """Is a folder argument 'DIR#real' (its real faces only)?"""
    return str(spec).endswith(REALS_ONLY)


def folder_of(spec) -> Path:
    """The folder of a folder argument (DIR or DIR#real)."""
    text = str(spec)
    return Path(text[:-len(REALS_ONLY)] if reals_only(text) else text)


def source_of(spec) -> str:
    """The source name of a folder argument (DIR or DIR#real)."""
    return source_name(folder_of(spec))


def reals_only_sources(specs) -> set[str]:
    """The sources that folder arguments name as DIR#real."""
    return {source_of(d) for d in specs if reals_only(d)}


def read_exclusions(path) -> list[str]:
    """The lines of an exclusion list: one item path, or its last parts (images/ffpp_faces/real/x.jpg), per
    line; blank lines and # comments skipped. A missing or unreadable file is an InputError."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"exclusion list {path}: cannot be read ({e.__class__.__name__}); expected a text file "
                         "with one item path per line") from None
    return [ln.strip().replace("\\", "/") for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def without_listed(items: list[Item], listed: list[str]) -> tuple[list[Item], int]:
    """items without those whose path ends with a listed path (whole path components), and how many lines
    matched an item: e.g. training-only crops that show people of the held-out videos."""
    ends = tuple({f"/{x.lstrip('/')}" for x in listed})
    paths = [f"/{it.path.as_posix().lstrip('/')}" for it in items]
    keep = [it for it, pth in zip(items, paths) if not pth.endswith(ends)]
    return keep, sum(any(pth.endswith(e) for pth in paths) for e in ends)


def without_fakes_of_reals_only(items: list[Item], specs) -> list[Item]:
    """items without the fakes of the sources that `specs` name as DIR#real."""
    only_real = reals_only_sources(specs)
    return [it for it in items if not (it.source in only_real and it.label == 1)]


def validation_dataset(args, config, detector: FaceDetector) -> tuple[Dataset, dict]:
    """The validation crops of the split a trained model (config: its DetectorConfig) was trained with: seed and
    held-out fraction from its config unless args give them, frames per video as training validated, its crop
    recipe; with {"seed", "heldout_fraction", "items", "crops"}. For commands that re-tune a trained model."""
    raw = config.raw
    split = raw["deepfake"].get("split", {}) or {}
    seed, fraction = model_split(raw, args.seed, args.heldout_fraction)
    items = make_splits(args.dirs, args.holdout, fraction, seed)["val"]
    frames = int(split.get("val_frames_per_video", split.get("frames_per_video", 32)))
    ds, _ = build_dataset(items, detector, config.crop, args.cache, frames, log=None)
    return ds, {"seed": seed, "heldout_fraction": fraction, "items": len(items), "crops": int(len(ds.labels))}
