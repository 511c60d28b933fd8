"""How well does each network separate validation reals from their own self-blended copies (the task self-blend
training sets), beside its AUC on the labelled fakes of the same sources? A network that solves the first and not
the second has learnt something about our self-blends that the real manipulations do not share.

Run from the repo root with ../shared beside it (names are runs/model-NAME folders):
    python docs/training/2026-12-01-pure-sbi/sbi_probe.py L P
"""
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from safetensors.torch import load_file
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repo root
from deepfake.faces import load_face_detector  # noqa: E402
from deepfake.model import DetectorConfig  # noqa: E402
from deepfake.train import data, train as T  # noqa: E402
from deepfake.train.pretrained import create_pretrained  # noqa: E402

torch.set_num_threads(2)
names = sys.argv[1:]
raw = json.loads(Path(f"runs/model-{names[0]}/config.json").read_text())  # all runs share split and crop recipe
S = "../shared/data/"
folders = SimpleNamespace(  # the training command's folders; split seed and fraction from the config
    dirs=[Path(S + p) for p in ["images/ciplab/train", "images/dfdc_faces", "images/stylegan", "videos"]],
    holdout=[Path(S + p) for p in ["images/ciplab/val", "videos_ffpp"]], seed=None, heldout_fraction=None,
    cache=data.DEFAULT_CACHE)
ds, _ = data.validation_dataset(folders, DetectorConfig.from_dict(raw), load_face_detector(data.face_detector_spec(None)))
dirs = folders.dirs
# one self-blend per real crop, seeded, with the training sampler's choice of face geometry
sampler = T.Sampler(ds, T.TrainOptions(dirs=dirs, out=Path("unused")), np.random.default_rng(0))
reals = np.flatnonzero(ds.labels == 0)
blends = np.stack([T.self_blend(ds.crops[i], sampler.geometry(i), sampler.rng)[0] for i in reals])
mean, std = raw["pretrained_cfg"]["mean"], raw["pretrained_cfg"]["std"]
net, _ = create_pretrained(raw["architecture"], 2)
net.eval()
print("network  source        real vs own self-blend (crops)  real vs labelled fake (crops)")
for name in names:
    net.load_state_dict(load_file(f"runs/model-{name}/model.safetensors"))
    p = T.predict(net, ds.crops, mean, std)
    pb = T.predict(net, blends, mean, std)
    for s in sorted(set(ds.sources)):
        r = reals[ds.sources[reals] == s]
        f = np.flatnonzero((ds.labels == 1) & (ds.sources == s))
        own = roc_auc_score(np.r_[np.zeros(len(r)), np.ones(len(r))], np.r_[p[r], pb[ds.sources[reals] == s]])
        lab = roc_auc_score(np.r_[np.zeros(len(r)), np.ones(len(f))], np.r_[p[r], p[f]]) if len(f) else float("nan")
        print(f"{name:8} {s:13} {own:30.3f}  {lab:29.3f}", flush=True)
