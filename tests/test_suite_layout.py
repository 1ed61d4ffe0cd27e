"""The suite's own layout: what the parallel run (``-n 2``) relies on."""

import re
from pathlib import Path

from tests.conftest import BROWSER_FILES

ROOT = Path(__file__).resolve().parents[1]
MARKED = re.compile(r"^(pytestmark = .*pytest\.mark\.browser|\s*@pytest\.mark\.browser)", re.MULTILINE)


def test_every_browser_test_file_runs_with_the_other_browser_tests():
    # conftest's scheduler puts BROWSER_FILES in one worker; a browser test elsewhere would run beside them.
    marked = sorted(path.relative_to(ROOT).as_posix() for path in (ROOT / "tests").rglob("test_*.py")
                    if MARKED.search(path.read_text()))
    assert marked, "no browser test found"
    assert [path for path in marked if not path.startswith(BROWSER_FILES)] == []
    for prefix in BROWSER_FILES:  # and the list names nothing that is gone
        assert any(path.startswith(prefix) for path in marked), prefix
