"""core.wording: counts in sentences."""

from core.wording import counted


def test_counts_in_sentences_are_singular_or_plural():
    assert [counted(n, "face") for n in (0, 1, 2, 1500)] == ["0 faces", "1 face", "2 faces", "1,500 faces"]
    assert counted(1, "face id") == "1 face id" and counted(3, "face id") == "3 face ids"
    assert counted(2, "analysis", "analyses") == "2 analyses"
