#!/bin/bash
# Learning curve against training-set size: the same short schedule (2 epochs) on nested shares of the groups.
cd /work/trainrun
D=../shared/data
for F in 0.25 0.5 1.0; do
  /work/main/.venv/bin/python -m deepfake train $D/images/ciplab/train $D/images/dfdc_faces $D/images/stylegan $D/videos \
    --train-only $D/images/ffpp_faces --holdout $D/images/ciplab/val $D/videos_ffpp \
    --epochs 2 --minutes 40 --threads 1 --train-fraction $F --cache /work/main/cache/crops \
    --out /work/main/runs/model-frac$F --log-dir /work/main/runs/train-frac$F > /work/main/runs/train-frac$F.out 2>&1
done
