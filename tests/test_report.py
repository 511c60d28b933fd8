"""deepfake.report: JSON and self-contained HTML reports carry the analysis and nothing from the server."""
import base64
import hashlib
import json
import os
import re

import numpy as np
import pytest

from deepfake import report
from test_render import face, image_result, occlusion, video_result

SHA = "ab" * 32


def test_report_json_of_an_image_result():
    res = image_result([face((20, 60, 80, 80), 0.9), face((180, 60, 80, 80), 0.2)])
    rep = report.report_json(res, input_name="/tmp/gradio/abc123/holiday photo.jpg", input_sha256=SHA,
                             settings={"threshold": 0.5})
    json.dumps(rep)  # JSON-ready
    assert rep["input"] == {"name": "holiday photo.jpg", "sha256": SHA}
    assert rep["kind"] == "image" and rep["label"] == "FAKE" and rep["fake_probability"] == 0.9
    assert rep["threshold"] == 0.5 and rep["face_detector"] == "haar"
    assert rep["model"] == {"id": "local:test", "revision": "sha256:0"}
    assert [f["fake_probability"] for f in rep["result"]["faces"]] == [0.9, 0.2]
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$", rep["created_utc"])
    assert "not proof" in rep["limitations"]


def test_report_json_of_a_video_has_every_frame():
    vr = video_result([0.1, None, 0.8])
    rep = report.report_json(vr, input_name="C:\\Users\\me\\clip.mp4", input_sha256=SHA)
    assert rep["input"]["name"] == "clip.mp4" and rep["kind"] == "video"
    assert [f["fake_probability"] for f in rep["result"]["frames"]] == [0.1, None, 0.8]


def test_report_json_of_an_occlusion_has_the_raw_grid():
    ch = np.arange(16, dtype=float).reshape(4, 4) / 100
    rep = report.report_json(occlusion(ch), input_name="x.png", input_sha256=SHA)
    assert rep["kind"] == "grid_heatmap"
    assert np.allclose(rep["result"]["changes"], ch)


def test_report_html_is_self_contained_and_complete(tmp_path):
    res = image_result([face((20, 60, 80, 80), 0.9)])
    img = np.zeros((10, 10, 3), np.uint8)
    page = report.report_html(res, input_name=str(tmp_path / "face.png"), input_sha256=SHA,
                              images={"Faces": img}, settings={"cam_method": "gradcam"})
    assert page.startswith("<!DOCTYPE html>")
    assert "face.png" in page and SHA in page and "0.9000" in page and "FAKE" in page
    assert "local:test" in page and "haar" in page and "gradcam" in page
    assert "Limitations" in page and "not proof" in page
    m = re.search(r'src="data:image/png;base64,([^"]+)"', page)
    assert m and base64.b64decode(m.group(1)).startswith(b"\x89PNG")
    # nothing fetched from elsewhere, no server path, no traceback
    assert not re.search(r'(src|href)="(?!data:)', page)
    assert str(tmp_path) not in page and "Traceback" not in page


def test_report_html_of_a_video_lists_frames_and_escapes_names():
    vr = video_result([0.1, None, 0.8])
    page = report.report_html(vr, input_name="<img src=x onerror=alert(1)>.mp4", input_sha256=SHA)
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;.mp4" in page
    assert page.count("<tr>") >= 3 + 3  # summary rows + one row per frame
    assert "0.8000" in page and "n/a" in page


def test_report_html_of_no_face_says_no_verdict():
    page = report.report_html(image_result([]), input_name="x.png", input_sha256=SHA)
    assert "No face was detected" in page


def test_reports_never_contain_environment_values(monkeypatch):
    monkeypatch.setenv("SECRET_TOKEN_FOR_TEST", "s3cr3t-value")
    res = image_result([face((20, 60, 80, 80), 0.9)])
    page = report.report_html(res, input_name="x.png", input_sha256=SHA)
    rep = json.dumps(report.report_json(res, input_name="x.png", input_sha256=SHA))
    for text in (page, rep):
        assert "s3cr3t-value" not in text and os.path.expanduser("~") + "/" not in text


def test_sha256_file(tmp_path):
    p = tmp_path / "a.bin"
    p.write_bytes(b"hello" * 1000)
    assert report.sha256_file(p) == hashlib.sha256(b"hello" * 1000).hexdigest()


@pytest.mark.parametrize("name,want", [(None, "(unnamed input)"), ("", "(unnamed input)"), ("/a/b/c.png", "c.png"),
                                       ("..\\..\\x.jpg", "x.jpg"), ("plain.mp4", "plain.mp4")])
def test_safe_name(name, want):
    assert report.safe_name(name) == want


def test_report_html_states_the_exact_threshold():
    """The applied 0.558603, not 0.5586 (the JSON report carries the float itself)."""
    res = image_result([face((20, 60, 80, 80), 0.9, threshold=0.558603)], threshold=0.558603)
    page = report.report_html(res, input_name="x.png", input_sha256=SHA)
    assert "<td>Threshold</td><td>0.558603</td>" in page
    assert report.report_json(res, input_name="x.png")["threshold"] == 0.558603


def test_report_html_escapes_hostile_names_settings_warnings_and_captions():
    """Every value reaches the page escaped (Jinja2 autoescape): markup in a file name, a setting, a warning
    or an image caption is shown as text, never run."""
    import dataclasses

    hostile = '<script>alert("x")</script>'
    res = dataclasses.replace(image_result([face((20, 60, 80, 80), 0.9)]), warnings=(hostile,))
    name = '<b onmouseover="alert(1)">photo.png'  # a file name has no "/": safe_name keeps the last part only
    page = report.report_html(res, input_name=name, input_sha256=SHA, title=hostile,
                              settings={"cam_method": hostile}, images={hostile: np.zeros((4, 4, 3), np.uint8)})
    assert "<script>" not in page and "<b onmouseover" not in page
    escaped = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;"
    assert page.count(escaped) == 6  # <title>, heading, setting, warning, image alt text and caption
    assert "<td>Input file</td><td>&lt;b onmouseover=&#34;alert(1)&#34;&gt;photo.png</td>" in page


# ---------------------------------------------------------------------------------------------- the band
def _uncertain_image():
    """Two faces, both failing a gate: the image is UNCERTAIN with the gates as reasons."""
    return image_result([face((20, 60, 80, 80), 0.9, threshold=0.6, real_below=0.2, reasons=("blurred",)),
                         face((180, 60, 20, 20), 0.3, threshold=0.6, real_below=0.2,
                              reasons=("face_too_small", "too_dark"),
                              quality={"side_px": 20.0, "sharpness": 12.25, "brightness": 31.5, "yaw": None})],
                        threshold=0.6, real_below=0.2)


def test_report_json_carries_the_band_reasons_and_each_faces_quality():
    res = _uncertain_image()
    assert res.label == "UNCERTAIN" and res.reasons == ("face_too_small", "blurred", "too_dark")
    rep = report.report_json(res, input_name="x.png", input_sha256=SHA)
    json.dumps(rep)
    assert (rep["label"], rep["threshold"], rep["real_below"]) == ("UNCERTAIN", 0.6, 0.2)
    assert rep["reasons"] == ["face_too_small", "blurred", "too_dark"]
    assert rep["result"] == res.to_dict()
    assert rep["result"]["real_below"] == 0.2 and rep["result"]["reasons"] == rep["reasons"]
    f0, f1 = rep["result"]["faces"]
    assert f0["label"] == "UNCERTAIN" and f0["reasons"] == ["blurred"]
    assert f0["quality"] == {"side_px": 80.0, "sharpness": 2.5, "brightness": 120.0, "yaw": 0.1}
    assert f1["reasons"] == ["face_too_small", "too_dark"] and f1["quality"]["yaw"] is None


def test_report_json_of_a_video_has_frames_judged_and_per_frame_labels():
    vr = video_result([0.1, 0.9, None, 0.4], threshold=0.6, real_below=0.2, gated=(1,))
    rep = report.report_json(vr, input_name="clip.mp4", input_sha256=SHA)
    r = rep["result"]
    assert r["frames_judged"] == 2 and r["frames_with_face"] == 3 and r["real_below"] == 0.2
    assert [f["label"] for f in r["frames"]] == ["REAL", "UNCERTAIN", "NO_FACE", "UNCERTAIN"]
    assert [f["reasons"] for f in r["frames"]] == [[], ["blurred"], [], []]


def test_report_html_of_an_uncertain_image_shows_the_class_the_reasons_the_band_and_the_quality():
    page = report.report_html(_uncertain_image(), input_name="x.png", input_sha256=SHA)
    assert '<span class="UNCERTAIN verdict">UNCERTAIN</span>' in page
    assert page.count('<span class="UNCERTAIN">UNCERTAIN</span>') == 2  # each face's verdict cell
    assert ".UNCERTAIN{color:#b45309" in page
    assert "<td>Reasons</td><td>too small, blurred, too dark</td>" in page
    assert "No face passed the quality gates (too small, blurred, too dark)" in page
    assert "<td>Threshold</td><td>0.6</td>" in page and "<td>REAL below</td><td>0.2</td>" in page
    assert "<td>Band</td><td>REAL below 0.2, UNCERTAIN 0.2-0.6, FAKE from 0.6</td>" in page
    # per face: p, verdict, gates failed, side, sharpness, brightness, yaw, detection score
    assert ("<td>0.9000</td><td><span class=\"UNCERTAIN\">UNCERTAIN</span></td><td>blurred</td><td>80</td>"
            "<td>2.5</td><td>120.0</td><td>0.10</td><td>0.9000</td>") in page
    assert ("<td>too small, too dark</td><td>20</td><td>12.2</td><td>31.5</td><td>n/a</td>") in page


def test_report_html_of_a_probability_between_the_bounds_says_uncertain_without_gates():
    res = image_result([face((20, 60, 80, 80), 0.4, threshold=0.6, real_below=0.2)], threshold=0.6, real_below=0.2)
    page = report.report_html(res, input_name="x.png", input_sha256=SHA)
    assert '<span class="UNCERTAIN verdict">UNCERTAIN</span>' in page
    assert "between the REAL bound and the FAKE threshold" in page
    assert "No face passed the quality gates" not in page and "<td>Reasons</td>" not in page
    assert "<td>0.4000</td><td><span class=\"UNCERTAIN\">UNCERTAIN</span></td><td>none</td>" in page


def test_report_html_of_a_single_cut_states_one_cut():
    page = report.report_html(image_result([face((20, 60, 80, 80), 0.9)]), input_name="x.png", input_sha256=SHA)
    assert "<td>REAL below</td><td>0.5</td>" in page and "<td>Band</td><td>REAL below 0.5, FAKE from 0.5</td>" in page
    assert "UNCERTAIN, not a" not in page


def test_report_html_of_a_video_has_frames_judged_and_each_frames_label_and_reasons():
    vr = video_result([0.1, 0.9, None, 0.4], threshold=0.6, real_below=0.2, gated=(1,))
    page = report.report_html(vr, input_name="clip.mp4", input_sha256=SHA, settings={"real_below": 0.2, "frames": 4})
    assert "<td>Frames judged (a face passed the quality gates)</td><td>2</td>" in page
    rows = re.findall(r"<tr><td>(\d+)</td><td>[\d.]+</td><td>([^<]+)</td><td><span class=\"(\w+)\">\w+</span></td>"
                      r"<td>([^<]+)</td>", page)
    assert rows == [("0", "0.1000", "REAL", "none"), ("10", "0.9000", "UNCERTAIN", "blurred"),
                    ("20", "n/a", "NO_FACE", "none"), ("30", "0.4000", "UNCERTAIN", "none")]
    assert "<td>Real below</td>" not in page  # the setting is the bound shown above, not repeated
    assert "<td>Frames</td><td>4</td>" in page


# ---------------------------------------------------------------------------------------------- several networks
def _scores(p_swap, swap_label, p_gen, gen_label):
    from deepfake.results import NetworkScore

    return (NetworkScore("face_swap", "face_swap", p_swap, swap_label, 0.6, 0.3),
            NetworkScore("generated", "generated", p_gen, gen_label, 0.9, 0.2))


def _two_network_image(p_gen=0.93, gen_label="FAKE", label="FAKE", kind="generated"):
    """One face the face-swap network finds UNCERTAIN (0.41 in [0.3, 0.6)) and the generated one p_gen."""
    import dataclasses

    scores = _scores(0.41, "UNCERTAIN", p_gen, gen_label)
    f = dataclasses.replace(face((20, 60, 80, 80), 0.41, threshold=0.6, real_below=0.3), label=label, scores=scores,
                            manipulation=kind)
    return dataclasses.replace(image_result([f], threshold=0.6, real_below=0.3), label=label, scores=scores,
                               manipulation=kind)


SWAP_ROW = ("<td>face_swap</td><td>face swap</td><td>0.4100</td><td>REAL below 0.3, UNCERTAIN 0.3-0.6, FAKE from 0.6"
            "</td><td><span class=\"UNCERTAIN\">UNCERTAIN</span></td></tr>")
GEN_ROW = ("<td>generated</td><td>generated face</td><td>0.9300</td><td>REAL below 0.2, UNCERTAIN 0.2-0.9, FAKE from "
           "0.9</td><td><span class=\"FAKE\">FAKE</span></td></tr>")


def test_report_json_carries_each_networks_score_and_the_kind_at_every_level():
    res = _two_network_image()
    rep = report.report_json(res, input_name="x.png", input_sha256=SHA)
    json.dumps(rep)
    want = [{"network": "face_swap", "kind": "face_swap", "fake_probability": 0.41, "label": "UNCERTAIN",
             "threshold": 0.6, "real_below": 0.3},
            {"network": "generated", "kind": "generated", "fake_probability": 0.93, "label": "FAKE",
             "threshold": 0.9, "real_below": 0.2}]
    assert (rep["label"], rep["manipulation"], rep["scores"]) == ("FAKE", "generated", want)
    assert (rep["result"]["manipulation"], rep["result"]["scores"]) == ("generated", want)
    assert (rep["result"]["faces"][0]["manipulation"], rep["result"]["faces"][0]["scores"]) == ("generated", want)
    assert rep["fake_probability"] == 0.41  # the first network's, as the result says


def test_report_json_of_a_video_has_each_frames_networks():
    import dataclasses

    vr = video_result([0.1, 0.5], threshold=0.6, real_below=0.3)
    frames = (dataclasses.replace(vr.frames[0], scores=_scores(0.1, "REAL", 0.1, "REAL")),
              dataclasses.replace(vr.frames[1], label="FAKE", manipulation="generated",
                                  scores=_scores(0.5, "UNCERTAIN", 0.95, "FAKE")))
    vr = dataclasses.replace(vr, frames=frames, label="FAKE", manipulation="generated",
                             scores=_scores(0.3, "UNCERTAIN", 0.525, "UNCERTAIN"))
    r = report.report_json(vr, input_name="clip.mp4")
    assert r["manipulation"] == "generated" and [s["fake_probability"] for s in r["scores"]] == [0.3, 0.525]
    assert [(f["label"], f["manipulation"]) for f in r["result"]["frames"]] == [("REAL", None), ("FAKE", "generated")]
    assert [[s["label"] for s in f["scores"]] for f in r["result"]["frames"]] == \
        [["REAL", "REAL"], ["UNCERTAIN", "FAKE"]]
    page = report.report_html(vr, input_name="clip.mp4", input_sha256=SHA)
    # each frame: its verdict with the kind, and every network's say in the last column
    assert ("<td><span class=\"FAKE\">FAKE</span> (likely a generated face)</td><td>none</td><td>0</td>") in page
    assert "<td>face_swap 0.1000 REAL, generated 0.1000 REAL</td></tr>" in page
    assert "<td>face_swap 0.5000 UNCERTAIN, generated 0.9500 FAKE</td></tr>" in page
    assert "<th>p(fake) (face_swap)</th>" in page and "<th>p(fake) per network</th>" in page
    assert ("<tr><td>generated</td><td>generated face</td><td>0.5250</td><td>REAL below 0.2, UNCERTAIN 0.2-0.9, FAKE "
            "from 0.9</td><td><span class=\"UNCERTAIN\">UNCERTAIN</span></td></tr>") in page


def test_report_html_of_two_networks_has_a_table_per_image_and_per_face_and_the_kind_in_the_verdict():
    page = report.report_html(_two_network_image(), input_name="x.png", input_sha256=SHA)
    assert '<td>Verdict</td><td><span class="FAKE verdict">FAKE</span> (likely a generated face)</td>' in page
    # the summary's probability and band are the first network's, and say so
    assert "<td>Fake probability (face_swap)</td><td>0.4100</td>" in page
    assert "<td>Band (face_swap)</td><td>REAL below 0.3, UNCERTAIN 0.3-0.6, FAKE from 0.6</td>" in page
    assert "<h2>Networks</h2>" in page and "<h2>Each face by network</h2>" in page
    assert "<th>network</th><th>kind of fake</th><th>p(fake)</th><th>band</th><th>verdict</th>" in page
    assert page.count("<tr>" + SWAP_ROW) == 1 and page.count("<tr>" + GEN_ROW) == 1  # the image's table
    assert page.count("<tr><td>0</td>" + SWAP_ROW) == 1 and page.count("<tr><td>0</td>" + GEN_ROW) == 1  # the face's
    # the faces table: the first network's probability (so headed) and the face's combined verdict, with the kind
    assert "<th>face</th><th>box (x, y, w, h)</th><th>p(fake) (face_swap)</th><th>verdict</th>" in page
    assert "<td>0.4100</td><td><span class=\"FAKE\">FAKE</span> (likely a generated face)</td><td>none</td>" in page


def test_report_html_of_two_undecided_networks_says_why_uncertain():
    page = report.report_html(_two_network_image(0.5, "UNCERTAIN", "UNCERTAIN", None), input_name="x.png")
    assert '<td>Verdict</td><td><span class="UNCERTAIN verdict">UNCERTAIN</span></td>' in page
    assert "<p><b>No network says FAKE and not every network says REAL: UNCERTAIN, not a verdict.</b></p>" in page
    assert "likely a" not in page


def test_report_html_of_one_network_has_no_network_tables_and_names_the_kind_of_a_fake():
    import dataclasses

    from deepfake.results import NetworkScore

    swap = (NetworkScore("face_swap", "face_swap", 0.9, "FAKE", 0.5, 0.5),)
    f = dataclasses.replace(face((20, 60, 80, 80), 0.9), scores=swap, manipulation="face_swap")
    res = dataclasses.replace(image_result([f]), scores=swap, manipulation="face_swap")
    page = report.report_html(res, input_name="x.png", input_sha256=SHA)
    assert '<td>Verdict</td><td><span class="FAKE verdict">FAKE</span> (likely a face swap)</td>' in page
    assert "<td>Fake probability</td><td>0.9000</td>" in page
    assert "<td>Band</td><td>REAL below 0.5, FAKE from 0.5</td>" in page
    assert "<h2>Networks</h2>" not in page and "Each face by network" not in page and "per network" not in page
    assert "<th>face</th><th>box (x, y, w, h)</th><th>p(fake)</th><th>verdict</th>" in page
    assert report.report_json(res, input_name="x.png")["scores"] == [swap[0].to_dict()]
