import time, timm, torch, types
from deepfake.train.train import frozen_modules, train_step
torch.set_num_threads(1)
def make(dw_fp32):
    net = timm.create_model("tf_efficientnet_lite2", pretrained=False, num_classes=2).to(memory_format=torch.channels_last)
    if dw_fp32:
        for m in net.modules():
            if isinstance(m, torch.nn.Conv2d) and m.groups > 1:
                orig = m.forward
                def f(x, orig=orig):
                    with torch.autocast("cpu", enabled=False):
                        return orig(x.float())
                m.forward = f
    for m in frozen_modules(net, 2): m.requires_grad_(False)
    net.train()
    return net
x = torch.randn(16, 3, 260, 260).contiguous(memory_format=torch.channels_last); y = torch.arange(16) % 2
for name, dw, bf in (("fp32", False, False), ("bf16 all", False, True), ("bf16, depthwise fp32", True, True)):
    net = make(dw); opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=1e-5)
    train_step(net, opt, x, y, bf)
    t = time.perf_counter()
    for _ in range(3): train_step(net, opt, x, y, bf)
    print(f"{name}: {(time.perf_counter()-t)/3*1000:.0f} ms/step", flush=True)
