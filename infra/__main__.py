"""Entry point Pulumi runs (``main: infra/`` in Pulumi.yaml): the stack's cloud is picked from config."""

import sys
from pathlib import Path

# Pulumi runs this file with infra/ on sys.path; the repository root holds infra, layers, scaling.
_REPO_ROOT = str(Path(__file__).resolve().parent.parent)
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

from infra.program import main  # noqa: E402

main()
