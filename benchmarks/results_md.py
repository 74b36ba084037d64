"""benchmarks/RESULTS.md holds one section per benchmark script; each run replaces its own
section and leaves the others, so the file always shows the latest run of each."""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")
HEAD = ("# Benchmark results\n\nEach section is written by the script it names; rerun the "
        "script to refresh it. Machine: the project's 2-core, 24 GiB machine.\n")


def replace_section(name: str, text: str, path: Path = RESULTS) -> None:
    """Put `text` between the markers of section `name`, appending the section if new."""
    start, end = f"<!-- section: {name} -->", f"<!-- end: {name} -->"
    body = path.read_text() if path.exists() else HEAD
    block = f"{start}\n{text.rstrip()}\n{end}"
    if start in body and end in body:
        before, rest = body.split(start, 1)
        after = rest.split(end, 1)[1]
        body = before + block + after
    else:
        body = body.rstrip() + "\n\n" + block + "\n"
    path.write_text(body)
