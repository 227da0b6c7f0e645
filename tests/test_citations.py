"""Docstrings, comments and pages cite documents in the repository, never a file outside it.

The design notes the project was built from live outside the repository (``DESIGN.md`` beside the
checkout), so a citation of them leads a reader nowhere; the facts they cite are in README.md,
infra/README.md, scaling/README.md and docs/ (docs/sources.md: figures, prices, checkpoint facts).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUTSIDE = "DESIGN.md"
# tracked files meant to name it: only this test, which says what it forbids
MAY_NAME_OUTSIDE = frozenset({"tests/test_citations.py"})
DOCS_CITATION = re.compile(r"(?<![\w/.-])docs/[\w./-]+\.md")


def _tracked_text_files() -> dict[str, str]:
    """Every tracked file of the checkout that reads as UTF-8 text, path -> text."""
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, text=True, check=False
    )
    assert listed.returncode == 0, f"the citation checks read `git ls-files`: {listed.stderr.strip()}"
    texts: dict[str, str] = {}
    for name in filter(None, listed.stdout.split("\0")):
        path = ROOT / name
        if not path.is_file():  # deleted in the work tree, not yet committed
            continue
        try:
            texts[name] = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
    return texts


def _citing(texts: dict[str, str], needle: str) -> list[str]:
    return [
        f"{name}:{number}"
        for name, text in sorted(texts.items())
        if name not in MAY_NAME_OUTSIDE
        for number, line in enumerate(text.splitlines(), 1)
        if needle in line
    ]


def test_no_tracked_file_cites_the_design_notes_outside_the_repository() -> None:
    texts = _tracked_text_files()
    assert "README.md" in texts  # the listing works: the check is not vacuous
    assert _citing(texts, OUTSIDE) == [], (
        f"cite README.md, infra/README.md, scaling/README.md or a docs/ page instead of {OUTSIDE}"
    )


def test_the_checker_finds_a_citation_line_by_line() -> None:
    texts = {
        "scaling/x.py": f'"""Batch 8 ({OUTSIDE})."""\nA = 1\n',
        "tests/test_citations.py": OUTSIDE,
        "README.md": "fine",
    }
    assert _citing(texts, OUTSIDE) == ["scaling/x.py:1"]


def test_every_cited_docs_page_exists() -> None:
    """A docstring's ``docs/<page>.md`` names a page that is in the repository."""
    texts = _tracked_text_files()
    cited = {match.group(0) for text in texts.values() for match in DOCS_CITATION.finditer(text)}
    assert "docs/sources.md" in cited
    missing = sorted(page for page in cited if page not in texts)
    assert missing == [], f"cited but not in the repository: {missing}"
