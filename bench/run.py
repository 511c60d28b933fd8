#!/usr/bin/env python
"""Benchmark suite: `python bench/run.py [--quick]` prints one table and writes bench/results.json.

Every comparison is a ratio of two things measured in this run (interleaved repeats, so drift hits
both sides alike); absolute times are context only. Cold start and memory run in subprocesses.
"""
from __future__ import annotations

import os

for _k, _v in {"HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "GRADIO_ANALYTICS_ENABLED": "False"}.items():
    os.environ.setdefault(_k, _v)

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the package, bench/ and support/ live at the top of the repo
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from bench import inputs  # noqa: E402
from bench.context import Ctx, backend_of, face_crop, random_model  # noqa: E402
from bench.sections import backends, cold, floor, grid, image, memory, scaling, training, video  # noqa: E402
from bench.timing import Report  # noqa: E402
from deepfake.detector import load_detector  # noqa: E402
from support.paths import BUNDLED, SHARED_DATA  # noqa: E402
from support.paths import YUNET_ONNX as YUNET  # noqa: E402

RESULTS = ROOT / "bench" / "results.json"


# ---------------------------------------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="few repeats and small inputs (a smoke run, ~2 min)")
    ap.add_argument("--model", help="detector folder (default: the bundled model, else random weights)")
    ap.add_argument("--face-detector", help="YuNet ONNX path, 'yunet' or 'haar' (default: ../shared YuNet)")
    ap.add_argument("--only", help="comma-separated sections: floor,grid,image,video,cold,memory,scaling,backends,training "
                    "(floor always runs)")
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    ap.add_argument("--no-compile", action="store_true", help="skip torch.compile (slow to compile)")
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--clip", help=argparse.SUPPRESS)
    ap.add_argument("--frames", type=int, default=32, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    face = args.face_detector or (str(YUNET) if YUNET.is_file() else "yunet")
    if args.child:
        print(json.dumps(memory.child_memory(args.child, args.model, face, args.clip, args.frames)))
        return 0
    report = Report()
    if args.model:
        model = Path(args.model)
    elif (BUNDLED / "model.safetensors").is_file():
        model = BUNDLED
    else:
        model = random_model(Path(tempfile.gettempdir()) / "deepfake-bench-random-lite0")
        print("bundled model missing: using a random-weights detector (timings are valid, verdicts are not)")
    det = load_detector(str(model), face_detector=face)
    if model.name == "deepfake-bench-random-lite0":
        with torch.no_grad():  # random weights saturate the softmax: scale the head so occlusion maps are not 0
            det.network.net.get_classifier().weight.mul_(0.02)
        if backend_of(det.network) == "onnxruntime":
            det.network.use_onnxruntime()  # export the scaled head too
    det.warm_up()
    c = Ctx(det, model, face, args.quick, report)
    c.crop = face_crop(det, inputs.astronaut())
    c.x1 = det.network.preprocess([c.crop])
    report.info.update(
        model=str(model.relative_to(ROOT) if model.is_relative_to(ROOT) else model.name),
        face_detector=det.face_detector.name, backend=backend_of(det.network), quick=args.quick,
        python=platform.python_version(), torch=torch.__version__, threads=torch.get_num_threads(),
        cpu_count=os.cpu_count(),
        machine=platform.machine(), shared_data=SHARED_DATA.is_dir(),
        started=time.strftime("%Y-%m-%d %H:%M:%S"))
    print(f"model {report.info['model']}, face detector {det.face_detector.name}, backend {report.info['backend']}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs"
          + (" (quick)" if args.quick else ""))
    only = set(args.only.split(",")) if args.only else None
    sections = [("floor", floor.bench_floor), ("grid", grid.bench_grid), ("image", image.bench_image),
                ("video", video.bench_video), ("cold", cold.bench_cold_start), ("memory", memory.bench_memory),
                ("scaling", scaling.bench_scaling),
                ("backends", lambda c: backends.bench_backends(c, compile_=not (args.no_compile or args.quick))),
                ("training", training.bench_training)]
    t0 = time.perf_counter()
    for name, fn in sections:
        if name == "floor" or only is None or name in only:
            fn(c)
    report.info["wall_s"] = round(time.perf_counter() - t0, 1)
    print()
    i = report.info
    print(f"bench/run.py{' --quick' if args.quick else ''}: model {i['model']}, {i['face_detector']} faces, backend "
          f"{i['backend']}, {i['threads']} threads on {i['cpu_count']} CPUs, {i['wall_s']:.0f} s. Ratios are of "
          "medians measured in this run; spread = min-max over the repeats.\n")
    print(report.table())
    Path(args.out).write_text(json.dumps({"info": report.info, "rows": report.rows, "targets": report.targets,
                                          "extra": report.extra}, indent=2, default=str))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
