"""Render stage: one jinja2 environment (autoescaped HTML, strict undefined) turning views into text (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2


def shipped_templates_dir() -> Path:
    """The templates that come with the install: inside the wheel, or at the top of a source checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "templates", here.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("journal_relay's templates folder is missing from this install")


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str | None


class Renderer:
    """Renders `<name>.subject.txt`, `<name>.txt` and (when present) `<name>.html`.

    A practice's folder comes first, so any single template can be overridden.
    """

    def __init__(self, practice_dir: Path | None = None) -> None:
        folders = [str(practice_dir)] if practice_dir is not None else []
        folders.append(str(shipped_templates_dir()))
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(folders),
            autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        self._env.filters["local"] = _local_time

    def render(self, name: str, view: Mapping[str, Any]) -> Rendered:
        subject = " ".join(self._env.get_template(f"{name}.subject.txt").render(view).split())
        text = self._env.get_template(f"{name}.txt").render(view)
        try:
            html_template = self._env.get_template(f"{name}.html")
        except jinja2.TemplateNotFound:
            html = None
        else:
            html = html_template.render(view)
        return Rendered(subject=subject, text=text, html=html)


def _local_time(value: Any, zone: str, fmt: str = "%a %d %b %Y, %H:%M") -> str:
    from zoneinfo import ZoneInfo

    return str(value.astimezone(ZoneInfo(zone)).strftime(fmt))
