"""Custodian layouts: a firm's custodian's own file, read as one of poise's canonical
formats through a small mapping file (TOML) the firm writes once per custodian.

```toml
kind = "positions"            # the canonical format the file becomes
skip_rows = 2                 # lines above the custodian's header (a title, a blank line)
negate = []                   # numeric columns whose sign the custodian writes the other way

[columns]                     # canonical column = the custodian's column
account_id = "Account Number"
as_of = "As Of"
security_id = "Symbol"
quantity = "Quantity"
price = "Price"

[values]                      # a canonical column the file lacks, the same on every row
# source = "schwab"

[dates]                       # how the custodian writes a date column (strptime)
as_of = "%m/%d/%Y"

[remove]                      # characters to take out of a column's values
quantity = ","
price = "$,"

[replace.security_id]         # a value the custodian writes → the value poise knows
"BRK/B" = "BRK.B"
```

Every row becomes one canonical row, in order; nothing is dropped or guessed here: a
value that cannot be read as the layout says (a date in another form) is passed on as
it was, and the canonical validation quarantines its row with the reason, as for any
file. Pure: text in, text out.
"""

from __future__ import annotations

import csv
import io
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from poise.domain.errors import ValidationError
from poise.ingest.formats import FORMATS

__all__ = ["Layout", "apply_layout", "read_layout"]


@dataclass(frozen=True, slots=True)
class Layout:
    kind: str
    columns: Mapping[str, str]
    values: Mapping[str, str] = field(default_factory=dict)
    dates: Mapping[str, str] = field(default_factory=dict)
    remove: Mapping[str, str] = field(default_factory=dict)
    replace: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    negate: frozenset[str] = frozenset()
    skip_rows: int = 0
    delimiter: str = ","

    def __post_init__(self) -> None:
        fmt = FORMATS.get(self.kind)
        if fmt is None:
            raise ValidationError(f"layout kind {self.kind!r}: one of {', '.join(FORMATS)}")
        named = set(self.columns) | set(self.values)
        unknown = named - set(fmt.names)
        if unknown:
            raise ValidationError(
                f"layout of {self.kind}: {', '.join(sorted(unknown))} is no column of the"
                f" {self.kind} format ({', '.join(fmt.names)})"
            )
        missing = fmt.required - named
        if missing:
            raise ValidationError(
                f"layout of {self.kind}: nothing fills the required {', '.join(sorted(missing))}"
            )
        for rule, columns in (("dates", self.dates), ("remove", self.remove),
                              ("replace", self.replace), ("negate", self.negate)):  # fmt: skip
            stray = set(columns) - set(self.columns)
            if stray:
                raise ValidationError(
                    f"layout: [{rule}] names {', '.join(sorted(stray))}, which [columns] does not"
                )
        if self.skip_rows < 0 or len(self.delimiter) != 1:
            raise ValidationError("layout: skip_rows is not negative, delimiter one character")


def read_layout(path: Path) -> Layout:
    """A layout file, checked against the format it names."""
    try:
        found: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValidationError(f"layout {path}: {exc}") from None
    try:
        return Layout(
            kind=str(found["kind"]),
            columns={str(k): str(v) for k, v in found.get("columns", {}).items()},
            values={str(k): str(v) for k, v in found.get("values", {}).items()},
            dates={str(k): str(v) for k, v in found.get("dates", {}).items()},
            remove={str(k): str(v) for k, v in found.get("remove", {}).items()},
            replace={
                str(k): {str(a): str(b) for a, b in v.items()}
                for k, v in found.get("replace", {}).items()
            },
            negate=frozenset(str(c) for c in found.get("negate", [])),
            skip_rows=int(found.get("skip_rows", 0)),
            delimiter=str(found.get("delimiter", ",")),
        )
    except KeyError:
        raise ValidationError(f"layout {path}: it names no kind") from None
    except (AttributeError, TypeError, ValueError) as exc:
        raise ValidationError(f"layout {path}: {exc}") from None


def _value(layout: Layout, name: str, raw: str) -> str:
    text = raw.strip()
    for char in layout.remove.get(name, ""):
        text = text.replace(char, "")
    text = layout.replace.get(name, {}).get(text, text)
    form = layout.dates.get(name)
    if form and text:
        try:
            text = datetime.strptime(text, form).date().isoformat()  # noqa: DTZ007 - a date
        except ValueError:
            return text  # as it was: validation quarantines its row, saying why
    if name in layout.negate and text:
        try:
            text = format(-Decimal(text), "f")
        except InvalidOperation:
            return text
    return text


def apply_layout(layout: Layout, data: bytes) -> bytes:
    """The custodian's file ``data`` as a canonical CSV of the layout's kind."""
    text = data.decode("utf-8-sig")
    lines = text.splitlines(keepends=True)[layout.skip_rows :]
    reader = csv.DictReader(io.StringIO("".join(lines)), delimiter=layout.delimiter)
    header = reader.fieldnames or []
    absent = sorted(set(layout.columns.values()) - set(header))
    if absent:
        raise ValidationError(
            f"the file has no column {', '.join(repr(a) for a in absent)} that the layout"
            f" reads (its columns: {', '.join(header)})"
        )
    names = [*layout.columns, *layout.values]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(names)
    for row in reader:
        writer.writerow(
            [_value(layout, name, row.get(source) or "") for name, source in layout.columns.items()]
            + list(layout.values.values())
        )
    return out.getvalue().encode("utf-8")
