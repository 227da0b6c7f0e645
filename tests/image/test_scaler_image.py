"""The scaler's own image (Dockerfile target ``scaler``): standard Lambda takes container images up to
10 GB uncompressed, which a CUDA + vLLM image passes; the scaler needs neither."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "functions" / "image" / "Dockerfile"
REQUIREMENTS = ROOT / "functions" / "image" / "scaler-requirements.txt"
HEAVY = ("torch", "vllm", "transformers", "numpy", "safetensors", "fastapi", "uvicorn", "httpx", "mangum",
         "huggingface_hub", "tencentcloud", "starlette")  # fmt: skip


def _scaler_stage() -> str:
    return DOCKERFILE.read_text().split(" AS scaler\n", 1)[1]


def test_the_scaler_target_installs_no_engine() -> None:
    stage = _scaler_stage()
    assert stage.startswith("ENV") and "FROM ${PYTHON_IMAGE} AS scaler" in DOCKERFILE.read_text()
    assert "vllm" not in stage.lower() and "torch" not in stage.lower()
    assert "COPY functions/image/scaler-requirements.txt" in stage
    assert 'ENTRYPOINT ["python", "-m", "awslambdaric"]' in stage
    assert 'CMD ["functions.scaler.handler.lambda_handler"]' in stage
    names = {
        Requirement(line).name for line in REQUIREMENTS.read_text().splitlines() if re.match(r"^\w", line)
    }
    assert names == {"pydantic", "tenacity", "boto3", "awslambdaric"}


_BLOCKED = """
import importlib.abc, json, sys
heavy = set(sys.argv[1].split(","))
class NotInTheScalerImage(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in heavy:
            raise ModuleNotFoundError(f"{name} is not in the scaler image")
sys.meta_path.insert(0, NotInTheScalerImage())
from functions.scaler.handler import lambda_handler
from functions.scaler.run import Scaler
from functions.scaler.settings import ScalerSettings
run = Scaler.from_settings(ScalerSettings.from_env())
print(json.dumps({"control": type(run.control).__name__}))
"""


def test_the_scaler_runs_without_the_serving_stack() -> None:
    """The AWS GPU scaler (handler, settings, Managed Instances control, S3 state) is built with every
    package the scaler image lacks blocked."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LLMFN_CLOUD": "aws", "LLMFN_FUNCTION": "f", "LLMFN_ALIAS": "live",
           "LLMFN_REGION": "us-east-1", "LLMFN_CLOUD_ENDPOINT": "http://127.0.0.1:9",
           "LLMFN_STATE_BUCKET": "b", "LLMFN_STATE_ENDPOINT": "http://127.0.0.1:9",
           "LLMFN_RESERVED_CAPACITY": "execution-environments", "AWS_ACCESS_KEY_ID": "x",
           "AWS_SECRET_ACCESS_KEY": "x", "LLMFN_POLICY_CONFIG": json.dumps({"max_reserved": 4})}  # fmt: skip
    result = subprocess.run([sys.executable, "-c", _BLOCKED, ",".join(HEAVY)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"control": "ManagedInstancesControl"}
