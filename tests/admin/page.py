"""Read admin pages as a user sees them: table rows by column title, and a form's fields as a
browser would submit them."""

from __future__ import annotations

import html as entities
import re
from html.parser import HTMLParser


def text(html: str) -> str:
    """The visible text of an HTML fragment, whitespace collapsed."""
    return re.sub(r"\s+", " ", entities.unescape(re.sub(r"<[^>]+>", " ", html))).strip()


class _TableParser(HTMLParser):
    def __init__(self, table_id: str | None, table_class: str | None) -> None:
        super().__init__()
        self.table_id, self.table_class = table_id, table_class
        self.depth = 0  # >0 inside the table we want
        self.rows: list[list[str]] = []
        self.cell: list[str] | None = None
        self.template = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            if self.depth:
                self.depth += 1
            elif not self.rows and (
                (self.table_id is None and self.table_class is None)
                or (self.table_id and attrs.get("id") == self.table_id)
                or (self.table_class and self.table_class in (attrs.get("class") or "").split())
            ):
                self.depth = 1
        elif self.depth == 1 and tag == "tr":
            self.template = "empty-form" in (attrs.get("class") or "")  # a formset's blank template row
            if not self.template:
                self.rows.append([])
        elif self.depth == 1 and tag in ("td", "th") and self.rows and not self.template:
            self.cell = []

    def handle_endtag(self, tag):
        if tag == "table" and self.depth:
            self.depth -= 1
        elif self.depth == 1 and tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append(re.sub(r"\s+", " ", "".join(self.cell)).strip())
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def table(html: str, table_id: str | None = None, table_class: str | None = None) -> list[dict[str, str]]:
    """Rows of a table as {column title: cell text}; the first row holds the titles."""
    parser = _TableParser(table_id, table_class)
    parser.feed(html)
    rows = [row for row in parser.rows if row]
    if not rows:
        return []
    titles = [title.lower() for title in rows[0]]
    return [dict(zip(titles, row, strict=False)) for row in rows[1:]]


def changelist_rows(response) -> list[dict[str, str]]:
    return table(response.content.decode(), table_id="result_list")


def inline_rows(response, prefix: str) -> list[dict[str, str]]:
    """Rows of the tabular inline whose formset prefix is ``prefix`` (e.g. ``events``)."""
    html = response.content.decode()
    start = html.index(f'id="{prefix}-group"')
    return table(html[start:])


class _FormParser(HTMLParser):
    def __init__(self, form_id: str) -> None:
        super().__init__()
        self.form_id = form_id
        self.inside = False
        self.data: dict[str, list[str]] = {}
        self.select: str | None = None
        self.textarea: str | None = None

    def add(self, name, value):
        self.data.setdefault(name, []).append(value)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.inside = attrs.get("id") == self.form_id
        if not self.inside or not attrs.get("name") and tag != "option":
            return
        if tag == "input":
            kind = attrs.get("type", "text")
            if kind in ("submit", "button", "file"):
                return
            if kind in ("checkbox", "radio") and "checked" not in attrs:
                return
            self.add(attrs["name"], attrs.get("value", "on" if kind == "checkbox" else ""))
        elif tag == "select":
            self.select = attrs["name"]
        elif tag == "option" and self.select and "selected" in attrs:
            self.add(self.select, attrs.get("value", ""))
        elif tag == "textarea":
            self.textarea = attrs["name"]
            self.add(self.textarea, "")

    def handle_endtag(self, tag):
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self.select = None
        elif tag == "textarea":
            self.textarea = None

    def handle_data(self, data):
        if self.textarea:
            self.data[self.textarea][-1] += data.removeprefix("\n") if not self.data[self.textarea][-1] else data


def form_data(response, form_id: str) -> dict[str, list[str]]:
    """The fields of a form as a browser would post them, unchanged."""
    parser = _FormParser(form_id)
    parser.feed(response.content.decode())
    return parser.data


def form_row(html: str, field: str) -> str:
    """The visible text of the change form's row that shows ``field`` (with its label)."""
    start = html.index(f'<div class="form-row field-{field}')
    ends = [html.find(marker, start + 1) for marker in ('<div class="form-row', "</fieldset>")]
    return text(html[start : min(end for end in ends if end != -1)])
