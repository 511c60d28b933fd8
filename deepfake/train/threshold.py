"""Re-choose a trained detector's decision threshold on its validation split and write it into config.json.

No retraining: the same rule as the end of a training run (`--max-fpr`), on the split the model was trained
with (seed and held-out fraction from its config), with crops scored by the model's own Network.predict.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..faces import load_face_detector
from ..files import CONFIG_FILE
from ..model import Network
from . import data
from .train import choose_threshold, per_source_auc, threshold_rule

# Crops per forward pass while scoring the validation split (as training validation does).
BATCH = 64


def run_threshold(args) -> int:
    folder = Path(args.model)
    torch.set_num_threads(max(1, int(args.threads)))
    net = Network.from_folder(folder, backend="torch")
    raw = net.config.raw  # config.json as read by from_folder; updated and written back below
    fd = load_face_detector(data.face_detector_spec(args.face_detector))
    ds, info = data.validation_dataset(args, net.config, fd)
    seed, fraction = info["seed"], info["heldout_fraction"]
    flip = net.config.test_time_flip if args.test_time_flip is None else bool(args.test_time_flip)
    scores = net.predict(ds.crops, BATCH, flip)  # the config's resize, mean, std and fake index, as inference
    max_fpr = args.max_fpr if args.max_fpr > 0 else None
    threshold, at = choose_threshold(ds.labels, scores, ds.sources, max_fpr)
    aucs = per_source_auc(ds.labels, scores, ds.sources)
    print(f"validation split: {info['items']} items, {len(ds.labels)} face crops (seed {seed}, "
          f"held-out fraction {fraction})")
    print(f"{'source':12} {'crops':>6} {'AUC':>6} {'real called FAKE':>17} {'fake called FAKE':>17}")
    for s in sorted(aucs):
        m = ds.sources == s
        y, p = ds.labels[m], scores[m]
        print(f"{s:12} {int(m.sum()):6d} {aucs[s]:6.3f} {np.mean(p[y == 0] >= threshold):17.3f} "
              f"{np.mean(p[y == 1] >= threshold):17.3f}")
    rule = threshold_rule(max_fpr)
    print(f"threshold {threshold:.4f} (was {raw['deepfake']['threshold']:.4f}); rule: {rule}; "
          f"test-time flip {'on' if flip else 'off'}")
    print(f"means over sources at it: balanced accuracy {at['balanced_accuracy']:.3f}, real called FAKE "
          f"{at['fpr']:.3f}, fake called FAKE {at['tpr']:.3f}")
    if args.dry_run:
        print("dry run: config.json unchanged")
        return 0
    raw["deepfake"]["threshold"] = round(threshold, 6)
    if raw["deepfake"].pop("band", None) is not None:  # one cut replaces the band; `calibrate` makes a new one
        print("the model's UNCERTAIN band is replaced by this single cut (run `calibrate` for a band)")
    raw["deepfake"]["threshold_rule"] = rule
    raw["deepfake"]["test_time_flip"] = flip
    raw["deepfake"]["threshold_at_validation"] = {k: round(v, 4) for k, v in at.items()}
    (folder / CONFIG_FILE).write_text(json.dumps(raw, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {folder / CONFIG_FILE}")
    return 0
