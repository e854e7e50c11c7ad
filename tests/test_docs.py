"""The docs stay inside the repository: no link or mention of anything outside it, no relative link
to a file that does not exist, and every metric section of docs/metrics.md names the code that
computes it and the tests that pin it (both must exist)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted([*(ROOT / "docs").glob("*.md"), ROOT / "README.md"])
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)[^)]*\)")
AUTOLINK = re.compile(r"<([a-z][a-z0-9+.-]*:[^>\s]+)>", re.IGNORECASE)
# Files and folders that only existed outside this repository.
OUTSIDE = re.compile(r"METRICS\.md|STACK_NOTES|\bshared/|(?<![\w/])evolution/")


def _rel(doc: Path) -> str:
    return doc.relative_to(ROOT).as_posix()


@pytest.mark.parametrize("doc", DOCS, ids=_rel)
def test_no_link_or_mention_leaves_the_repository(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    problems = []
    for target in [*LINK.findall(text), *AUTOLINK.findall(text)]:
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):
            problems.append(f"external link {target}")
            continue
        path = target.split("#", 1)[0]
        if not path:
            continue  # an anchor on the same page
        resolved = (doc.parent / path).resolve()
        if not resolved.is_relative_to(ROOT):
            problems.append(f"link outside the repository {target}")
        elif not resolved.exists():
            problems.append(f"link to a missing file {target}")
    problems += [
        f"mention of {m.group(0)!r} (line {text.count(chr(10), 0, m.start()) + 1})" for m in OUTSIDE.finditer(text)
    ]
    assert problems == []


def _sections(text: str) -> dict[str, str]:
    parts = re.split(r"^## (.+)$", text, flags=re.MULTILINE)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts), 2)}


def test_every_metric_section_names_its_code_and_its_tests() -> None:
    sections = _sections((ROOT / "docs" / "metrics.md").read_text(encoding="utf-8"))
    assert len(sections) >= 8
    for title, body in sections.items():
        flat = " ".join(body.split())
        computed = re.search(r"Computed in: (.*?)(?:Pinned by:|$)", flat)
        pinned = re.search(r"Pinned by: (.*)$", flat)
        assert computed and pinned, f"§ {title} does not say where it is computed and pinned"
        code = re.findall(r"`([\w/.-]+\.(?:sql|py))`", computed.group(1))
        tests = re.findall(r"`(tests/[\w/.-]+\.py)(?:::(\w+))?`", pinned.group(1))
        assert code and tests, f"§ {title}: no file or no test named"
        for path in code:
            assert (ROOT / path).is_file(), f"§ {title}: {path} does not exist"
        for path, name in tests:
            assert (ROOT / path).is_file(), f"§ {title}: {path} does not exist"
            if name:
                assert re.search(rf"^def {name}\(", (ROOT / path).read_text(), re.MULTILINE), (
                    f"§ {title}: {path}::{name}"
                )
