"""Tables written as CSV for people to open in a spreadsheet."""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(table):
    """A copy of ``table`` (a ``pandas.DataFrame``) whose text cells cannot run as spreadsheet formulas.

    A text cell that starts with ``= + - @``, a tab or a carriage return gets
    a leading ``'``, which Excel and LibreOffice read as "this is text": a
    photo named ``=HYPERLINK("https://...")&B2.jpg`` would otherwise become a
    live formula in the downloaded CSV (CSV injection). Numbers, including
    negative ones, are left as they are.
    """
    from pandas.api.types import is_object_dtype, is_string_dtype

    safe = table.copy()
    for column in safe.columns:
        if is_object_dtype(safe[column]) or is_string_dtype(safe[column]):
            safe[column] = safe[column].map(
                lambda value: f"'{value}" if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value)
    return safe
