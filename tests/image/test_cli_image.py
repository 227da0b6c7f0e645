"""``llmfn image build``: one clear line (exit 2) without docker or buildx; with a docker CLI it runs
``docker buildx build`` for linux/amd64 and prints the digest. No docker daemon exists here, so the
success path runs against a stand-in ``docker`` executable that records its arguments and writes
buildx's metadata file as buildx does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DIGEST = "sha256:" + "cd" * 32
FAKE_DOCKER = f"""#!{sys.executable}
import json, sys
args = sys.argv[1:]
with open({{log!r}}, "a") as log:
    log.write(json.dumps(args) + "\\n")
if args[:2] == ["buildx", "version"]:
    sys.exit({{buildx_rc}})
if args[:2] == ["buildx", "build"]:
    with open(args[args.index("--metadata-file") + 1], "w") as out:
        json.dump({{{{"containerimage.digest": "{DIGEST}", "image.name": args[args.index("--tag") + 1]}}}}, out)
"""


def llmfn(args: list[str], path: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": path, "PYTHONPATH": str(ROOT)}
    env.pop("LLMFN_DEBUG", None)
    return subprocess.run([sys.executable, "-c", "from llmfn.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=120, env=env, cwd=cwd)  # fmt: skip


def fake_docker(tmp_path: Path, buildx_rc: int = 0) -> tuple[Path, Path]:
    bin_dir, log = tmp_path / "bin", tmp_path / "docker.log"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(FAKE_DOCKER.format(log=str(log), buildx_rc=buildx_rc))
    docker.chmod(0o755)
    return bin_dir, log


def test_without_docker_one_line_and_exit_2(tmp_path: Path) -> None:
    result = llmfn(["image", "build", "--tag", "repo/llmfn:1"], path=str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "docker is not installed" in result.stderr
    assert "Traceback" not in result.stderr


def test_without_buildx_one_line_and_exit_2(tmp_path: Path) -> None:
    bin_dir, _ = fake_docker(tmp_path, buildx_rc=1)
    result = llmfn(["image", "build", "--tag", "repo/llmfn:1"], path=str(bin_dir))
    assert result.returncode == 2 and "no buildx plugin" in result.stderr


def test_push_builds_for_amd64_and_prints_the_digest(tmp_path: Path) -> None:
    bin_dir, log = fake_docker(tmp_path)
    tag = "123456789012.dkr.ecr.us-east-1.amazonaws.com/llmfn-serve:0.1.0"
    result = llmfn(["image", "build", "--tag", tag, "--push"], path=str(bin_dir))
    assert result.returncode == 0, result.stderr
    assert f"digest: {DIGEST}" in result.stdout
    assert f"imageUri: 123456789012.dkr.ecr.us-east-1.amazonaws.com/llmfn-serve@{DIGEST}" in result.stdout
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    build = calls[-1]
    assert build[:2] == ["buildx", "build"] and build[-1] == "."
    options = dict(zip(build[2:-2:2], build[3:-2:2], strict=True))
    assert options == {"--file": "functions/image/Dockerfile", "--target": "gpu", "--platform": "linux/amd64",
                       "--tag": tag, "--metadata-file": options["--metadata-file"]}  # fmt: skip
    assert build[-2] == "--push"


def test_bad_flags_are_one_line(tmp_path: Path) -> None:
    bin_dir, _ = fake_docker(tmp_path)
    target = llmfn(["image", "build", "--tag", "repo/llmfn:1", "--target", "tpu"], path=str(bin_dir))
    assert target.returncode == 2 and "--target must be gpu or cpu" in target.stderr
    untagged = llmfn(["image", "build", "--tag", "repo/llmfn"], path=str(bin_dir))
    assert untagged.returncode == 2 and "REPOSITORY:TAG" in untagged.stderr
    elsewhere = llmfn(["image", "build", "--tag", "repo/llmfn:1"], path=str(bin_dir), cwd=tmp_path)
    assert elsewhere.returncode == 2 and "repository root" in elsewhere.stderr
