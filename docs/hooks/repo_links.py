"""MkDocs hook: the pages may link to repository files outside ``docs/``.

The Markdown under ``docs/`` uses ordinary relative links to files elsewhere in the repository
(``../CHANGELOG.md``, ``../training/ROUNDS.md``, result files), so that the links work when the
files are read in a checkout. MkDocs only knows the files under ``docs/``; this hook

- adds every repository file that a page links to (and, for Markdown files, what they link to in
  turn) to the site under ``repo/``, keeping its path;
- rewrites each such link to its place in the site;
- turns a link of an added repository page that leads nowhere in the site (a folder, a missing
  file) into plain text, so that edits elsewhere cannot break ``mkdocs build --strict``; links of
  the pages under ``docs/`` stay as written, so that ``--strict`` still reports their mistakes;
- shows the Sphinx roles of the docstrings (``:func:`name```) as code and drops their
  ``.. code-block::`` lines (the indented block under one is shown as code anyway).

Nothing is fetched from anywhere; only files of this checkout are read.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

from mkdocs.structure.files import File, InclusionLevel

LINK = re.compile(r"(!?\[[^\]]*\]\()([^)\s]+)(\))")
FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.DOTALL | re.MULTILINE)
DIRECTIVE = re.compile(r"<p>\.\. code-block::[^<]*</p>\s*")
ROLE = re.compile(r":(?:mod|func|class|meth|attr|data|exc|obj|const):<code>~?\.?([^<]*)</code>")
PREFIX = "repo"

_added: dict[str, Path] = {}


def _root(config) -> Path:
    return Path(config.config_file_path).resolve().parent


def _docs(config) -> Path:
    return Path(config.docs_dir).resolve()


def _is_relative(target: str) -> bool:
    return not (target.startswith(("#", "/", "mailto:")) or "://" in target)


def _split(target: str) -> tuple[str, str]:
    path, _, fragment = target.partition("#")
    return path, ("#" + fragment if fragment else "")


def _prose(markdown: str):
    """Yield (is_prose, text) pieces: fenced code blocks are not prose."""
    start = 0
    for block in FENCE.finditer(markdown):
        yield True, markdown[start : block.start()]
        yield False, block.group(0)
        start = block.end()
    yield True, markdown[start:]


def _linked_files(source: Path, markdown: str) -> list[Path]:
    found = []
    for is_prose, text in _prose(markdown):
        if not is_prose:
            continue
        for match in LINK.finditer(text):
            path, _ = _split(match.group(2))
            if path and _is_relative(path):
                found.append((source.parent / path).resolve())
    return found


def _site_uri(path: Path, config) -> str | None:
    """Where a repository file lies in the site, or None when it is not there."""
    docs, root = _docs(config), _root(config)
    if path.is_relative_to(docs):
        return path.relative_to(docs).as_posix() if path.is_file() else None
    uri = f"{PREFIX}/{path.relative_to(root).as_posix()}" if path.is_relative_to(root) else None
    return uri if uri in _added else None


def on_files(files, config):
    """Add the repository files the pages link to, following the links of added Markdown files."""
    docs, root = _docs(config), _root(config)
    _added.clear()
    queue = [Path(page.abs_src_path) for page in files.documentation_pages()]
    while queue:
        source = queue.pop()
        for path in _linked_files(source, source.read_text(encoding="utf-8")):
            if not path.is_file() or path.is_relative_to(docs) or not path.is_relative_to(root):
                continue
            uri = f"{PREFIX}/{path.relative_to(root).as_posix()}"
            if uri in _added:
                continue
            _added[uri] = path
            files.append(
                File.generated(config, uri, abs_src_path=str(path), inclusion=InclusionLevel.NOT_IN_NAV)
            )
            if path.suffix == ".md":
                queue.append(path)
    return files


def on_page_markdown(markdown, page, config, files):
    """Point links to repository files at their copies in the site."""
    source = Path(page.file.abs_src_path).resolve()
    generated = page.file.src_uri in _added
    here = posixpath.dirname(page.file.src_uri)

    def rewrite(match: re.Match) -> str:
        path, fragment = _split(match.group(2))
        if not path or not _is_relative(path):
            return match.group(0)
        uri = _site_uri((source.parent / path).resolve(), config)
        if uri is None:
            if generated:  # a link of a repository page that the site cannot follow: its text only
                opening = match.group(1)
                return opening[opening.index("[") + 1 : -2]
            return match.group(0)
        return f"{match.group(1)}{posixpath.relpath(uri, here or '.')}{fragment}{match.group(3)}"

    return "".join(LINK.sub(rewrite, text) if prose else text for prose, text in _prose(markdown))


def on_page_content(html, page, config, files):
    """Sphinx roles in docstrings (``:func:`x```) read as code in the API pages; a
    ``.. code-block::`` line before an indented block (already shown as code) is dropped."""
    return ROLE.sub(r"<code>\1</code>", DIRECTIVE.sub("", html))
