"""Writing a benchmark's results: ``results.json`` for programs, ``results.md`` (a table) for people."""
from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path


def markdown_table(rows: list[dict], empty: str = "(none)") -> list[str]:
    """The lines of a Markdown table of ``rows`` (columns: the first row's keys); ``empty``
    where there are no rows."""
    if not rows:
        return [empty]
    columns = list(rows[0])
    header = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return header + ["| " + " | ".join(str(row[c]) for c in columns) + " |" for row in rows]


def write_results(out: Path, title: str, description: str, rows: list[dict], extra: dict, footer: list[str]) -> str:
    """``results.json`` holds ``rows`` and ``extra``; ``results.md`` the title, the description, a table
    of ``rows`` (columns: the first row's keys) and ``footer`` lines. Returns the Markdown."""
    lines = [f"# {title}", "", description, "", *markdown_table(rows), "", *footer]
    return write_document(out, {"rows": rows, **extra}, lines)


def write_document(out: Path, data: dict, lines: list[str]) -> str:
    """``results.json`` holds ``data``, ``results.md`` the Markdown ``lines`` (for results that are
    more than one table). Returns the Markdown."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(data, indent=2) + "\n")
    markdown = "\n".join(lines) + "\n"
    (out / "results.md").write_text(markdown)
    return markdown


def commands_so_far(script: str, earlier: dict) -> list[str]:
    """The commands behind a results folder: those of the ``earlier`` results whose rows an
    ``--update`` run keeps, then this process's own (``script`` with its arguments); an earlier
    run of the very same command is dropped, since this one replaces every row it made."""
    command = " ".join([f".venv/bin/python {script}", *(shlex.quote(a) for a in sys.argv[1:])])
    return [*(c for c in earlier.get("commands", []) if c != command), command]


def reproduce_line(commands: list[str]) -> str:
    return "Reproduce: " + ", then ".join(f"`{c}`" for c in commands) + "."
