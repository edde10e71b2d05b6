#!/usr/bin/env python3
"""Checks that every relative link in README.md and docs/*.md resolves to a file or folder of the
repository, and that every #anchor into a Markdown file names one of its headings.

usage: python3 scripts/check-doc-links.py      (exit status 1 and one line per broken link)

Links are Markdown links [text](target) and images ![alt](target); absolute URLs (scheme:) and
mailto: are skipped. Anchors follow GitHub's rule: lower case, punctuation other than - and _
dropped, spaces to -. Standard library only."""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
LINK = re.compile(r"!?\[[^\]]*\]\(([^()\s]+(?:\([^()\s]*\))?)(?:\s+\"[^\"]*\")?\)")


def anchors(path):
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    result, seen = set(), {}
    for heading in re.findall(r"^#{1,6}\s+(.*?)\s*#*\s*$", text, flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        result.add(slug if n == 0 else f"{slug}-{n}")
    return result


def main():
    files = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
    broken = 0
    for md in files:
        text = re.sub(r"```.*?```", "", md.read_text(encoding="utf-8"), flags=re.S)
        text = re.sub(r"`[^`\n]*`", "", text)
        for target in LINK.findall(text):
            if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target):
                continue
            path_part, _, anchor = target.partition("#")
            resolved = (md.parent / path_part).resolve() if path_part else md
            where = md.relative_to(ROOT)
            if not resolved.exists():
                print(f"{where}: {target}: no such file")
                broken += 1
            elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
                print(f"{where}: {target}: no heading #{anchor} in {resolved.relative_to(ROOT)}")
                broken += 1
    print(f"check-doc-links: {len(files)} files, {broken} broken link(s)")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
