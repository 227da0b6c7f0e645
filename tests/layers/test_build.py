"""Reproducible layer and package builds: layout per cloud, fixed metadata, sha256 manifest, size limits."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import layers.build
from layers import (
    BuildRequest,
    LayerBuildError,
    PackageTooLargeError,
    build_packages,
    check_sizes,
    read_manifest,
    size_problems,
)
from layers.limits import LAMBDA_LIMITS, MB, ArtifactSize
from layers.requirements import requirements_from_pyproject
from tests.layers.packed import build_and_unpack, run_packed

REPO_ROOT = Path(__file__).resolve().parents[2]


def _site_packages(root: Path) -> Path:
    """A prepared site-packages dir: a package, a data file, an executable, a cache that must be skipped."""
    site = root / "site"
    (site / "tinydep" / "__pycache__").mkdir(parents=True)
    (site / "tinydep" / "__init__.py").write_text("VALUE = 1\n")
    (site / "tinydep" / "data.json").write_text('{"a": 1}\n')
    (site / "tinydep" / "__pycache__" / "__init__.cpython-311.pyc").write_bytes(b"\x00cache")
    tool = site / "tinydep" / "tool.sh"
    tool.write_text("#!/bin/sh\necho hi\n")
    tool.chmod(0o755)
    (site / "bin").mkdir()
    (site / "bin" / "tinydep").write_text("#!/host/specific/python\n")
    return site


def _build(cloud: str, out_dir: Path, site: Path | None) -> layers.build.BuildManifest:
    return build_packages(
        BuildRequest(cloud=cloud, out_dir=out_dir, source_root=REPO_ROOT, site_packages=site)
    )  # type: ignore[arg-type]


@pytest.mark.parametrize("cloud", ["aws"])
def test_built_twice_gives_the_same_sha256(cloud: str, tmp_path: Path) -> None:
    site = _site_packages(tmp_path)
    first = _build(cloud, tmp_path / "one", site)
    # new modification times and a different output dir must not change a byte
    for path in site.rglob("*"):
        os.utime(path, (1_700_000_000, 1_700_000_000))
    second = _build(cloud, tmp_path / "two", site)
    assert [a.sha256 for a in first.artifacts] == [a.sha256 for a in second.artifacts]
    assert len(first.artifacts) == 2
    assert (tmp_path / "one" / "manifest.json").read_bytes() == (
        tmp_path / "two" / "manifest.json"
    ).read_bytes()
    for artifact in first.artifacts:
        assert (tmp_path / "one" / artifact.file).read_bytes() == (
            tmp_path / "two" / artifact.file
        ).read_bytes()


@pytest.mark.parametrize("cloud", ["aws"])
def test_each_cloud_layout_and_fixed_metadata(cloud: str, tmp_path: Path) -> None:
    manifest = _build(cloud, tmp_path / "out", _site_packages(tmp_path))
    with zipfile.ZipFile(tmp_path / "out" / f"llmfn-runtime-layer-{cloud}.zip") as layer:
        names = layer.namelist()
        assert names == sorted(names)
        assert names == ["python/tinydep/__init__.py", "python/tinydep/data.json", "python/tinydep/tool.sh"]
        modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in layer.infolist()}
        assert modes["python/tinydep/tool.sh"] == 0o755 and modes["python/tinydep/data.json"] == 0o644
        assert {i.date_time for i in layer.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    with zipfile.ZipFile(tmp_path / "out" / f"llmfn-function-{cloud}.zip") as function:
        names = function.namelist()
        assert names == sorted(names)
        assert {n.split("/")[0] for n in names} == {
            "core",
            "functions",
            "preload",
            "scaling",
        }
        assert "scaling/plan.py" in names
        assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    assert manifest.cloud == cloud


def test_manifest_holds_the_sha256_of_every_zip_and_file(tmp_path: Path) -> None:
    manifest = _build("aws", tmp_path / "out", _site_packages(tmp_path))
    for artifact in manifest.artifacts:
        zip_path = tmp_path / "out" / artifact.file
        assert artifact.sha256 == hashlib.sha256(zip_path.read_bytes()).hexdigest()
        assert artifact.zipped_bytes == zip_path.stat().st_size
        with zipfile.ZipFile(zip_path) as archive:
            for entry in artifact.files:
                data = archive.read(entry.path)
                assert (entry.size, entry.sha256) == (len(data), hashlib.sha256(data).hexdigest())
            assert [f.path for f in artifact.files] == archive.namelist()
        assert artifact.unzipped_bytes == sum(f.size for f in artifact.files)
    assert read_manifest(tmp_path / "out") == manifest


def test_a_changed_or_missing_zip_is_refused(tmp_path: Path) -> None:
    _build("aws", tmp_path, None)
    zip_path = tmp_path / "llmfn-function-aws.zip"
    zip_path.write_bytes(zip_path.read_bytes() + b"x")
    with pytest.raises(LayerBuildError, match="does not match its sha256"):
        read_manifest(tmp_path)
    zip_path.unlink()
    with pytest.raises(LayerBuildError, match="is missing"):
        read_manifest(tmp_path)
    with pytest.raises(LayerBuildError, match="run `llmfn layer build` first"):
        read_manifest(tmp_path / "nowhere")


def test_size_limits_are_reported_with_sizes_and_the_way_out() -> None:
    over_zip = ArtifactSize("llmfn-runtime-layer-aws.zip", 60 * MB, 100 * MB)
    function = ArtifactSize("llmfn-function-aws.zip", 1 * MB, 160 * MB)
    problems = size_problems([over_zip, function], LAMBDA_LIMITS)
    assert problems[0] == (
        "llmfn-runtime-layer-aws.zip is 60.0 MB zipped, over AWS Lambda's 50.0 MB direct-upload limit "
        "(upload larger zips through S3, or deploy a container image (up to 10 GB))"
    )
    assert "unzip to 260.0 MB, over AWS Lambda's 250.0 MB limit" in problems[1]
    with pytest.raises(PackageTooLargeError, match=r"60\.0 MB zipped"):
        check_sizes([over_zip], LAMBDA_LIMITS)
    check_sizes([dataclasses.replace(function, unzipped_bytes=100 * MB)], LAMBDA_LIMITS)  # fits: no error


def test_a_build_over_the_limit_fails_after_writing_its_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny = dataclasses.replace(LAMBDA_LIMITS, direct_upload_zip_bytes=1000)
    monkeypatch.setitem(layers.build.LIMITS_BY_CLOUD, "aws", tiny)
    with pytest.raises(
        PackageTooLargeError, match=r"llmfn-function-aws.zip is \d+\.\d MB zipped, over AWS Lambda's 0.0 MB"
    ):
        _build("aws", tmp_path, None)
    assert (tmp_path / "manifest.json").is_file()


def test_bad_inputs_are_named(tmp_path: Path) -> None:
    with pytest.raises(LayerBuildError, match="cloud must be one of aws, got 'gcp'"):
        _build("gcp", tmp_path, None)
    with pytest.raises(LayerBuildError, match=r"requirements file '.*nope\.txt' does not exist"):
        build_packages(
            BuildRequest(
                cloud="aws", out_dir=tmp_path, source_root=REPO_ROOT, requirements=tmp_path / "nope.txt"
            )
        )
    with pytest.raises(LayerBuildError, match="package 'missing' not found"):
        build_packages(
            BuildRequest(cloud="aws", out_dir=tmp_path, source_root=REPO_ROOT, packages=("missing",))
        )


def _wheel(directory: Path) -> Path:
    """A minimal pure-Python wheel, so pip installs offline (--no-index --find-links)."""
    files = {
        "tinywheel/__init__.py": b"NAME = 'tinywheel'\n",
        "tinywheel-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: tinywheel\nVersion: 1.0\n",
        "tinywheel-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: llmfn-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(
        f"{name},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}\n"
        for name, data in files.items()
    )
    files["tinywheel-1.0.dist-info/RECORD"] = (record + "tinywheel-1.0.dist-info/RECORD,,\n").encode()
    path = directory / "tinywheel-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        for name, data in files.items():
            wheel.writestr(name, data)
    return path


def test_layer_from_requirements_with_pip_offline(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    _wheel(wheels)
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("tinywheel==1.0\n")
    request = BuildRequest(
        cloud="aws",
        out_dir=tmp_path / "one",
        source_root=REPO_ROOT,
        requirements=requirements,
        pip_args=("--no-index", "--find-links", str(wheels)),
    )
    first = build_packages(request)
    second = build_packages(dataclasses.replace(request, out_dir=tmp_path / "two"))
    layer = first.artifact("runtime_layer")
    assert layer is not None and layer.sha256 == second.artifact("runtime_layer").sha256  # type: ignore[union-attr]
    paths = [f.path for f in layer.files]
    assert "python/tinywheel/__init__.py" in paths
    assert "python/tinywheel-1.0.dist-info/METADATA" in paths


def test_pip_failure_is_reported(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("surely-not-a-package-llmfn==9.9\n")
    request = BuildRequest(
        cloud="aws",
        out_dir=tmp_path,
        source_root=REPO_ROOT,
        requirements=requirements,
        pip_args=("--no-index", "--find-links", str(tmp_path)),
    )
    with pytest.raises(LayerBuildError, match=r"pip could not install .*surely-not-a-package-llmfn"):
        build_packages(request)


def test_requirements_from_pyproject_extras_expand_self_references() -> None:
    serve = requirements_from_pyproject(REPO_ROOT / "pyproject.toml", ["serve"])
    assert "torch==2.13.0" in serve and "safetensors>=0.4.5" in serve  # preload pulled in by llmfn[preload]
    assert not any(r.startswith("llmfn") for r in serve)
    assert serve == sorted(set(serve))
    with pytest.raises(LayerBuildError, match="extra 'gpu' is not declared"):
        requirements_from_pyproject(REPO_ROOT / "pyproject.toml", ["gpu"])


def test_cloud_layer_takes_the_per_product_tencent_packages_not_the_whole_sdk() -> None:
    """Issue 11 defect 10: the whole tencentcloud-sdk-python is 167 MB unpacked (18.7 MB zipped); the
    scaler and promote use only the common, SCF and Cloud Monitor packages."""
    cloud = requirements_from_pyproject(REPO_ROOT / "pyproject.toml", ["cloud"])
    names = {re.split(r"[<>=!~; ]", r, maxsplit=1)[0] for r in cloud}
    assert {
        "tencentcloud-sdk-python-common",
        "tencentcloud-sdk-python-scf",
        "tencentcloud-sdk-python-monitor",
    } <= names
    assert "tencentcloud-sdk-python" not in names


def _llmfn(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llmfn", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_cli_builds_and_reports(tmp_path: Path) -> None:
    site = _site_packages(tmp_path)
    done = _llmfn(
        "layer", "build", "--cloud", "aws", "--site-packages", str(site), "--out", "out", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert "llmfn-runtime-layer-aws.zip" in done.stdout and "llmfn-function-aws.zip" in done.stdout
    assert "250.0 MB unzipped with layers" in done.stdout
    manifest = read_manifest(tmp_path / "out")
    assert manifest.artifact("runtime_layer").sha256[:16] in done.stdout  # type: ignore[union-attr]
    bad = _llmfn("layer", "build", "--cloud", "gcp", cwd=tmp_path)
    assert bad.returncode == 2
    assert "error: --cloud must be one of aws, got 'gcp'" in bad.stderr


def test_scf_zip_builds_are_refused_with_the_reason(tmp_path: Path) -> None:
    """SCF is image-only (its newest Python runtime is 3.10, llmfn needs 3.11; the stack refuses
    llmfn:buildDir there): the CLI and the library refuse an SCF zip instead of writing one the stack
    cannot deploy, and write nothing."""
    done = _llmfn("layer", "build", "--cloud", "scf", "--out", "out", cwd=tmp_path)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert lines[0].startswith("error: --cloud scf: SCF runs llmfn only as an image")
    assert "3.10" in lines[0] and "llmfn:imageUri" in lines[0]
    assert not (tmp_path / "out").exists()
    with pytest.raises(LayerBuildError, match="cloud 'scf': SCF runs llmfn only as an image"):
        _build("scf", tmp_path / "lib", None)
    assert not (tmp_path / "lib").exists()


@pytest.mark.parametrize(
    ("cloud", "imports"),
    [
        (
            "aws",
            "from functions.cloud.aws.entry import handler; from functions.scaler.handler import lambda_handler",
        ),
    ],
)
def test_function_package_holds_what_the_handlers_import(cloud: str, imports: str, tmp_path: Path) -> None:
    """Imported with only the zip's files of ours (the editable checkout blocked, tests/packed.py)."""
    unpacked = build_and_unpack(tmp_path)
    done = run_packed(unpacked, f"{imports}; import functions; print(functions.__file__)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(unpacked / "functions" / "__init__.py")  # not the checkout's
