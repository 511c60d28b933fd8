"""Uniform weight averages ("soups") of lite2 runs, scored on the validation crops the training curve uses.

Run from the repo root with ../shared beside it (names are runs/model-NAME folders; "+" joins one soup's members):
    python docs/training/2026-12-01-lite2-12-epochs/soup.py L L+Q5 L+Q
"""
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repo root
from deepfake.faces import load_face_detector  # noqa: E402
from deepfake.model import DetectorConfig  # noqa: E402
from deepfake.train import data, train as T  # noqa: E402
from deepfake.train.pretrained import create_pretrained  # noqa: E402

torch.set_num_threads(2)
combos = [c.split("+") for c in sys.argv[1:]]
# split, crop recipe, normalisation and architecture: those the first member's config.json records (all members
# are runs of the same command, so they share them)
raw = json.loads(Path(f"runs/model-{combos[0][0]}/config.json").read_text())
cfg, split = DetectorConfig.from_dict(raw), raw["deepfake"]["split"]
S = "../shared/data/"
dirs = [Path(S + p) for p in ["images/ciplab/train", "images/dfdc_faces", "images/stylegan", "videos"]]
hold = [Path(S + p) for p in ["images/ciplab/val", "videos_ffpp"]]
seed, fraction = data.model_split(raw, None, None)
splits = data.make_splits(dirs, hold, fraction, seed, [Path(S + "images/ffpp_faces")])
ds, _ = data.build_dataset(splits["val"], load_face_detector(data.face_detector_spec(None)), cfg.crop,
                           data.DEFAULT_CACHE, split["val_frames_per_video"], log=None)
cross = set(split["heldout_sources"]) - set(split["train_sources"])
mean, std = raw["pretrained_cfg"]["mean"], raw["pretrained_cfg"]["std"]
net, _ = create_pretrained(raw["architecture"], 2)
net.eval()
weights = {n: load_file(f"runs/model-{n}/model.safetensors") for n in {n for c in combos for n in c}}
for combo in combos:
    avg = {k: torch.stack([weights[c][k] for c in combo]).mean(0) if v.is_floating_point() else v.clone()
           for k, v in weights[combo[0]].items()}
    net.load_state_dict(avg)
    a = T.validation_aucs(ds, T.predict(net, ds.crops, mean, std), cross)
    print("+".join(combo), f"cross {a['cross_source_mean']:.3f} in {a['in_source_mean']:.3f}",
          " ".join(f"{s} {v:.3f}" for s, v in a["all"].items()), flush=True)
