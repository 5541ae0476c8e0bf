"""Promotion and rollback by hand, and a model's history, against a real (temporary) MLflow store:
the aliases move, `previous` follows, every move is recorded, and impossible moves say why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.app import app
from dimflow import registry
from dimflow.lifecycle import LifecycleError, history, promote, rollback

pytestmark = pytest.mark.integration
NAME = "drawing-segmenter"


@pytest.fixture
def store(local_registry: Path) -> Path:
    tmp_path = local_registry
    for n in (1, 2, 3):  # three versions, v1 champion (as bootstrap leaves it), v3 challenger
        folder = tmp_path / f"m{n}"
        folder.mkdir()
        (folder / "weights.bin").write_bytes(bytes([n]) * 64)
        registry.log_and_register(NAME, folder, {"n": n}, [], {"accuracy": 0.9 + n / 100}, f"data{n}",
                                  alias={1: registry.CHAMPION, 2: None, 3: registry.CHALLENGER}[n])  # fmt: skip
    return tmp_path


def aliases() -> dict[str, int]:
    return registry.model_record(NAME)[0]


def test_promote_then_roll_back_twice(store: Path) -> None:
    move = promote("segmenter", 3, by="ana", reason="better on the gate set")
    assert (move.version, move.replaced, move.action) == (3, 1, "promote")
    assert aliases() == {"champion": 3, "previous": 1}  # the challenger alias went with the promotion
    promote(NAME, 2, by="ana")
    assert aliases() == {"champion": 2, "previous": 3}
    back = rollback("segmenter", by="bo", reason="worse on real sheets")
    assert (back.version, back.replaced, back.action) == (3, 2, "rollback")
    assert aliases() == {"champion": 3, "previous": 1}  # what 3 replaced when it became champion
    rollback("segmenter", by="bo")
    assert aliases() == {"champion": 1}
    with pytest.raises(LifecycleError, match="no previous champion"):
        rollback("segmenter", by="bo")
    h = history("segmenter")
    assert [(m.action, m.replaced, m.version, m.by) for m in h["moves"]] == [
        ("promote", 1, 3, "ana"),
        ("promote", 3, 2, "ana"),
        ("rollback", 2, 3, "bo"),
        ("rollback", 3, 1, "bo"),
    ]
    assert [v["version"] for v in h["versions"]] == [1, 2, 3]
    assert h["versions"][0]["aliases"] == ["champion"]
    assert h["versions"][2]["metrics"]["accuracy"] == pytest.approx(0.93)
    assert h["versions"][1]["dataset"] == "data2" and "rolled_back_at" in h["versions"][1]["tags"]


def test_impossible_moves_say_why_and_change_nothing(store: Path) -> None:
    with pytest.raises(LifecycleError, match="no version 7"):
        promote("segmenter", 7, by="ana")
    with pytest.raises(LifecycleError, match="already the champion"):
        promote("segmenter", 1, by="ana")
    with pytest.raises(LifecycleError, match="unknown model 'tokenizer'"):
        promote("tokenizer", 1, by="ana")
    with pytest.raises(registry.RegistryError, match="not registered"):
        rollback("reader", by="ana")
    assert aliases() == {"champion": 1, "challenger": 3}
    assert history("segmenter")["moves"] == []


def test_the_cli_moves_records_and_shows(store: Path) -> None:
    run = CliRunner().invoke
    got = run(app, ["models", "promote", "segmenter", "2", "--reason", "trial"])
    assert got.exit_code == 0, got.output
    assert "promote drawing-segmenter: 1 -> 2" in got.output
    got = run(app, ["models", "history", "segmenter"])
    assert got.exit_code == 0 and "champion moves:" in got.output and "(trial)" in got.output
    assert json.loads(run(app, ["models", "history", "segmenter", "--json"]).output)["aliases"]["champion"] == 2
    got = run(app, ["models", "rollback", "segmenter"])
    assert got.exit_code == 0 and "rollback drawing-segmenter: 2 -> 1" in got.output
    got = run(app, ["models", "rollback", "segmenter"])
    assert got.exit_code != 0 and "no previous champion" in got.output
    from service.audit import AuditLog, audit_url

    actions = [(e["action"], e["detail"]) for e in AuditLog(audit_url()).tail(10)]
    assert [a for a, _ in actions] == ["models.promote", "models.rollback"]
    assert "1 -> 2" in actions[0][1]
