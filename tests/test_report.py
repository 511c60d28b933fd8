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
