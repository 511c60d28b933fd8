"""Section 9: one training step of the bundled architecture in float32 and under CPU bf16 autocast (`train --bf16`)."""
from __future__ import annotations

import timm
import torch

from deepfake.train.train import cpu_has_amx, frozen_modules, train_step

from ..context import Ctx
from ..timing import measure

BATCH = 16  # the training batch (8 real/fake pairs)


def bench_training(c: Ctx) -> None:
    cfg = c.det.network.config
    size = c.det.network.input_size
    net = timm.create_model(cfg.architecture, pretrained=False, num_classes=2).to(memory_format=torch.channels_last)
    for mod in frozen_modules(net, 2):  # as `train` runs it: stem and first two stages frozen
        mod.requires_grad_(False)
    net.train()
    opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=1e-5)
    x = torch.randn(BATCH, 3, size, size).contiguous(memory_format=torch.channels_last)
    y = torch.arange(BATCH) % 2

    st = measure({"float32": lambda: train_step(net, opt, x, y), "bf16": lambda: train_step(net, opt, x, y, bf16=True)},
                 c.reps(5, 2))
    amx = "has" if cpu_has_amx() else "has no"
    r = c.report
    r.row("9 training", f"{cfg.architecture} at {size} px, batch {BATCH}, float32 step", st["float32"],
          f"{BATCH / st['float32'].median:.1f} img/s")
    ratio = st["float32"].median / st["bf16"].median
    r.row("9 training", "same step under bf16 autocast (train --bf16)", st["bf16"],
          f"{ratio:.2f}x float32's speed; this CPU {amx} AMX bf16 tiles (issue #12: 1.6x for lite2 with them; 0.69x measured on one)")
