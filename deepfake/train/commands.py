"""The `train`, `evaluate`, `threshold`, `push`, `calibrate` and `gates` subcommands of the command line.

Registered on the main CLI's subparsers (also runnable alone: python -m deepfake.train.commands
train|evaluate|threshold|push ...)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import clear_errors
from . import data


def _add_split_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--holdout", nargs="*", type=Path, default=[], metavar="DIR",
                   help="labelled folders held apart entirely (split into validation and test halves)")
    p.add_argument("--heldout-fraction", type=float, default=0.25,
                   help="share of each source's identity groups held out of training (default 0.25)")
    p.add_argument("--seed", type=int, default=0, help="random seed (split, sampling, init; default 0)")
    p.add_argument("--face-detector", default=None,
                   help="YuNet ONNX path, 'yunet' (Hub) or 'haar' (default: the shared YuNet file if present)")


def register(subparsers) -> None:
    t = subparsers.add_parser("train", help="train a detector on labelled folders (real/ and fake/)",
                              description="Train a face-crop deepfake detector with self-blended images.")
    t.add_argument("dirs", nargs="+", type=Path, metavar="DIR", help="folders with real/ and fake/ (images, videos); DIR#real: its real faces only")
    t.add_argument("--train-only", nargs="*", type=Path, default=[], metavar="DIR",
                   help="labelled folders used for training only, never split (data without identity labels, "
                        "e.g. ffpp_faces)")
    t.add_argument("--train-fraction", type=float, default=1.0,
                   help="train on this share of the training identity groups (default 1; a learning curve "
                        "against training-set size); validation and test are unchanged")
    t.add_argument("--exclude", type=Path, metavar="FILE",
                   help="text file of training items to leave out, one path or its last parts per line "
                        "(e.g. docs/data/ffpp_faces-heldout-people.txt: ffpp_faces crops of people in videos_ffpp)")
    t.add_argument("--out", type=Path, required=True, metavar="MODEL_DIR", help="detector folder to write")
    t.add_argument("--epochs", type=int, default=12, help="epochs (default 12)")
    t.add_argument("--samples-per-epoch", type=int, default=5500, help="training samples per epoch (default 5500)")
    t.add_argument("--minutes", type=float, default=55.0,
                   help="safety cap: stop the training loop after this many minutes; the LR schedule follows "
                        "steps, not time (default 55)")
    t.add_argument("--init-seed", type=int, default=None,
                   help="seed of initialisation, sampling and augmentation (default: --seed); the split keeps --seed")
    t.add_argument("--ema-decay", type=float, default=0.999,
                   help="decay of the weight average that is validated and saved (default 0.999; 0 disables)")
    t.add_argument("--sbi-ratio", type=float, default=0.6,
                   help="share of (real, fake) pairs whose fake is the real face self-blended; the rest pair a "
                        "labelled fake with its real source (default 0.6)")
    t.add_argument("--any-real-share", type=float, default=0.0,
                   help="share of labelled-fake pairs whose real is a real face of any source, not the fake's own "
                        "group or source (default 0; with DIR#real folders, e.g. for a generated-face network)")
    t.add_argument("--match-sharpness", type=float, default=0.0,
                   help="share of labelled (real, fake) pairs whose sharper member is blurred to the other's "
                        "sharpness, so that blur does not separate them (default 0)")
    t.add_argument("--lowres-sbi", type=float, default=0.0,
                   help="share of self-blended pairs blended into a low-resolution copy of the real face (25-60 %% of "
                        "its side, both members of the pair), so that small faces keep a visible blend (default 0)")
    t.add_argument("--kind", choices=("face_swap", "generated"), default="face_swap",
                   help="the kind of fake the network finds (config.json; default face_swap): 'generated' for a "
                        "further network of a detector folder (deepfake.networks)")
    t.add_argument("--arch", default="tf_efficientnet_lite0", help="timm architecture (default tf_efficientnet_lite0)")
    t.add_argument("--bf16", action="store_true",
                   help="training forward and loss under CPU bf16 autocast (pays on CPUs with AMX; the log says "
                        "whether this one has it); weights, validation and the saved model stay float32 (default off)")
    t.add_argument("--size", type=int, default=224,
                   help="face-crop side in pixels, the network's input (default 224; e.g. 260 for lite2)")
    t.add_argument("--batch-size", type=int, default=16)
    t.add_argument("--lr", type=float, default=5e-4)
    t.add_argument("--frames", type=int, default=32, help="frames sampled per training video (default 32)")
    t.add_argument("--val-frames", type=int, default=8,
                   help="frames sampled per validation video, scored every epoch (default 8)")
    t.add_argument("--cache", type=Path, default=data.DEFAULT_CACHE, help="face-crop cache folder")
    t.add_argument("--threads", type=int, default=2,
                   help="torch CPU threads (default 2; use 1 when other jobs share a 2-core CPU: there, 2 OpenMP "
                        "threads were 3x slower)")
    t.add_argument("--freeze-stages", type=int, default=2,
                   help="keep the stem and this many first stages frozen (default 2; 0 trains everything)")
    t.add_argument("--log-dir", type=Path, default=None, help="where train.log/split.json/summary.json go")
    t.add_argument("--test-time-flip", action=argparse.BooleanOptionalAction, default=False,
                   help="score each crop as the mean of it and its mirror image, in validation and in the saved "
                        "model's config (default off; doubles the forward passes)")
    t.add_argument("--max-fpr", type=float, default=0.1,
                   help="threshold rule: the lowest threshold whose mean share of real validation faces called "
                        "FAKE is at most this (default 0.1; 0: best mean balanced accuracy instead)")
    _add_split_args(t)
    t.set_defaults(func=cmd_train)

    e = subparsers.add_parser("evaluate", help="metrics, ROC and calibration plots, robustness table",
                              description="Evaluate a detector on labelled folders through the inference path.")
    e.add_argument("dirs", nargs="+", type=Path, metavar="DIR")
    e.add_argument("--model", required=True, metavar="MODEL_DIR", help="detector folder or Hub repo id")
    e.add_argument("--out", type=Path, default=None, metavar="REPORT_DIR",
                   help="where metrics.json, scores.csv, roc.png, reliability.png go (default runs/eval-<model>)")
    e.add_argument("--subset", choices=("all", "train", "val", "test"), default="all",
                   help="evaluate only this part of the training split (recomputed from --holdout/--seed)")
    e.add_argument("--frames", type=int, default=32, help="frames sampled per video (default 32)")
    e.add_argument("--threshold", type=float, default=None, help="decision threshold (default: the model's)")
    e.add_argument("--no-robustness", action="store_true", help="skip the JPEG-50, half- and quarter-size rows")
    e.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    e.add_argument("--max-items", type=int, default=None, help="evaluate at most N items per folder (quick runs)")
    _add_split_args(e)
    e.set_defaults(func=cmd_evaluate, seed=None, heldout_fraction=None)  # None: the model's training split

    h = subparsers.add_parser("threshold", help="re-choose a trained detector's threshold on its validation split",
                              description="Score the validation split with a detector folder and write the "
                                          "threshold chosen by the --max-fpr rule into its config.json.")
    h.add_argument("dirs", nargs="+", type=Path, metavar="DIR", help="the training folders (to rebuild the split)")
    h.add_argument("--model", required=True, type=Path, metavar="MODEL_DIR", help="detector folder to update")
    h.add_argument("--max-fpr", type=float, default=0.1,
                   help="false-positive budget (default 0.1; 0: best mean balanced accuracy instead)")
    h.add_argument("--cache", type=Path, default=data.DEFAULT_CACHE, help="face-crop cache folder")
    h.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    h.add_argument("--dry-run", action="store_true", help="print the threshold; leave config.json unchanged")
    h.add_argument("--test-time-flip", action=argparse.BooleanOptionalAction, default=None,
                   help="switch the model's test-time flip on or off before choosing the threshold, and write "
                        "it into config.json (default: keep the config's setting)")
    _add_split_args(h)
    h.set_defaults(func=cmd_threshold, seed=None, heldout_fraction=None)  # None: the model's training split

    p = subparsers.add_parser("push", help="upload a detector folder to the Hugging Face Hub",
                              description="Validate a detector folder and upload it with HfApi().upload_folder.")
    p.add_argument("--model", required=True, type=Path, metavar="DIR")
    p.add_argument("--repo", required=True, metavar="ORG/NAME")
    p.add_argument("--dry-run", action="store_true", help="validate and list the files; no network")
    p.add_argument("--revision", default=None, help="branch to push to (default main)")
    p.add_argument("--commit-message", default=None)
    p.add_argument("--private", action="store_true", help="create the repo private if it does not exist")
    p.set_defaults(func=cmd_push)

    from . import calibrate, gates  # each module registers its own subcommand

    calibrate.register(subparsers)
    gates.register(subparsers)


@clear_errors
def cmd_train(args) -> int:
    from .train import TrainOptions, train

    opts = TrainOptions(dirs=args.dirs, out=args.out, holdout_dirs=args.holdout, train_only_dirs=args.train_only,
                        arch=args.arch,
                        epochs=args.epochs, samples_per_epoch=args.samples_per_epoch, minutes=args.minutes,
                        ema_decay=args.ema_decay,
                        size=args.size, batch_size=args.batch_size, lr=args.lr, sbi_ratio=args.sbi_ratio,
                        any_real_share=args.any_real_share, kind=args.kind, match_sharpness=args.match_sharpness, lowres_sbi=args.lowres_sbi,
                        heldout_fraction=args.heldout_fraction, frames=args.frames,
                        val_frames=args.val_frames, train_fraction=args.train_fraction, exclude=args.exclude,
                        seed=args.seed, init_seed=args.init_seed, cache=args.cache, face_detector=args.face_detector,
                        threads=args.threads, freeze_stages=args.freeze_stages, log_dir=args.log_dir,
                        max_fpr=args.max_fpr if args.max_fpr > 0 else None, test_time_flip=args.test_time_flip,
                        bf16=args.bf16)
    train(opts)  # a missing folder fails in its first step, data.make_splits
    return 0


@clear_errors
def cmd_evaluate(args) -> int:
    from .evaluate import run_evaluate

    return run_evaluate(args)


@clear_errors
def cmd_threshold(args) -> int:
    from .threshold import run_threshold

    return run_threshold(args)


@clear_errors
def cmd_push(args) -> int:
    from .push import run_push

    return run_push(args)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deepfake.train.commands")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
