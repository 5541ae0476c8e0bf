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
