"""``python -m llmfn`` is the same as the ``llmfn`` command."""

from llmfn.cli import main

main()
