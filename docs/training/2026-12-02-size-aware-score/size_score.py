"""Would a face-size term in the calibration help? Fits, on validation faces (evaluate's scores.csv: clean, JPEG 50,
half and quarter size; frames and images), a logistic model of the label on the face-swap network's calibrated logit
and log2 of the face side as analysed, each source and class weighted alike; then reports per-source AUC before ->
after on validation (in-sample) and test (out-of-sample), and the share of faces reaching the FAKE bound by face side
at a bound that keeps the pooled validation share of real faces FAKE unchanged. Run from the repository root after

    python -m deepfake evaluate <folders> --subset val --out runs/eval-val   (and --subset test --out runs/eval-test)

    python docs/training/2026-12-02-size-aware-score/size_score.py runs/eval-val/scores.csv runs/eval-test/scores.csv 0.538113
"""
import sys

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

SIDE_BINS = [0, 56, 80, 112, 160, 10_000]


def load(path: str) -> pd.DataFrame:
    d = pd.read_csv(path)
    d = d[d.condition.isin(["clean", "jpeg50", "half", "quarter"]) & ~d.no_face & (d.level != "video")].copy()
    p = np.clip(d.score.to_numpy(), 1e-6, 1 - 1e-6)
    d["z"] = np.log(p / (1 - p))
    d["log_side"] = np.log2(np.clip(d.face_px.to_numpy(), 20, 400))
    return d.reset_index(drop=True)


def features(d: pd.DataFrame) -> np.ndarray:
    return np.c_[d.z, d.log_side]


def balanced(d: pd.DataFrame) -> np.ndarray:
    return d.groupby(["source", "label"]).z.transform(lambda s: 1.0 / len(s)).to_numpy()


def fake_share_by_side(d: pd.DataFrame, score: np.ndarray, bound: float) -> dict:
    hit = pd.Series(score >= bound)
    side = pd.cut(d.face_px, SIDE_BINS)
    return {cls: hit[d.label == lab].groupby(side[d.label == lab], observed=True).mean().round(3).tolist()
            for cls, lab in (("real", 0), ("fake", 1))}


def main(val_csv: str, test_csv: str, fake_from: float) -> None:
    val, test = load(val_csv), load(test_csv)
    fit = LogisticRegression(C=1e4).fit(features(val), val.label, sample_weight=balanced(val))
    w, b = fit.coef_[0], fit.intercept_[0]
    print(f"adjusted logit = {w[0]:.3f} * logit + {w[1]:.3f} * log2(side) {b:+.3f}")
    z_bound = np.log(fake_from / (1 - fake_from))
    adj_val = features(val) @ w + b
    share = float((val.z[val.label == 0] >= z_bound).mean())
    adj_bound = float(np.quantile(adj_val[val.label.to_numpy() == 0], 1 - share))
    for name, d in (("validation", val), ("test", test)):
        adj = features(d) @ w + b
        per = [f"{s} {roc_auc_score(g.label, g.z):.3f} -> {roc_auc_score(g.label, adj[g.index]):.3f}"
               for s, g in d.groupby("source") if g.label.nunique() == 2]
        print(f"{name}: pooled AUC {roc_auc_score(d.label, d.z):.3f} -> {roc_auc_score(d.label, adj):.3f}; " + "; ".join(per))
        print(f"  share at the FAKE bound by face side {SIDE_BINS}: as now {fake_share_by_side(d, d.z.to_numpy(), z_bound)}")
        print(f"  with the size term                                   {fake_share_by_side(d, adj, adj_bound)}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]))
