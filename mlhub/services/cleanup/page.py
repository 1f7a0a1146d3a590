"""The HTML page a browser gets for a cleanup run or its preview (a dry run)."""

from __future__ import annotations

import html
from typing import Any


def _rows(actions: list[dict[str, Any]]) -> str:
    if not actions:
        return "<p>nothing</p>"
    cells = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape(str(a.get(k, '')))}</td>" for k in ("kind", "name", "user", "reason"))
        + "</tr>"
        for a in actions
    )
    return f"<table border=1 cellpadding=4><tr><th>kind</th><th>name</th><th>user</th><th>reason</th></tr>{cells}</table>"


def report_page(report: dict[str, Any], xsrf: str) -> str:
    """The report of one run; a preview carries the form that runs it (POST with ``_xsrf``)."""
    kind = html.escape(report["kind"])
    preview = report["dry_run"]
    title = f"Cleanup of {kind}: " + ("preview, nothing removed yet" if preview else "done")
    errors = "".join(f"<li>{html.escape(str(e))}</li>" for e in report["errors"])
    form = (
        f'<form method="post"><input type="hidden" name="_xsrf" value="{html.escape(xsrf)}">'
        f'<button type="submit" id="run">Remove these now</button></form>'
        if preview
        else ""
    )
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{title}</title></head><body>
<h1>{title}</h1>
<h2>{"A run would remove" if preview else "Removed"}</h2>{_rows(report["removed"])}
{form}
<h2>Kept</h2>{_rows(report["kept"])}
{f"<h2>Errors</h2><ul>{errors}</ul>" if errors else ""}
</body></html>"""
