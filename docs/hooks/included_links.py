"""MkDocs hook: links of the files that pages include from outside docs/, made right there.

`docs/benchmarks.md` includes `benchmarks/RESULTS.md`, `docs/changelog.md` includes
`CHANGELOG.md`, and `docs/getting-started.md` blocks of `README.md` (pymdownx.snippets).
Their links are written relative to where those files live, so that they work there:
`../docs/caching.md` from `benchmarks/`, `docs/report.md` from the root. Included in a page
of `docs/`, the same link must read `caching.md`. Such a link, written in a page of `docs/`
itself, would lead nowhere, so rewriting every one is safe.
"""

from __future__ import annotations

import re
from typing import Any

from markdown import Extension, Markdown
from markdown.preprocessors import Preprocessor

# "](../docs/x.md" or "](docs/x.md" -> "](x.md"
TO_DOCS = re.compile(r"\]\((?:\.\./)?docs/")
# pymdownx.snippets includes at priority 32: rewrite what it included, after it.
PRIORITY = 31


class IncludedLinks(Preprocessor):
    def run(self, lines: list[str]) -> list[str]:
        return [TO_DOCS.sub("](", line) for line in lines]


class IncludedLinksExtension(Extension):
    def extendMarkdown(self, md: Markdown) -> None:
        md.preprocessors.register(IncludedLinks(md), "included_links", PRIORITY)


def on_config(config: Any, **kwargs: Any) -> Any:
    config.markdown_extensions.append(IncludedLinksExtension())
    return config
