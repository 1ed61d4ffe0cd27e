"""TensorFlow's start-up notices stay off the command line's stderr; other stderr output does not."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from core.quiet_import import drop_startup_noise

REPO_ROOT = Path(__file__).resolve().parents[2]
# What `import tensorflow` printed on this machine (TF 2.21, CPU only) with TF_CPP_MIN_LOG_LEVEL=3, twice over.
NOISE = (
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    "I0000 00:00:1796384970.712349   11534 port.cc:153] oneDNN custom operations are on. You may see slightly "
    "different numerical results due to floating-point round-off errors from different computation orders. "
    "To turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.\n"
    "I0000 00:00:1796384970.712724   11534 cudart_stub.cc:31] Could not find cuda drivers on your machine, "
    "GPU will not be used.\n"
)


def test_only_the_startup_notices_are_dropped():
    real = "E0000 00:00:1.0   11 session.cc:12] real failure\nTraceback (most recent call last):\n"
    later = ("I0000 00:00:1796386096.271863    5565 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use "
             "available CPU instructions in performance-critical operations.\n"
             "To enable the following instructions: AVX2 AVX512F AVX512_VNNI AVX512_BF16 FMA, in other operations, "
             "rebuild TensorFlow with the appropriate compiler flags.\n"
             "E0000 00:00:1796386107.282987    5565 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: "
             "Failed call to cuInit: UNKNOWN ERROR (303)\n")
    assert drop_startup_noise(NOISE + real + NOISE + later) == real


@pytest.mark.parametrize("asked_first", [False, True], ids=["import", "find_spec-then-import"])
def test_the_cli_hook_filters_descriptor_2_while_tensorflow_is_imported(tmp_path, asked_first):
    # asked_first: `python -m core predict` asks importlib.util.find_spec("tensorflow") (core.light) before the
    # import; the hook used to drop out on that question and let the import print (walk s12).
    # A stand-in `tensorflow` that writes like the real one: straight to file descriptor 2, not via sys.stderr.
    package = tmp_path / "tensorflow"
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent(f"""
        import os, sys
        os.write(2, {NOISE.encode()!r})
        os.write(2, b"a real problem the user must see\\n")
        print("a Python warning on sys.stderr", file=sys.stderr)
    """))
    script = ("from core.quiet_import import install_quiet_tensorflow_import\n"
              "install_quiet_tensorflow_import()\n"
              + ("import importlib.util; assert importlib.util.find_spec('tensorflow') is not None\n" if asked_first else "")
              + "import tensorflow\n"
              "import os; os.write(2, b'after the import\\n'); print('stdout untouched')\n")
    env = {"PYTHONPATH": f"{tmp_path}:{REPO_ROOT}", "PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "stdout untouched\n"
    assert done.stderr == "a real problem the user must see\na Python warning on sys.stderr\nafter the import\n"

    unhooked = subprocess.run([sys.executable, "-c", "import tensorflow"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=60)
    assert "oneDNN" in unhooked.stderr  # the stand-in does print the notices when nothing filters them


def test_the_retracing_notice_is_dropped_and_other_tensorflow_warnings_pass():
    """Review s21: three models in `predict` printed two paragraphs of "triggered tf.function retracing"."""
    import logging

    from core.quiet_import import install_quiet_tensorflow_import

    install_quiet_tensorflow_import()
    log = logging.getLogger("tensorflow")
    notice = log.makeRecord("tensorflow", logging.WARNING, __file__, 1,
                            "5 out of the last 5 calls to <function f> triggered tf.function retracing. Tracing is "
                            "expensive ...", None, None)
    other = log.makeRecord("tensorflow", logging.WARNING, __file__, 1, "something else went wrong", None, None)
    assert not log.filter(notice) and log.filter(other)
