"""The README and the pages under docs/ stay short, timeless and linked right.

- the README has at most 200 lines;
- no page names an issue or pull request ("issue 17", "issues 15.5", "#17") or a time of
  day ("01:35 UTC"): history belongs in CHANGELOG.md;
- every relative link (Markdown links and images) of the README, the pages and the changelog
  leads to a file of the repository.

Prose is what is checked for issue numbers and times: fenced code blocks and inline code are
taken out first, so commands, colours and ports in code do not count.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
CHANGELOG = ROOT / "CHANGELOG.md"
PAGES = sorted((ROOT / "docs").rglob("*.md"))
TIMELESS = [README, *PAGES]  # the changelog is where issue numbers and times belong
LINKED = [README, *PAGES, CHANGELOG]

FENCED = re.compile(r"^[ \t]*(```|~~~).*?^[ \t]*\1[^\n]*$", re.DOTALL | re.MULTILINE)
INLINE_CODE = re.compile(r"(`+).+?\1", re.DOTALL)
HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)

ISSUE_WORD = re.compile(r"\b(?:issues?|pull\s+requests?|PRs?|tickets?)\s*(?:no\.?\s*)?#?\d+", re.IGNORECASE)
HASH_NUMBER = re.compile(r"(?<![\w&#/.-])#\d+(?![\w-])")
TIME_OF_DAY = re.compile(r"(?<![\d:.,])(?:[01]?\d|2[0-3]):[0-5]\d(?::[0-5]\d)?(?![\d:])")


def prose(text: str) -> str:
    """The text without fenced code, inline code, comments and link targets."""
    text = FENCED.sub("", text)
    text = HTML_COMMENT.sub("", text)
    text = INLINE_CODE.sub("", text)
    return LINK.sub(lambda m: m.group(0)[: m.group(0).rindex("](")], text)


def link_targets(text: str) -> list[str]:
    text = HTML_COMMENT.sub("", INLINE_CODE.sub("", FENCED.sub("", text)))
    return [m.group(1) for m in LINK.finditer(text)] + [m.group(1) for m in REFERENCE_LINK.finditer(text)]


def is_relative(target: str) -> bool:
    return not (target.startswith(("#", "/", "mailto:")) or re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I))


def name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_the_pages_are_found():
    assert README.is_file() and CHANGELOG.is_file()
    assert {
        "index.md",
        "app.md",
        "models.md",
        "codec.md",
        "training.md",
        "benchmarks.md",
        "architecture.md",
    } <= {p.name for p in PAGES}


def test_readme_has_at_most_200_lines():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; move detail into docs/"


@pytest.mark.parametrize("path", TIMELESS, ids=name)
def test_no_issue_numbers_or_times_of_day(path: Path):
    text = prose(path.read_text(encoding="utf-8"))
    found = [m.group(0) for m in ISSUE_WORD.finditer(text)]
    found += [m.group(0) for m in HASH_NUMBER.finditer(text)]
    found += [m.group(0) for m in TIME_OF_DAY.finditer(text)]
    assert not found, f"{name(path)} names issues or times of day {found}: history goes to CHANGELOG.md"


@pytest.mark.parametrize("path", LINKED, ids=name)
def test_relative_links_lead_to_files(path: Path):
    broken = []
    for target in link_targets(path.read_text(encoding="utf-8")):
        if not is_relative(target):
            continue
        file_part = target.split("#", 1)[0].split("?", 1)[0]
        if not (path.parent / file_part).resolve().is_file():
            broken.append(target)
    assert not broken, f"{name(path)} links to missing files: {broken}"


@pytest.mark.parametrize(
    ("text", "bad"),
    [
        ("fixed in issue 17", True),
        ("see Issue #17.", True),
        ("issues 15.5 and 18", True),
        ("as discussed in #28", True),
        ("met since 01:35 UTC", True),
        ("at 23:23", True),
        ("measured at 2026-11-27T01:38", True),
        ("colour `#ff0000` and `#123456`", False),
        ("the [section](app.md#options) and ratio 16:9", False),
        ("`--rdzv_endpoint host0:29500`", False),
        ("```\nissue 17 at 01:35\n```", False),
        ("q1 … q4 at 0.5 bpp; 2-core AMD EPYC; 3.9× faster", False),
    ],
)
def test_the_rules_themselves(text: str, bad: bool):
    plain = prose(text)
    hits = ISSUE_WORD.search(plain) or HASH_NUMBER.search(plain) or TIME_OF_DAY.search(plain)
    assert bool(hits) is bad
