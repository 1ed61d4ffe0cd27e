"""Runs and bundled models read into one kind of comparison row."""

from __future__ import annotations

import json
import shutil

from core.compare import bundled_entry, compared_models
from core.predict import bundled_models


def test_runs_come_first_then_every_bundled_model(fake_runs_dir):
    entries = compared_models()
    kinds = [entry.kind for entry in entries]
    assert kinds == ["run"] * 2 + ["bundled"] * len(bundled_models())
    run = entries[0]
    assert run.model_path == fake_runs_dir / run.model_id / "best.keras"
    assert run.best_at.startswith("epoch ") and run.metrics and "val_accuracy" in run.metrics[0]


def test_a_bundled_model_reads_its_card(tmp_path):
    default = bundled_models()[0]
    card = json.loads(default.with_suffix(".json").read_text())
    entry = bundled_entry(default)
    assert entry.model_id == f"bundled-{default.stem}" and entry.name == f"{default.stem} (bundled)"
    assert entry.config == card["config"] and entry.architecture == card["architecture"]
    assert entry.training_seconds == card["training"]["seconds"]
    assert [row["val_accuracy"] for row in entry.metrics] == [row["val_accuracy"] for row in card["accuracy_vs_training_time"]]
    assert entry.test_results["PublicTest"]["none"] == card["evaluation"]["PublicTest"]["accuracy"]
    checkpoint = card.get("checkpoint") or {}
    if checkpoint.get("kind") == "averaged":  # the shipped default is an average: its own validation figure
        assert entry.best_val_accuracy == checkpoint["val_accuracy"] and entry.best_at.startswith("averaged epochs")
    else:
        assert entry.best_val_accuracy == card["training"]["best_val_accuracy"]


def test_a_bundled_model_with_a_broken_card_is_still_listed(tmp_path):
    model = tmp_path / "mine.keras"
    shutil.copyfile(bundled_models()[0], model)
    model.with_suffix(".json").write_text("{not json")
    entry = bundled_entry(model)
    assert entry.name == "mine (bundled)" and entry.model_path == model
    assert entry.best_val_accuracy is None and entry.metrics == [] and entry.test_results == {} and entry.config == {}
    model.with_suffix(".json").write_text(json.dumps({"training": {"epochs": "many", "seconds": True},
                                                      "accuracy_vs_training_time": [{"epoch": 1}, "x"]}))
    entry = bundled_entry(model)
    assert entry.epochs_done == 0 and entry.training_seconds == 0.0 and entry.metrics == []
