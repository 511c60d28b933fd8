"""Train a detector on face crops with self-blended and labelled fakes.

Cached face crops (inference recipe) + self-blended fakes + labelled fakes, in pairs (a real face and its fake
share one random augmentation, as SBI trains), augmentations that mimic what uploads go through; checkpoint
chosen on sources held out of training entirely (cross-source validation), threshold on the validation split."""
from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .. import quality
from ..crop import CropRecipe
from ..faces import load_face_detector
from ..files import CARD_FILE, CONFIG_FILE, WEIGHTS_FILE
from ..model import DetectorConfig, Network, make_config_dict, preprocess
from . import data
from .pretrained import LITE0, create_pretrained
from .sbi import self_blend

THRESHOLD_RULE = ("maximise the mean over validation sources of per-source balanced accuracy "
                  "(each source weighted equally), on face crops of the validation split")


@dataclass
class TrainOptions:
    dirs: list[Path]
    out: Path
    holdout_dirs: list[Path] = field(default_factory=list)
    train_only_dirs: list[Path] = field(default_factory=list)
    train_fraction: float = 1.0  # train on this share of the training groups (learning curve against data size)
    arch: str = LITE0
    epochs: int = 12
    samples_per_epoch: int = 5500
    # Safety cap on the training loop's wall clock: it only stops a run that is far too slow. The LR
    # schedule follows steps, so the same command gives the same model on any machine.
    minutes: float = 55.0
    max_fpr: float | None = 0.1  # threshold rule: false-positive budget (None: best balanced accuracy)
    ema_decay: float = 0.999  # weight averaging (timm ModelEmaV3); validation and the saved model use it
    batch_size: int = 16
    lr: float = 5e-4
    sbi_ratio: float = 0.6  # share of pairs whose fake is self-blended (rest: a labelled fake and its real)
    # Share of labelled-fake pairs whose real is a real face of any source instead of the fake's own group or
    # source: reals of sources without such fakes (DIR#real folders) then take part.
    any_real_share: float = 0.0
    # Share of labelled (real, fake) pairs whose sharper member is blurred to the other's sharpness (the `blurred`
    # gate's measure): DFDC and FaceForensics++ fakes are about 30 % blurrier than their reals, so without it
    # blur alone separates them and low-quality real faces come to look fake.
    match_sharpness: float = 0.0
    # Share of self-blended pairs made from a low-resolution copy of the real face (both members), blended after
    # the downscale: against small real faces scoring as fakes (issue #12 item 6).
    lowres_sbi: float = 0.0
    kind: str = "face_swap"  # the kind of fake the network learns to find (config.json deepfake.kind and name)
    heldout_fraction: float = 0.25
    frames: int = 32  # frames sampled per training video
    val_frames: int = 8  # per validation video: validated every epoch, so kept cheap (the mean over 8 frames)
    seed: int = 0  # the split's seed, and the training's unless init_seed is given
    # Seed of initialisation, sampling and augmentation only (default: seed): reruns on the same split measure
    # how much the validation numbers move with training noise alone.
    init_seed: int | None = None
    # Text file of training items to leave out (data.read_exclusions), e.g. training-only crops that show people of
    # the held-out videos; validation and test are unchanged.
    exclude: Path | None = None
    cache: Path | None = data.DEFAULT_CACHE
    face_detector: str | None = None
    margin: float = 1.3
    size: int = 224
    threads: int = 2
    freeze_stages: int = 2  # stem and this many first stages stay frozen (speed on CPU; generic features)
    # Validate, choose the threshold and predict on crop + mirror image. Off: on the bundled model's validation
    # split it raised mean AUC for one training run (0.836 -> 0.853) and lowered it for the next (0.824 -> 0.807).
    test_time_flip: bool = False
    # Training forward and loss under CPU bf16 autocast (weights, optimiser, EMA, validation stay float32). Opt-in:
    # the bundled network was trained in float32, and the documented command must retrain it as it is; on a CPU
    # with AMX bf16 tiles, issue #12 measured lite2 training 1.6x faster with it, session 13 0.69x (slow bf16 backward).
    bf16: bool = False
    log_dir: Path | None = None

    @property
    def precision(self) -> str:
        """How the training forward runs (the log and config.json `deepfake.training.precision` say it)."""
        return "bf16 autocast" if self.bf16 else "float32"

    @property
    def training_seed(self) -> int:
        return self.seed if self.init_seed is None else self.init_seed


# ------------------------------------------------------------------------------------ augmentation
def _jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if ok else img


def low_resolution(img: np.ndarray, rng: np.random.Generator, lo: float, hi: float) -> np.ndarray:
    """img downscaled to a log-uniform share in [lo, hi] of its side (at least 8 px) and upscaled back to its size,
    bilinear or bicubic: the face of a low-resolution frame, at the crop size."""
    S = img.shape[0]
    k = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    small = cv2.resize(img, (max(8, int(S * k)),) * 2, interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (S, S), interpolation=[cv2.INTER_LINEAR, cv2.INTER_CUBIC][int(rng.integers(2))])


def augment(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Crop shift/scale, flip, colour jitter, blur, downscale-upscale, JPEG re-compression (q 40-100)."""
    S = img.shape[0]
    if rng.random() < 0.8:  # shifts and scale changes of the crop: YuNet vs Haar boxes, video jitter
        s = rng.uniform(0.9, 1.1)
        tx, ty = rng.uniform(-0.05, 0.05, 2) * S
        c = S / 2.0
        M = np.array([[s, 0, (1 - s) * c + tx], [0, s, (1 - s) * c + ty]], np.float32)
        img = cv2.warpAffine(img, M, (S, S), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    if rng.random() < 0.5:
        img = img[:, ::-1]
    if rng.random() < 0.6:
        f = img.astype(np.float32)
        mean = f.mean()
        f = (f - mean) * rng.uniform(0.8, 1.2) + mean + rng.uniform(-20, 20)
        gray = f.mean(axis=2, keepdims=True)
        f = gray + (f - gray) * rng.uniform(0.75, 1.25)
        img = np.clip(f, 0, 255).astype(np.uint8)
    if rng.random() < 0.1:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 1.2))
    if rng.random() < 0.5:  # low-resolution source, down to ~40 px faces (small video frames), log-uniform
        # so that face size stops being a cue: real faces used to score higher the smaller they were
        img = low_resolution(img, rng, 0.18, 0.9)
    if rng.random() < 0.7:
        img = _jpeg(np.ascontiguousarray(img), int(rng.integers(40, 101)))
    return np.ascontiguousarray(img)


def blur_to_sharpness(img: np.ndarray, target: float, steps: int = 7, current: float | None = None) -> np.ndarray:
    """img Gaussian-blurred so that its sharpness (quality.sharpness) is about target (bisection on sigma in
    (0, 4] px; sharpness falls as sigma grows); img itself when it is not sharper than target. current: img's
    sharpness where the caller has measured it already."""
    if (quality.sharpness(img) if current is None else current) <= target:
        return img
    lo, hi, best = 0.0, 4.0, img
    for _ in range(steps):
        sigma = (lo + hi) / 2
        out = cv2.GaussianBlur(img, (0, 0), sigma)
        if quality.sharpness(out) > target:
            lo = sigma
        else:
            hi, best = sigma, out
    return best if best is not img else cv2.GaussianBlur(img, (0, 0), hi)


def match_sharpness(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) with the sharper of the two blurred to the other's sharpness, so that blur does not tell them apart."""
    sa, sb = quality.sharpness(a), quality.sharpness(b)
    return (blur_to_sharpness(a, sb, current=sa), b) if sa > sb else (a, blur_to_sharpness(b, sa, current=sb))


def _validation_config(size: int, mean, std, flip: bool = False) -> DetectorConfig:
    """What scoring needs of the config training saves: crops of `size` (no centre crop), the model's mean and
    std, make_config_dict's class order and fake index, test-time flip."""
    pcfg = {"input_size": [3, size, size], "crop_pct": 1.0, "mean": list(mean), "std": list(std)}
    return DetectorConfig.from_dict(make_config_dict("training", pcfg, threshold=0.5, crop=CropRecipe(size=size),
                                                     test_time_flip=flip))


def to_tensor(batch: np.ndarray, mean, std) -> torch.Tensor:
    """NHWC uint8 crops -> normalised NCHW float: model.preprocess, as inference runs it on the saved config."""
    return preprocess(batch, _validation_config(batch.shape[1], mean, std).data_config)


# ------------------------------------------------------------------------------------ sampling
class Sampler:
    """Batches of (real, fake) pairs that share one random augmentation, so that only the manipulation
    separates them (SBI's training). A pair's fake is the real face self-blended (sbi_ratio), else a labelled
    fake with the real face it was made from (same identity group: DFDC pairs, FaceForensics++ groups) or,
    where the data has no such link, a real face of the same source. Sources are weighted by the square root
    of their size, so small sources (e.g. 75 StyleGAN fakes) are seen often but not memorised."""

    def __init__(self, ds: data.Dataset, opts: TrainOptions, rng: np.random.Generator):
        self.ds, self.opts, self.rng = ds, opts, rng
        src = ds.sources
        real_by_group: dict[str, list[int]] = {}
        for i, g in zip(np.flatnonzero(ds.labels == 0), ds.groups[ds.labels == 0]):
            real_by_group.setdefault(str(g), []).append(int(i))
        self.real_by_group = {g: np.array(v) for g, v in real_by_group.items()}
        self.groups = ds.groups
        self.pools = {}
        for label in (0, 1):
            groups = {}
            for s in np.unique(src):
                idx = np.flatnonzero((src == s) & (ds.labels == label))
                if len(idx):
                    groups[s] = idx
            names = sorted(groups)
            w = np.array([np.sqrt(len(groups[n])) for n in names], np.float64)
            self.pools[label] = (names, groups, w / w.sum() if len(w) else w)

    def _pick(self, label: int) -> int:
        names, groups, w = self.pools[label]
        s = names[int(self.rng.choice(len(names), p=w))]
        return int(self.rng.choice(groups[s]))

    def _real_partner(self, fake_row: int) -> int:
        """The real face a labelled fake was made from (same group), else a real face of its source; any real
        face (any_real_share of the time)."""
        if self.opts.any_real_share and self.rng.random() < self.opts.any_real_share:
            return self._pick(0)
        same = self.real_by_group.get(str(self.groups[fake_row]))
        if same is not None:
            return int(self.rng.choice(same))
        src = self.ds.items[self.ds.item_index[fake_row]].source
        pool = self.pools[0][1].get(src)  # (names, groups by source, weights) of the real faces
        return int(self.rng.choice(pool)) if pool is not None else self._pick(0)

    def geometry(self, i: int):
        """Best face geometry of row i for a self-blend mask: 68 landmarks, else 5, else the box."""
        ds = self.ds
        if ds.landmarks68 is not None and np.isfinite(ds.landmarks68[i]).all():
            return ds.landmarks68[i]
        return ds.landmarks[i] if np.isfinite(ds.landmarks[i]).all() else ds.boxes[i]

    def pair(self) -> tuple[np.ndarray, np.ndarray]:
        """One (real, fake) pair of crops, before augmentation."""
        ds, rng = self.ds, self.rng
        if not self.pools[1][0] or rng.random() < self.opts.sbi_ratio:
            i = self._pick(0)
            real = ds.crops[i]
            if self.opts.lowres_sbi and rng.random() < self.opts.lowres_sbi:
                # blend into a low-resolution copy: the blend stays visible at that resolution, as in a face swap
                # of low-resolution footage (the shared augmentation's downscale comes after the blend and wipes
                # it out, which taught "small face: 0.5", above the threshold, for real faces)
                real = low_resolution(real, rng, 0.25, 0.6)
            return real, self_blend(real, self.geometry(i), rng)[0]
        f = self._pick(1)
        real, fake = ds.crops[self._real_partner(f)], ds.crops[f]
        if self.opts.match_sharpness and rng.random() < self.opts.match_sharpness:
            real, fake = match_sharpness(real, fake)
        return real, fake

    def batch(self) -> tuple[np.ndarray, np.ndarray]:
        imgs, labels = [], []
        for _ in range(max(1, self.opts.batch_size // 2)):
            real, fake = self.pair()
            seed = int(self.rng.integers(2 ** 63))  # one augmentation for both members of the pair
            imgs += [augment(real, np.random.default_rng(seed)), augment(fake, np.random.default_rng(seed))]
            labels += [0, 1]
        return np.stack(imgs), np.array(labels, np.int64)


# ------------------------------------------------------------------------------------ validation
def predict(net, crops: np.ndarray, mean, std, batch_size: int = 64, flip: bool = False) -> np.ndarray:
    """Fake probabilities of face crops by model.Network.predict, the inference code, on a config like the one
    training saves (crop size, mean, std, class order); flip=True: test-time flip (crop and mirror image)."""
    cfg = _validation_config(crops.shape[1], mean, std, flip)
    return Network.of(cfg, net, next(net.parameters()).device).predict(crops, batch_size)


def per_source_auc(labels: np.ndarray, scores: np.ndarray, sources: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import roc_auc_score

    out = {}
    for s in np.unique(sources):
        m = sources == s
        if len(np.unique(labels[m])) == 2:
            out[str(s)] = float(roc_auc_score(labels[m], scores[m]))
    return out


def item_scores(ds: data.Dataset, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels, scores, sources) per item: an image's crop score, a video's mean over its frames (the
    inference rule for a video with one face per frame)."""
    idx, inv = np.unique(ds.item_index, return_inverse=True)
    sums = np.bincount(inv, weights=scores, minlength=len(idx))
    means = sums / np.bincount(inv, minlength=len(idx))
    labels = np.array([ds.items[i].label for i in idx])
    sources = np.array([ds.items[i].source for i in idx])
    return labels, means, sources


def validation_aucs(ds: data.Dataset, scores: np.ndarray, cross_sources, min_per_class: int = 5) -> dict:
    """Item-level AUC per validation source, split into sources none of whose fakes trained (cross_source) and
    the others (in_source), with the mean of each; 'select' is the number checkpoints are chosen by: the mean
    over the cross-source sources when there are such sources, else over the in-source ones, leaving out sources
    with fewer than min_per_class items of a class (one validation pair's AUC is 0 or 1) unless none has more."""
    labels, item_score, sources = item_scores(ds, scores)
    aucs = per_source_auc(labels, item_score, sources)
    cross = {k: v for k, v in aucs.items() if k in set(cross_sources)}
    inside = {k: v for k, v in aucs.items() if k not in cross}
    pool = cross or inside
    fewest = {k: min(np.sum((sources == k) & (labels == c)) for c in (0, 1)) for k in pool}
    ranked = {k: v for k, v in pool.items() if fewest[k] >= min_per_class} or pool

    def mean(d):
        return float(np.mean(list(d.values()))) if d else float("nan")

    return {"all": aucs, "in_source": inside, "cross_source": cross, "in_source_mean": mean(inside),
            "cross_source_mean": mean(cross), "select": mean(ranked), "select_sources": sorted(ranked)}


def threshold_rule(max_fpr: float | None) -> str:
    """The stated rule behind a threshold (written into config.json and the model card)."""
    if max_fpr is None:
        return THRESHOLD_RULE
    return (f"the lowest threshold at which the mean over validation sources (each weighted equally) of the "
            f"share of real faces called FAKE is at most {max_fpr:g}, on face crops of the validation split")


def choose_threshold(labels: np.ndarray, scores: np.ndarray, sources: np.ndarray,
                     max_fpr: float | None = None) -> tuple[float, dict]:
    """threshold_rule(max_fpr): (threshold, {"balanced_accuracy", "fpr", "tpr"} means over sources at it).
    max_fpr None: THRESHOLD_RULE (best mean balanced accuracy); else a false-positive budget, which keeps
    a FAKE verdict meaningful even when the score distributions overlap widely."""
    cands = np.unique(np.concatenate([scores, [0.5]]))
    cands = np.clip((cands[:-1] + cands[1:]) / 2 if len(cands) > 1 else cands, 1e-4, 1 - 1e-4)
    if len(cands) > 2000:
        cands = np.unique(np.quantile(cands, np.linspace(0, 1, 2000)))
    tprs, fprs = [], []
    for s in np.unique(sources):
        m = sources == s
        y, p = labels[m], scores[m]
        if len(np.unique(y)) < 2:
            continue
        tprs.append((p[y == 1][None, :] >= cands[:, None]).mean(1))
        fprs.append((p[y == 0][None, :] >= cands[:, None]).mean(1))
    if not tprs:
        return 0.5, {"balanced_accuracy": float("nan"), "fpr": float("nan"), "tpr": float("nan")}
    tpr, fpr = np.mean(tprs, axis=0), np.mean(fprs, axis=0)
    bal = (tpr + 1 - fpr) / 2
    if max_fpr is None:
        best = int(np.argmax(bal))
    else:
        ok = np.flatnonzero(fpr <= max_fpr)
        best = int(ok[0]) if len(ok) else len(cands) - 1  # cands ascend: the lowest one within budget
    return float(cands[best]), {"balanced_accuracy": float(bal[best]), "fpr": float(fpr[best]),
                                "tpr": float(tpr[best])}


# ------------------------------------------------------------------------------------ training
def lr_scheduler(optim, total_steps: int):
    """timm's cosine schedule over steps, after a linear warm-up of min(100, total/10) steps from lr/warm-up;
    call step_update(step) before each optimiser step."""
    from timm.scheduler import CosineLRScheduler

    warmup = max(1, min(100, total_steps // 10))
    base = optim.param_groups[0]["lr"]
    return CosineLRScheduler(optim, t_initial=total_steps, lr_min=0.0, warmup_t=warmup, warmup_lr_init=base / warmup,
                             t_in_epochs=False)


def frozen_modules(net, stages: int) -> list:
    """Stem and the first `stages` stages of an EfficientNet-style timm model (none for others)."""
    if stages <= 0 or not hasattr(net, "blocks"):
        return []
    mods = [m for m in (getattr(net, "conv_stem", None), getattr(net, "bn1", None)) if m is not None]
    return mods + list(net.blocks[:stages])


def cpu_has_amx() -> bool:
    """Whether this CPU has AMX bf16 tiles (Linux /proc/cpuinfo flag amx_bf16), where bf16 autocast pays."""
    try:
        return "amx_bf16" in Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False


def autocast(bf16: bool):
    """The context the training forward and loss run in: CPU bf16 autocast, or nothing."""
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)


def train_step(net, optim, x: torch.Tensor, y: torch.Tensor, bf16: bool = False) -> torch.Tensor:
    """One optimiser step on a batch (forward and loss under `autocast(bf16)`, the loss in float32); the loss."""
    with autocast(bf16):
        logits = net(x)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=0.05)
    optim.zero_grad(set_to_none=True)
    loss.backward()
    optim.step()
    return loss.detach()


def _log(msg: str, fh=None) -> None:
    line = f"[{time.strftime('%H:%M:%S')}] {msg}"
    print(line, flush=True)
    if fh is not None:
        fh.write(line + "\n")
        fh.flush()


def train(opts: TrainOptions) -> dict:
    t_start = time.time()
    torch.set_num_threads(opts.threads)
    torch.manual_seed(opts.training_seed)
    rng = np.random.default_rng(opts.training_seed)
    # bad folders fail here, before a log folder or a face detector exists
    splits = data.make_splits(opts.dirs, opts.holdout_dirs, opts.heldout_fraction, opts.seed, opts.train_only_dirs)
    splits["train"] = data.subsample_groups(splits["train"], opts.train_fraction, opts.seed)
    excluded = None
    if opts.exclude:
        listed = data.read_exclusions(opts.exclude)
        kept, matched = data.without_listed(splits["train"], listed)
        excluded = {"list": Path(opts.exclude).name, "lines": len(listed), "lines_matched": matched,
                    "items": len(splits["train"]) - len(kept)}
        splits["train"] = kept
    log_dir = Path(opts.log_dir or Path(__file__).resolve().parents[2] / "runs" / time.strftime("train-%Y%m%d-%H%M%S"))
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / "train.log", "a", encoding="utf-8") as fh:  # closed when training raises, too
        if excluded:
            _log(f"left out {excluded['items']} training items listed in {opts.exclude} "
                 f"({excluded['lines_matched']} of its {excluded['lines']} lines matched)", fh)
        return _train_logged(opts, splits, log_dir, fh, t_start, rng, excluded)


def _train_logged(opts: TrainOptions, splits: dict, log_dir: Path, fh, t_start: float,
                  rng: np.random.Generator, excluded: dict | None = None) -> dict:
    fd = load_face_detector(data.face_detector_spec(opts.face_detector))
    if fd.warning:
        _log(f"WARNING: {fd.warning}", fh)
    recipe = CropRecipe(opts.margin, opts.size)
    heldout_sources = {data.source_of(d) for d in opts.holdout_dirs}
    # Cross-source = no fake of the source trains: a held-out folder of a source that also trains (ciplab/val
    # beside ciplab/train) is in-source; with self-blends only, every source's manipulations are unseen.
    fake_sources = fake_train_sources(splits["train"], opts.sbi_ratio)
    cross_sources = ({it.source for it in splits["val"]} | heldout_sources) - fake_sources
    (log_dir / "split.json").write_text(json.dumps(
        {s: [[str(it.path), it.label, it.source, it.group] for it in v] for s, v in splits.items()}, indent=0))
    _log(f"items: " + ", ".join(f"{s} {len(v)}" for s, v in splits.items()), fh)
    train_ds, train_stats = data.build_dataset(splits["train"], fd, recipe, opts.cache, opts.frames,
                                               log=lambda m: _log(m, fh))
    val_ds, val_stats = data.build_dataset(splits["val"], fd, recipe, opts.cache, opts.val_frames, log=None)
    _log(f"train crops {len(train_ds.labels)} {train_stats}", fh)
    _log(f"val crops {len(val_ds.labels)} {val_stats}", fh)
    _log(f"crops ready after {time.time() - t_start:.0f}s", fh)

    net, init = create_pretrained(opts.arch, 2)
    pcfg = dict(net.pretrained_cfg)
    pcfg.update(crop_pct=1.0, input_size=[3, opts.size, opts.size])
    mean, std = tuple(pcfg["mean"]), tuple(pcfg["std"])
    net = net.to(memory_format=torch.channels_last)
    frozen = frozen_modules(net, opts.freeze_stages)
    for mod in frozen:
        mod.requires_grad_(False)
    params = [p for p in net.parameters() if p.requires_grad]
    _log(f"init: {init}; {sum(p.numel() for p in params) / 1e6:.2f} M trainable parameters", fh)
    amx = cpu_has_amx()
    _log(f"precision: {opts.precision} (this CPU "
         f"{'has' if amx else 'has no'} AMX{'; bench/run.py --only training measures whether --bf16 is faster' if amx and not opts.bf16 else ''})", fh)
    optim = torch.optim.AdamW(params, lr=opts.lr, weight_decay=1e-4)
    ema = None
    if opts.ema_decay > 0:
        from timm.utils.model_ema import ModelEmaV3

        ema = ModelEmaV3(net, decay=opts.ema_decay, use_warmup=True)
    judged = ema.module if ema is not None else net  # the weights validated and saved
    sampler = Sampler(train_ds, opts, rng)
    steps_per_epoch = max(1, opts.samples_per_epoch // opts.batch_size)
    total_steps = steps_per_epoch * opts.epochs
    sched = lr_scheduler(optim, total_steps)
    budget = opts.minutes * 60.0
    t_loop = time.time()
    history, best = [], None
    val_sources = val_ds.sources
    _log("checkpoint chosen by item-level AUC on " + (
        f"sources held out of training: {', '.join(sorted(cross_sources))}" if cross_sources
        else "held-out identities of the training sources (no --holdout source given)"), fh)
    step = 0
    stop = False
    for epoch in range(1, opts.epochs + 1):
        net.train()
        for mod in frozen:
            mod.eval()  # frozen BatchNorm keeps its ImageNet statistics
        t_ep, losses, seen = time.time(), [], 0
        for _ in range(steps_per_epoch):
            if time.time() - t_loop >= budget:
                _log(f"WARNING: stopped at the {opts.minutes:g}-minute safety cap after {step} of "
                     f"{total_steps} steps (the CPU is much slower than expected)", fh)
                stop = True
                break
            sched.step_update(step)
            x, y = sampler.batch()
            loss = train_step(net, optim, to_tensor(x, mean, std), torch.from_numpy(y), opts.bf16)
            if ema is not None:
                ema.update(net, step=step + 1)
            losses.append(float(loss))
            seen += len(y)
            step += 1
        dt = time.time() - t_ep
        scores = predict(judged, val_ds.crops, mean, std, flip=opts.test_time_flip)
        v = validation_aucs(val_ds, scores, cross_sources)
        mean_auc = v["select"]
        rec = {"epoch": epoch, "steps": step, "loss": float(np.mean(losses)) if losses else None,
               "img_per_s": round(seen / max(dt, 1e-6), 1), "val_auc_mean": mean_auc, "val_auc": v["all"],
               "val_in_source_mean": v["in_source_mean"], "val_cross_source_mean": v["cross_source_mean"],
               "elapsed_min": round((time.time() - t_start) / 60, 2)}
        history.append(rec)
        loss_text = "-" if rec["loss"] is None else f"{rec['loss']:.4f}"
        _log(f"epoch {epoch}: loss {loss_text}  {rec['img_per_s']} img/s  val AUC cross-source mean "
             f"{v['cross_source_mean']:.4f} in-source mean {v['in_source_mean']:.4f}  "
             + " ".join(f"{k} {a:.3f}" for k, a in v["all"].items())
             + f"  choice {mean_auc:.4f} on {'+'.join(v['select_sources'])}  ({rec['elapsed_min']} min)", fh)
        if best is None or mean_auc > best["val_auc_mean"]:
            best = {"epoch": epoch, "val_auc_mean": mean_auc, "val_auc": v["all"], "scores": scores,
                    "val_in_source": v["in_source"], "val_cross_source": v["cross_source"],
                    "state": copy.deepcopy(judged.state_dict())}
        if stop:
            break

    net.load_state_dict(best["state"])
    threshold, at = choose_threshold(val_ds.labels, best["scores"], val_sources, opts.max_fpr)
    bal_acc = at["balanced_accuracy"]
    _log(f"best epoch {best['epoch']} (val AUC mean {best['val_auc_mean']:.4f}); threshold {threshold:.4f} "
         f"(means over sources: balanced accuracy {bal_acc:.4f}, real called FAKE {at['fpr']:.3f}, "
         f"fake called FAKE {at['tpr']:.3f})", fh)
    minutes = (time.time() - t_start) / 60.0
    summary = {
        "init": init, "best_epoch": best["epoch"], "val_auc": best["val_auc"], "val_auc_mean": best["val_auc_mean"],
        "val_in_source": best["val_in_source"], "val_cross_source": best["val_cross_source"],
        "val_balanced_accuracy": bal_acc, "val_fpr": at["fpr"], "val_tpr": at["tpr"], "threshold": threshold, "minutes": round(minutes, 1),
        "history": history, "train_stats": train_stats, "val_stats": val_stats, "log_dir": str(log_dir),
        "excluded": excluded, "fake_train_sources": sorted(fake_sources),
    }
    save_model(net, opts, pcfg, threshold, summary, heldout_sources)
    (log_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    _log(f"wrote {opts.out} in {minutes:.1f} min", fh)
    return summary


def learning_curve_of(history: list[dict]) -> list[dict]:
    """Per epoch: steps and the in-source / cross-source validation means (what evaluate prints)."""
    def r(v):
        return None if v is None or not np.isfinite(v) else round(float(v), 4)

    return [{"steps": h["steps"], "in_source": r(h.get("val_in_source_mean")),
             "cross_source": r(h.get("val_cross_source_mean"))} for h in history]


def fake_train_sources(items, sbi_ratio: float) -> set[str]:
    """Sources whose labelled fakes the sampler draws: none when every pair is self-blended (sbi_ratio 1)."""
    return set() if sbi_ratio >= 1 else {it.source for it in items if it.label == 1}


def save_model(net, opts: TrainOptions, pcfg: dict, threshold: float, summary: dict, heldout_sources) -> None:
    from safetensors.torch import save_file

    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    stats = summary["train_stats"]
    data_text = "; ".join(f"{s}: {v['real']} real / {v['fake']} fake items" for s, v in stats.items())
    if opts.sbi_ratio > 0:
        data_text += f"; plus self-blended fakes (sbi_ratio {opts.sbi_ratio})"
    if opts.match_sharpness > 0:
        data_text += f"; sharpness-matched labelled pairs (match_sharpness {opts.match_sharpness})"
    if opts.lowres_sbi > 0:
        data_text += f"; self-blends into low-resolution copies (lowres_sbi {opts.lowres_sbi})"
    further = further_networks(out / CONFIG_FILE)
    cfg = make_config_dict(
        opts.arch, pcfg, threshold=threshold, crop=CropRecipe(opts.margin, opts.size),
        cam_layer=net.feature_info[-1]["module"], threshold_rule=threshold_rule(opts.max_fpr), data=data_text,
        test_time_flip=opts.test_time_flip,
        extra={"kind": opts.kind, "name": opts.kind,
               "split": {"seed": opts.seed, "heldout_fraction": opts.heldout_fraction,
                         "heldout_sources": sorted(heldout_sources), "frames_per_video": opts.frames,
                         "val_frames_per_video": opts.val_frames,
                         "train_fraction": opts.train_fraction,
                         "excluded": summary["excluded"],
                         "train_sources": sorted(stats),
                         "fake_train_sources": summary["fake_train_sources"],
                         "train_only_sources": sorted({data.source_of(d) for d in opts.train_only_dirs}),
                         "reals_only_sources": sorted(data.reals_only_sources(
                             [*opts.dirs, *opts.holdout_dirs, *opts.train_only_dirs])),
                         "rule": "by identity group (DFDC pair, FF++ original, person, file); held-out groups "
                                 "alternate val (checkpoint, threshold) / test (reported numbers)"},
               "training": {"init": summary["init"], "init_seed": opts.training_seed,
                            "epochs_run": len(summary["history"]),
                            "precision": opts.precision,
                            "best_epoch": summary["best_epoch"], "minutes": summary["minutes"],
                            "learning_curve": learning_curve_of(summary["history"]),
                            "val_auc": {k: round(v, 4) for k, v in summary["val_auc"].items()}},
               "threshold_at_validation": {"balanced_accuracy": round(summary["val_balanced_accuracy"], 4),
                                           "fpr": round(summary["val_fpr"], 4), "tpr": round(summary["val_tpr"], 4)},
               **further})
    (out / CONFIG_FILE).write_text(json.dumps(cfg, indent=2) + "\n", encoding="utf-8")
    state = {k: v.detach().contiguous().cpu() for k, v in net.state_dict().items()}
    save_file(state, str(out / WEIGHTS_FILE), metadata={"format": "pt"})
    card = out / CARD_FILE
    if not card.is_file():
        card.write_text(basic_card(opts, summary, threshold), encoding="utf-8")


def further_networks(config_path: Path) -> dict:
    """The `deepfake.networks` entry of the config being replaced: retraining a detector folder's own network
    keeps the further networks it lists (they are trained and calibrated separately)."""
    try:
        own = json.loads(config_path.read_text(encoding="utf-8")).get("deepfake", {})
    except (OSError, ValueError, AttributeError):
        return {}
    return {"networks": own["networks"]} if isinstance(own, dict) and own.get("networks") else {}


def basic_card(opts: TrainOptions, summary: dict, threshold: float) -> str:
    aucs = "\n".join(f"| {k} | {v:.4f} |" for k, v in summary["val_auc"].items())
    return f"""---
license: apache-2.0
library_name: timm
tags:
- deepfake-detection
- image-classification
- timm
---
# {Path(opts.out).name}

Face-crop deepfake detector ({opts.arch}, {opts.size}x{opts.size} face crops, margin {opts.margin}), trained with
self-blended images. For research and demonstration only.

Decision threshold {threshold:.4f}: {threshold_rule(opts.max_fpr)}.

| validation source (face crops, checkpoint selection) | AUC |
|---|---|
{aucs}

Training took {summary['minutes']} min (best epoch {summary['best_epoch']}).
"""
