"""Multi-device and mixed-precision training on CPU.

No GPU here, so TensorFlow's CPU is split into two logical devices and
``tf.distribute.MirroredStrategy`` is pointed at them: the same replica
split, gradient all-reduce and metric reduction as on two GPUs. Each run is
a fresh Python process, because logical devices and the global dtype policy
can be set only once per process.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from core.distribute import cpu_has_native_bf16, multiworker_task, resolve_precision, trim_for_replicas, validation_batch_size

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import functools, json, sys
    from pathlib import Path

    if {jax}:
        # The GPU machines have JAX but no TensorFlow: prove this path never imports it.
        class NoTensorFlow:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "tensorflow":
                    raise ImportError("tensorflow is blocked in this test")
        sys.meta_path.insert(0, NoTensorFlow())
    elif {two_devices}:
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        tf.distribute.MirroredStrategy = functools.partial(tf.distribute.MirroredStrategy, devices=["/cpu:0", "/cpu:1"])
    sys.path.insert(0, {tests!r})
    from test_train import tiny_config, write_fer_csv
    from core.train import prepare_run, run_training
    from core import runs

    folder = Path({folder!r})
    data = write_fer_csv(folder / "fer2013.csv", per_class=12)
    run_dir = prepare_run(tiny_config(data, **json.loads({overrides!r})), folder / "runs")
    lines = []
    status = run_training(run_dir, echo=lines.append)
    print(json.dumps({{"state": status.state, "message": status.message, "lines": lines,
                      "metrics": runs.read_metrics(run_dir), "run": str(run_dir),
                      "tensorflow_imported": "tensorflow" in sys.modules}}))
""")


def train_in_fresh_process(tmp_path: Path, overrides: dict, *, two_devices: bool = False, jax: bool = False,
                           env: dict | None = None) -> dict:
    """Run the tiny training run in a new interpreter; ``jax`` uses KERAS_BACKEND=jax with TensorFlow blocked."""
    script = SCRIPT.format(two_devices=two_devices, jax=jax, tests=str(ROOT / "tests" / "core"), folder=str(tmp_path),
                           overrides=json.dumps(overrides))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    if jax:
        env["KERAS_BACKEND"] = "jax"
        if two_devices:  # two CPU devices for XLA, as two GPUs would be
            env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2").strip()
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_validation_batches_split_evenly_over_replicas():
    assert validation_batch_size(2872, 1) == 256
    assert validation_batch_size(3589, 2) == 256
    assert validation_batch_size(3589, 3) == 255
    assert validation_batch_size(7, 2) == 4  # 2 + 2, then 2 + 1 (6 would leave 1 image: one replica empty)
    assert validation_batch_size(2872, 8) == 256 and 2872 % 256 >= 8
    for replicas in (2, 3, 4):
        # From 4 images per replica up there is always such a size (5 images on 2 replicas has none).
        for images in range(4 * replicas, 600):
            size = validation_batch_size(images, replicas)
            assert size % replicas == 0 and (images % size == 0 or images % size >= replicas), (images, replicas, size)
    assert trim_for_replicas(77, 16, 2) == 77 and trim_for_replicas(65, 16, 2) == 64 and trim_for_replicas(65, 16, 1) == 65
    # JAX shards every batch equally: keep a multiple of the replica count.
    assert trim_for_replicas(77, 16, 2, even=True) == 76 and trim_for_replicas(77, 16, 4, even=True) == 76
    assert trim_for_replicas(77, 16, 1, even=True) == 77


@pytest.mark.slow
def test_mirrored_strategy_trains_over_two_devices(tmp_path):
    # 84 images: 77 to train (the last batch of 13 splits 7 + 6), 7 to validate (an uneven split).
    report = train_in_fresh_process(tmp_path, {"strategy": "mirrored", "average_from": 0.5}, two_devices=True)
    assert report["state"] == "finished", report["message"]
    assert any("2 replicas" in line for line in report["lines"]), report["lines"]
    # Weight averaging reads the replicated weights and writes its model outside the strategy.
    assert "weights of epochs 2-2 averaged" in report["message"]
    assert [row["epoch"] for row in report["metrics"]] == [1, 2]
    assert all(0.0 <= row["val_accuracy"] <= 1.0 and row["loss"] == row["loss"] for row in report["metrics"])


@pytest.mark.slow
def test_multiworker_strategy_runs_a_one_worker_cluster(tmp_path):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    tf_config = {"cluster": {"worker": [f"127.0.0.1:{port}"]}, "task": {"type": "worker", "index": 0}}
    report = train_in_fresh_process(tmp_path, {"strategy": "multiworker"}, env={"TF_CONFIG": json.dumps(tf_config)})
    assert report["state"] == "finished", report["message"]
    assert len(report["metrics"]) == 2


@pytest.mark.slow
def test_mixed_precision_run_saves_a_float32_output_model(tmp_path):
    report = train_in_fresh_process(tmp_path, {"precision": "mixed"})
    assert report["state"] == "finished", report["message"]
    config = json.loads((Path(report["run"]) / "config.json").read_text())
    assert config["resolved"]["precision"] == "mixed_float16"
    from core.model_io import load_model, predict_probabilities
    import numpy as np

    loaded = load_model(Path(report["run"]) / "best.keras")
    probabilities = predict_probabilities(loaded, np.full((2, 48, 48), 120, np.uint8))
    assert probabilities.dtype == np.float32 and np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-3)


needs_jax = pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed (requirements-dev.txt has it)")


@pytest.mark.slow
@needs_jax
def test_jax_data_parallel_trains_over_two_devices_without_tensorflow(tmp_path):
    # 84 images again: 77 training images and a last batch of 13 cannot be sharded over 2 devices
    # (jax.device_put refuses), nor can 7 validation images; both are cut to a multiple of 2.
    report = train_in_fresh_process(tmp_path, {"strategy": "mirrored", "average_from": 0.5}, two_devices=True, jax=True)
    assert report["state"] == "finished", report["message"]
    assert not report["tensorflow_imported"]
    assert "weights of epochs 2-2 averaged" in report["message"]  # batch-norm statistics recomputed under JAX too
    assert any("76 images" in line and "2 replicas" in line for line in report["lines"]), report["lines"]
    assert any("validating on 6 of the 7" in line for line in report["lines"]), report["lines"]
    assert [row["epoch"] for row in report["metrics"]] == [1, 2]
    assert all(0.0 <= row["val_accuracy"] <= 1.0 and row["loss"] == row["loss"] for row in report["metrics"])
    config = json.loads((Path(report["run"]) / "config.json").read_text())
    assert config["resolved"]["versions"]["backend"] == "jax" and "jax" in config["resolved"]["versions"]
    from core.model_io import load_model, predict_probabilities
    import numpy as np

    # The checkpoint written under JAX loads and predicts under this process' TensorFlow backend.
    loaded = load_model(Path(report["run"]) / "best.keras")
    probabilities = predict_probabilities(loaded, np.full((2, 48, 48), 120, np.uint8))
    assert probabilities.shape == (2, 7) and np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-3)


@pytest.mark.slow
@needs_jax
def test_jax_refuses_a_batch_size_it_cannot_shard(tmp_path):
    report = train_in_fresh_process(tmp_path, {"strategy": "mirrored", "batch_size": 15}, two_devices=True, jax=True)
    assert report["state"] == "failed"
    assert "batch size 15 cannot be split evenly over 2 devices" in report["message"]


AMD_BF16 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni\n"
INTEL_AMX = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f amx_tile amx_bf16\n"
NO_BF16 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_vnni\n"
ARM = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes\n"


@pytest.mark.parametrize("cpuinfo, expected", [(AMD_BF16, True), (INTEL_AMX, True), (NO_BF16, False), (ARM, False), ("", False)])
def test_native_bf16_is_read_from_the_cpu_flags(cpuinfo, expected):
    assert cpu_has_native_bf16(cpuinfo) is expected


@pytest.mark.parametrize("precision, gpus, native_bf16, policy", [
    ("auto", 0, True, "mixed_bfloat16"),
    ("auto", 0, False, "float32"),
    ("auto", 1, True, "mixed_float16"),
    ("auto", 2, False, "mixed_float16"),
    ("float32", 0, True, "float32"),
    ("mixed", 0, False, "mixed_float16"),
    ("bfloat16", 0, False, "mixed_bfloat16"),
])
def test_auto_precision_uses_bfloat16_only_where_the_cpu_has_it(precision, gpus, native_bf16, policy):
    assert resolve_precision(precision, gpus, native_bf16) == policy


def free_ports(count: int) -> list[int]:
    import socket

    sockets = [socket.socket() for _ in range(count)]
    try:
        for probe in sockets:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in sockets]
    finally:
        for probe in sockets:
            probe.close()


@pytest.mark.slow
def test_multiworker_strategy_trains_with_two_worker_processes(tmp_path):
    import numpy as np

    sys.path.insert(0, str(ROOT / "tests" / "core"))
    from test_train import write_fer_csv

    data = write_fer_csv(tmp_path / "fer2013.csv", per_class=12)
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    processes = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "TF_CONFIG": json.dumps(tf_config), "TF_CPP_MIN_LOG_LEVEL": "2",
               "FER_STUDIO_CACHE": str(tmp_path / f"cache{index}")}
        command = [sys.executable, "-m", "core", "train", "--data", str(data), "--model", "fer_vgg", "--param", "width=4",
                   "--param", "dense_units=16", "--epochs", "2", "--batch-size", "16", "--strategy", "multiworker",
                   "--out", str(tmp_path / "runs")]
        processes.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = []
    for process in processes:
        try:
            stdout, stderr = process.communicate(timeout=300)
        finally:
            for other in processes:
                if other.poll() is None and process.returncode is None:
                    other.kill()
        outputs.append((process.returncode, stdout, stderr))
    for returncode, stdout, stderr in outputs:
        assert returncode == 0, stdout[-2000:] + stderr[-3000:]
        assert "finished: 2 epochs" in stdout and "2 replicas" in stdout, stdout

    from core import runs
    from core.model_io import load_model

    listed = runs.list_runs(tmp_path / "runs")
    assert len(listed) == 1, [run.run_id for run in listed]  # the chief's run; worker 1 wrote under .workers/
    chief = listed[0].path
    assert [row["epoch"] for row in runs.read_metrics(chief)] == [1, 2]
    assert runs.read_status(chief).state == "finished"
    worker = Path(outputs[1][1].strip().splitlines()[-1])
    assert worker.parent == tmp_path / "runs" / ".workers" / "worker1", worker
    chief_model, worker_model = (load_model(folder / "last.keras").model for folder in (chief, worker))
    assert len(chief_model.trainable_weights) == len(worker_model.trainable_weights) == 29
    for mine, theirs in zip(chief_model.trainable_weights, worker_model.trainable_weights):
        # One model, kept in sync by the gradient all-reduce. (BatchNormalization's moving
        # statistics are not trainable: each worker averages its own share of the batches.)
        assert mine.path == theirs.path and np.array_equal(np.asarray(mine), np.asarray(theirs)), mine.path


@pytest.mark.parametrize("tf_config, expected", [
    ("", None),
    ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}', (1, 2)),
    ('{"cluster": {"worker": ["a:1"]}}', (0, 1)),
])
def test_multiworker_task_reads_tf_config(tf_config, expected):
    assert multiworker_task(tf_config) == expected


@pytest.mark.parametrize("tf_config", ["not json", '{"cluster": {}}', '{"cluster": {"worker": ["a:1"]}, "task": {"index": 3}}'])
def test_bad_tf_config_is_explained(tf_config):
    with pytest.raises(ValueError, match="TF_CONFIG"):
        multiworker_task(tf_config)


def test_the_compilation_cache_is_for_jax_only():
    from core.distribute import use_jax_compilation_cache

    assert use_jax_compilation_cache() is None  # this process runs the TensorFlow backend: nothing to keep


@needs_jax
def test_jax_keeps_its_compiled_programs_in_the_fer_studio_cache_unless_told_where(tmp_path):
    script = textwrap.dedent("""
        import json, os, jax
        from core.distribute import use_jax_compilation_cache
        folder = use_jax_compilation_cache()
        jax.jit(lambda a: a * 3 + 2)(jax.numpy.arange(5.0)).block_until_ready()
        print(json.dumps({"folder": str(folder), "entries": len(os.listdir(folder))}))
    """)
    env = {name: value for name, value in os.environ.items() if not name.startswith("JAX_PERSISTENT_CACHE")}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    env.update(KERAS_BACKEND="jax", FER_STUDIO_CACHE=str(tmp_path / "cache"))
    mine = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert mine.returncode == 0, mine.stderr[-2000:]
    report = json.loads(mine.stdout.strip().splitlines()[-1])
    # Even a program that compiles in milliseconds is kept: a run's start-up is hundreds of them.
    assert report["folder"] == str(tmp_path / "cache" / "jax") and report["entries"] >= 1
    env["JAX_COMPILATION_CACHE_DIR"] = str(tmp_path / "elsewhere")
    theirs = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert theirs.returncode == 0, theirs.stderr[-2000:]
    assert json.loads(theirs.stdout.strip().splitlines()[-1])["folder"] == str(tmp_path / "elsewhere")
