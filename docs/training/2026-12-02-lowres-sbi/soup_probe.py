"""Do weight averages (soups) or logit-mean ensembles of two lite2-260 networks beat their members on the training-time
validation crops (the bundled command's split; held-out videos_ffpp = cross-source)? Run from the repository root:
THREADS=1 python docs/training/2026-12-02-lowres-sbi/soup_probe.py"""
import dataclasses
import itertools
import os
import sys
from pathlib import Path
import numpy as np
import torch
from safetensors.torch import load_file
sys.path.insert(0, ".")
from deepfake.crop import CropRecipe
from deepfake.faces import load_face_detector
from deepfake.model import Network, read_config, create_network
from deepfake.train import data
from deepfake.train.train import validation_aucs

torch.set_num_threads(int(os.environ.get("THREADS", "2")))
D = Path("../shared/data")
dirs = [D/"images/ciplab/train", D/"images/dfdc_faces", D/"images/stylegan", D/"videos"]
hold = [D/"images/ciplab/val", D/"videos_ffpp"]
splits = data.make_splits(dirs, hold, 0.25, 0, [D/"images/ffpp_faces"])
fd = load_face_detector(data.face_detector_spec(None))
ds, st = data.build_dataset(splits["val"], fd, CropRecipe(1.3, 260), Path("cache/crops"), 8, log=None)
print("val crops", len(ds.labels), flush=True)
nets = {"bundled": "models/deepfake-lite0-sbi", "lowres": "docs/training/2026-12-02-lowres-sbi"}
cfg_folder = Path(nets["lowres"])
cfg = dataclasses.replace(read_config(cfg_folder), temperature=1.0)  # raw scores: the logit mean weighs both alike
sds = {k: load_file(str(Path(v)/"model.safetensors")) for k, v in nets.items()}

def score_sd(sd):
    net = create_network(cfg); net.load_state_dict(sd); net.eval()
    return Network.of(cfg, net).predict(ds.crops, 64, flip=False)

def logit(p):
    p = np.clip(p, 1e-6, 1 - 1e-6); return np.log(p / (1 - p))

def report(name, p):
    a = validation_aucs(ds, p, {"videos_ffpp"})
    print(f"{name:28} cross {a['cross_source_mean']:.3f} in {a['in_source_mean']:.3f} " +
          " ".join(f"{k} {v:.3f}" for k, v in sorted(a['all'].items())), flush=True)

probs = {}
for k, sd in sds.items():
    probs[k] = score_sd(sd); report(k, probs[k])
for r in (2,):
    for combo in itertools.combinations(sds, r):
        report("ens " + "+".join(combo), 1 / (1 + np.exp(-np.mean([logit(probs[c]) for c in combo], 0))))
        avg = {n: sum(sds[c][n].float() for c in combo) / r if sds[combo[0]][n].is_floating_point() else sds[combo[0]][n]
               for n in sds[combo[0]]}
        report("soup " + "+".join(combo), score_sd(avg))
