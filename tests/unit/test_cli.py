"""The CLI explains itself and generates drawings."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from cli.app import app

runner = CliRunner()


def test_help_explains_each_command() -> None:
    for cmd, words in (("synth", "ground truth"), ("eval", "value_f1")):
        result = runner.invoke(app, [cmd, "--help"])
        assert result.exit_code == 0
        assert words in result.output


def test_synth_writes_requested_drawings(tmp_path: Path) -> None:
    result = runner.invoke(app, ["synth", "--n", "2", "--seed", "3", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "truth").glob("*.json"))) == 2
    assert (tmp_path / "data.yaml").is_file()


def test_synth_rejects_nonsense_counts(tmp_path: Path) -> None:
    result = runner.invoke(app, ["synth", "--n", "0", "--out", str(tmp_path)])
    assert result.exit_code != 0


def test_a_folder_is_sorted_by_content_not_by_name(tmp_path: Path) -> None:
    """A renamed upload is processed; a corrupt file named like a drawing fails later with its
    reason; anything else is skipped and said to be skipped, never silently."""
    import io

    from PIL import Image

    from cli.app import expand_inputs

    buf = io.BytesIO()
    Image.new("L", (64, 64), 255).save(buf, format="PNG")
    (tmp_path / "upload-3f2a.dat").write_bytes(buf.getvalue())  # a PNG under another name
    (tmp_path / "sheet.PNG").write_bytes(buf.getvalue())
    (tmp_path / "broken.pdf").write_bytes(b"not a pdf at all")  # named like a drawing: reported as failed
    (tmp_path / "empty.bin").write_bytes(b"")  # empty: reported as failed, not skipped
    (tmp_path / "README.txt").write_text("drawings for job 17\n")
    (tmp_path / "sub").mkdir()  # folders inside are not walked
    found, skipped = expand_inputs([str(tmp_path)])
    assert [p.name for p in found] == ["broken.pdf", "empty.bin", "sheet.PNG", "upload-3f2a.dat"]
    assert [p.name for p in skipped] == ["README.txt"] and "text" in skipped[tmp_path / "README.txt"]


def test_labels_import_and_models_fit_refuse_with_reasons(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["labels", "import", str(tmp_path / "nope"), "--out", str(tmp_path / "out")])
    assert missing.exit_code == 2 and "does not exist" in missing.output
    (tmp_path / "src" / "labels").mkdir(parents=True)
    (tmp_path / "src" / "labels" / "a.json").write_text('{"shapes": [], "imageWidth": 10, "imageHeight": 10}')
    refused = runner.invoke(app, ["labels", "import", str(tmp_path / "src"), "--out", str(tmp_path / "out")])
    assert refused.exit_code == 2 and "no drawing" in refused.output and not (tmp_path / "out").exists()
    params = tmp_path / "params.yaml"
    params.write_text("train:\n  segmenter: {epochs: 1, epoch: 2}\n")
    bad = runner.invoke(app, ["models", "fit", "segmenter", "--out", str(tmp_path / "m"), "--params", str(params)])
    assert bad.exit_code == 2 and "unknown training parameter" in bad.output and "epoch" in bad.output
    unknown = runner.invoke(app, ["models", "fit", "nosuch", "--out", str(tmp_path / "m"), "--params", str(params)])
    assert unknown.exit_code == 2 and "unknown model" in unknown.output


def test_the_reader_asks_for_its_cad_splits_or_plain(tmp_path: Path) -> None:
    """`dimflow train reader` trains on both looks: a missing CAD split is named, with the way out."""
    (tmp_path / "data").mkdir()
    out = runner.invoke(app, ["train", "reader", "--data", str(tmp_path / "data")])
    assert out.exit_code == 2 and "cad_train has no crops" in out.output and "--plain" in out.output
    plain = runner.invoke(app, ["train", "reader", "--data", str(tmp_path / "data"), "--plain"])
    assert plain.exit_code == 2 and "train has no images/" in plain.output


def test_a_detector_trained_elsewhere_needs_only_the_validation_split(tmp_path: Path) -> None:
    """`--run-dir` brings the weights: no train/ split is asked for, the val/ split it is scored on is."""
    run = tmp_path / "detector-run"
    (run / "weights").mkdir(parents=True)
    (run / "weights" / "best.pt").write_bytes(b"")
    (tmp_path / "data" / "train").mkdir(parents=True)  # neither images/ here nor in val/
    out = runner.invoke(app, ["train", "detector", "--data", str(tmp_path / "data"), "--run-dir", str(run)])
    assert out.exit_code != 0
    assert "val has no images/" in out.output and "train has no images/" not in out.output


def test_a_run_trained_elsewhere_is_registered_with_the_data_its_run_json_names(tmp_path: Path) -> None:
    import json

    from dimflow.detect.train import DetectorParams
    from dimflow.lifecycle import _trained_elsewhere_on

    assert _trained_elsewhere_on(DetectorParams()) is None
    run = tmp_path / "detector-run"
    run.mkdir()
    assert _trained_elsewhere_on(DetectorParams(run_dir=str(run))) == "run:detector-run"
    (run / "run.json").write_text(json.dumps({"train_data": {"generator_seed": 101, "indices": "0..159",
                                                             "cad_share": 0.5}}))  # fmt: skip
    named = _trained_elsewhere_on(DetectorParams(run_dir=str(run)))
    assert named == "generated:cad_share=0.5,generator_seed=101,indices=0..159"
