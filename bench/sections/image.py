"""Section 3: one image: face detection, prediction, Grad-CAM, against one forward."""
from __future__ import annotations

from deepfake import explain
from deepfake.detector import Detector
from deepfake.faces import haar_detector

from .. import alternatives as alt
from .. import inputs
from ..context import Ctx, backend_of
from ..timing import measure

def bench_image(c: Ctx) -> None:
    det, net = c.det, c.det.network
    rgb = inputs.photo(1024)
    faces = det.face_detector.detect(rgb)
    crops, boxes = det._crops(rgb, faces)

    def cam():
        x = net.preprocess(crops)
        cnet, lock = net.cam_network()
        with lock:
            maps = explain.cam_maps(cnet, explain.get_module(cnet, net.cam_layer_name()), x, det.config.fake_index)
        return explain.paste_maps(list(maps), boxes, rgb.shape)

    haar = Detector(net, haar_detector(), det.model_id, det.revision)
    first_only = Detector(net, det.face_detector, det.model_id, det.revision)  # no further networks
    st = measure({"detect": lambda: det.face_detector.detect(rgb), "predict": lambda: net.predict(crops),
                  "analyze": lambda: det.analyze_image(rgb), "analyze_first": lambda: first_only.analyze_image(rgb),
                  "cam": cam,
                  "forward1": lambda: net.probabilities(c.x1, 1),
                  "torch1": lambda: alt.eager_probabilities(net.net, det.config.fake_index)(c.x1),
                  "haar": lambda: haar.face_detector.detect(rgb)}, c.reps(9, 3))
    f1 = st["forward1"].median
    parts = st["detect"].median + st["predict"].median + st["cam"].median
    r = c.report
    x1 = {k: f"{v.median / f1:.2f}x fwd1" for k, v in st.items()}
    r.row_list("3 image", [
        (f"face detection, {det.face_detector.name} (1024x1024, {len(faces)} face)", st["detect"],
         f"{x1['detect']}, {st['detect'].median / st['analyze'].median:.0%} of analyze_image"),
        ("face detection, Haar fallback", st["haar"], x1["haar"]),
        ("prediction (crop preprocess + forward)", st["predict"], x1["predict"]),
        (f"one batch-1 forward ({backend_of(net)}) = fwd1", st["forward1"], ""),
        ("one batch-1 forward, torch eager (Grad-CAM runs on it)", st["torch1"], x1["torch1"]),
        ("Grad-CAM (preprocess + CAM + paste)", st["cam"],
         f"{x1['cam']}, {st['cam'].median / st['torch1'].median:.2f}x a torch forward"),
        (f"analyze_image (detection + prediction by {len(det.members)} network(s))", st["analyze"],
         x1["analyze"]),
        ("analyze_image, first network only", st["analyze_first"],
         f"{x1['analyze_first']}; all networks {st['analyze'].median / st['analyze_first'].median:.2f}x this"),
        ("image analysis = detection + prediction + Grad-CAM", None,
         f"{parts * 1e3:.1f} ms = {parts / f1:.2f}x one batch-1 forward ({f1 * 1e3:.1f} ms); "
         f"detection {st['detect'].median / parts:.0%} of it")])
    r.target("Grad-CAM / one batch-1 forward", st["cam"].median / f1, 4.0, "<=", "x",
             f"Grad-CAM stays on torch eager, whose batch-1 forward is {st['torch1'].median / f1:.2f}x the "
             f"{backend_of(net)} one; Grad-CAM itself is {st['cam'].median / st['torch1'].median:.2f}x a torch "
             "forward (a forward, a backward from the CAM layer only, grad-cam's per-call eval()/zero_grad() "
             "walks over the modules)", profile=cam)
    r.target("face detection / image analysis (detection + prediction + Grad-CAM)", st["detect"].median / parts,
             0.20, "<=", "", "YuNet on the 640 px detection copy; detecting at 320 px would meet it, but the "
             "slightly different boxes flipped 12 of 403 verdicts on ../shared/data (the model is sensitive to "
             "crop jitter), so the detection scale stays that of training",
             profile=lambda: [det.face_detector.detect(rgb) for _ in range(5)])
