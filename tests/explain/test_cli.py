"""`vigil explain`: JSON and PNG from a real record through the real pipeline; bad input;
the shipped model on a real ventricular beat of MIT-BIH 119."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from explain.cli import main
from inference.beats import BeatCNNConfig, save_beat_model

pytestmark = pytest.mark.filterwarnings("ignore:Setting forward, backward hooks")

ROOT = Path(__file__).resolve().parents[2]
RECORD_119 = str(ROOT / "resources" / "demo" / "119")
V_BEATS_119_S = (6.91, 12.36, 21.41, 23.27, 25.14)  # reference V beats (119.atr)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory, cnn_classifier) -> Path:
    path = tmp_path_factory.mktemp("model") / "random.safetensors"
    save_beat_model(path, cnn_classifier.module, BeatCNNConfig(), {"trained_utc": "test"})
    return path


def test_cli_writes_the_explanation_and_its_picture(tmp_path, model_file, capsys):
    out_json, out_png = tmp_path / "e.json", tmp_path / "e.png"
    rc = main([RECORD_119, "--at", "12.4", "--json", str(out_json), "--png", str(out_png),
               "--model", str(model_file), "--context-s", "60"])  # fmt: skip
    assert rc == 0
    data = json.loads(out_json.read_text())
    for key in ("predicted", "probabilities", "summary", "segments", "attribution",
                "faithfulness", "latency_ms", "model_version", "time_s", "waveform_mv",
                "segment_bounds_s", "method", "record"):  # fmt: skip
        assert key in data
    assert {"deletion_auc", "random_deletion_auc", "infidelity"} <= set(data["faithfulness"])
    assert data["record"]["beat_time_s"] == pytest.approx(12.36, abs=0.15)
    # The explained inputs are those the pipeline classified.
    assert data["record"]["pipeline_probability_gap"] < 1e-3
    assert data["summary"] in capsys.readouterr().out
    png = out_png.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000


@pytest.mark.parametrize(
    "args",
    [
        ["--at", "99999"],
        ["--at", "10", "--lead", "5"],
        ["--at", "10", "--model", "/nonexistent/model.safetensors"],
    ],
)
def test_cli_refuses_bad_input(args, tmp_path, model_file):
    full = [RECORD_119, "--json", str(tmp_path / "e.json"), *args]
    if "--model" not in args:
        full += ["--model", str(model_file)]
    assert main(full) == 2
    assert not (tmp_path / "e.json").exists()


def test_cli_refuses_a_missing_record(tmp_path, model_file):
    rc = main([str(tmp_path / "nope"), "--at", "1", "--json", str(tmp_path / "e.json"),
               "--model", str(model_file)])  # fmt: skip
    assert rc == 2


def test_shipped_model_puts_the_evidence_of_a_v_beat_on_its_qrs(tmp_path, shipped_model):
    # The beat's own waves; "previous" (the end of the beat before, which an early
    # beat brings into the window) carries the prematurity evidence instead.
    waveform = ("P", "PR", "QRS", "ST", "T", "other")
    ratios = []
    for at in V_BEATS_119_S[:3]:
        out = tmp_path / f"{at}.json"
        assert main([RECORD_119, "--at", str(at), "--json", str(out), "--context-s", "60"]) == 0
        data = json.loads(out.read_text())
        assert data["predicted"] == "V", data["summary"]
        shares = data["segments"]
        assert max(waveform, key=shares.get) == "QRS", shares
        assert shares["QRS"] >= 0.25
        assert data["measurements"]["qrs_ms"] >= 120 and not data["measurements"]["p_present"]
        f = data["faithfulness"]
        ratios.append(f["deletion_auc"] / f["random_deletion_auc"])
    assert np.mean(ratios) <= 0.6
