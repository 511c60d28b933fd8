"""The Dockerfile, checked statically (no Docker engine here): pinned base, uid 1000, HOME, port 7860,
ffmpeg, dependencies in a cached layer before the code, `python app.py`."""
import json
import re

import pytest

from conftest import ROOT

DOCKERFILE = ROOT / "Dockerfile"


@pytest.fixture(scope="module")
def instructions():
    text = DOCKERFILE.read_text()
    text = re.sub(r"\\\n", " ", text)  # join continuation lines
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            op, _, rest = line.partition(" ")
            out.append((op.upper(), rest.strip()))
    return out


def test_base_image_is_pinned(instructions):
    froms = [r for op, r in instructions if op == "FROM"]
    assert len(froms) == 1
    image = froms[0].split()[0]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", image), image


def test_runs_as_uid_1000_with_home(instructions):
    runs = " ".join(r for op, r in instructions if op == "RUN")
    assert re.search(r"useradd\b.*(--uid|-u) 1000\b.*\buser\b", runs)
    users = [r for op, r in instructions if op == "USER"]
    assert users and users[-1] in ("user", "1000")
    env = " ".join(r for op, r in instructions if op == "ENV")
    assert "HOME=/home/user" in env
    assert "GRADIO_SERVER_NAME=0.0.0.0" in env and "GRADIO_SERVER_PORT=7860" in env


def test_port_ffmpeg_and_entry_point(instructions):
    assert ("EXPOSE", "7860") in instructions
    runs = " ".join(r for op, r in instructions if op == "RUN")
    assert re.search(r"apt-get install\b.*\bffmpeg\b", runs)
    cmd = [r for op, r in instructions if op == "CMD"]
    assert cmd and json.loads(cmd[-1]) == ["python", "app.py"]
    assert not any(op == "ENTRYPOINT" for op, _ in instructions)


def test_requirements_are_installed_before_the_code_is_copied(instructions):
    ops = [(op, r) for op, r in instructions]
    copy_req = next(i for i, (op, r) in enumerate(ops) if op == "COPY" and "requirements.txt" in r.split())
    install = next(i for i, (op, r) in enumerate(ops) if op == "RUN" and "-r requirements.txt" in r)
    copy_all = next(i for i, (op, r) in enumerate(ops) if op == "COPY" and r.split()[-2:] == [".", "."])
    user = max(i for i, (op, _) in enumerate(ops) if op == "USER")
    assert copy_req < install < copy_all
    assert user < copy_req  # everything after runs (and is owned) as the non-root user
    assert "--chown=user" in ops[copy_all][1]
    assert (ROOT / "requirements.txt").is_file()
    assert re.search(r"^gradio==6\.31\.0$", (ROOT / "requirements.txt").read_text(), re.M)


def test_dockerignore_keeps_local_state_out():
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in (".git", ".venv", ".gradio"):
        assert entry in ignored
