"""The processing flows on a real (temporary) Prefect API with the shipped models in a temporary
MLflow store: contract-valid results, the cache on a second run (no model runs, nothing new
stored), and bad input refused with its reason while nothing already stored changes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from prefect.testing.utilities import prefect_test_harness

from dimflow import champions, stages
from dimflow.evaluate import score_dirs
from dimflow.lifecycle import bootstrap
from dimflow.schema import validate_json
from dimflow.settings import get_settings
from dimflow.synth.dataset import write_dataset
from tests.unit.test_inputs import BAD

BASELINE_DIR = get_settings().baseline_dir

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory):
    if not all((BASELINE_DIR / k / "checksums.json").is_file() for k in ("detector", "reader", "segmenter")):
        pytest.skip("the shipped baseline models are missing")
    root = tmp_path_factory.mktemp("process")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DIMFLOW_DATA_DIR", str(root / "data"))
        mp.delenv("DIMFLOW_MLFLOW_TRACKING_URI", raising=False)
        mp.delenv("DIMFLOW_STORAGE_URL", raising=False)
        mp.setenv("PREFECT_LOCAL_STORAGE_PATH", str(root / "prefect-results"))  # no cache from earlier sessions
        get_settings.cache_clear()
        mp.setattr(champions, "_MODELS", None)
        mp.setattr(champions, "_LOADED_FOR", {})
        bootstrap()
        write_dataset(root / "drawings", n=2, seed=4343)
        # a cold 2-core machine needs far longer than Prefect's default 20 s to start its API
        with prefect_test_harness(server_startup_timeout=180):
            yield root
    get_settings.cache_clear()


def _snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()
    }


@pytest.fixture
def model_calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How often each model stage ran, counted around the domain functions the tasks call."""
    calls = {"detect": 0, "read": 0, "segment": 0}

    def counted(name: str, fn):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return fn(*args, **kwargs)

        return wrapper

    for name, fn in (("detect", stages.detect), ("read", stages.read), ("segment", stages.segment)):
        monkeypatch.setattr(stages, name, counted(name, fn))
    return calls


def test_two_drawings_give_contract_results_and_a_rerun_runs_no_model_and_stores_nothing(
    env: Path, model_calls: dict[str, int]
) -> None:
    from flows.process import process_drawing

    store = env / "data" / "store"
    pred = env / "pred"
    pred.mkdir()
    images = sorted((env / "drawings" / "images").glob("*.png"))
    first_run = []
    for img in images:
        (done,) = process_drawing(str(img))
        assert done.written
        doc = json.loads((store / done.objects["json"]).read_text())
        validate_json(doc)
        assert doc["drawing_id"] == hashlib.sha256(img.read_bytes()).hexdigest()
        assert doc["models"]["detector"] == "drawing-detector/1" and doc["models"]["reader"] == "callout-reader/1"
        assert {"detect", "read", "segment", "merge"} <= set(doc["timings_ms"])  # computed, not from cache
        assert (doc["gdt"], doc["datums"], doc["surface_finish"]) == ([], [], [])  # the synthetic sheets have none
        assert doc["text_source"] == "ocr"  # a PNG: read by OCR
        assert doc["title_block"]["fields"].get("sheet") == "1 OF 1"  # the title block's cells, read by OCR
        assert (store / done.objects["png"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        rows = (store / done.objects["csv"]).read_text().splitlines()
        assert rows[0].startswith("balloon,") and len(rows) == len(doc["dimensions"]) + 1
        (pred / f"{img.stem}.json").write_text(json.dumps(doc))
        first_run.append(done)
    score = score_dirs(pred, env / "drawings" / "truth")
    assert score.value_f1 >= 0.8, score
    assert model_calls == {"detect": len(images), "read": len(images), "segment": len(images)}

    before = _snapshot(store)
    for img, first in zip(images, first_run, strict=True):
        (again,) = process_drawing(str(img))
        assert not again.written and again.objects == first.objects
        assert set(again.timings_ms) == set(first.timings_ms)  # the stored result, first timings and all
    assert model_calls == {"detect": len(images), "read": len(images), "segment": len(images)}  # all cached
    assert _snapshot(store) == before  # same objects, same bytes: nothing stored twice


def test_a_result_rebuilt_from_cached_stages_says_which_stages_were_cached(env: Path) -> None:
    """The flow passes the cache state of each stage to the merge: a stored result computed with
    every stage served from cache names them `<stage>_cached` (seen on a drawing whose stages are
    cached but whose result is new: its store copy removed)."""
    import shutil

    from flows.process import process_drawing

    img = sorted((env / "drawings" / "images").glob("*.png"))[0]
    (done,) = process_drawing(str(img))
    shutil.rmtree((env / "data" / "store" / done.objects["json"]).parent)
    (again,) = process_drawing(str(img))
    assert again.written
    assert set(again.timings_ms) == {"detect_cached", "read_cached", "segment_cached", "merge"}


@pytest.mark.parametrize("case", [c for c, (_, _, limits, _) in BAD.items() if limits is None])
def test_bad_input_fails_the_run_with_its_reason_and_changes_nothing(case: str, env: Path, tmp_path: Path) -> None:
    from flows.process import process_drawing

    filename, build, _, reason = BAD[case]
    path = tmp_path / filename
    path.write_bytes(build())
    store = env / "data" / "store"
    store.mkdir(parents=True, exist_ok=True)
    before = _snapshot(store)
    state = process_drawing(str(path), return_state=True)
    assert state.is_failed()
    exc = state.result(raise_on_failure=False)
    assert getattr(exc, "reason", None) == reason, exc
    assert filename in str(exc) and filename in (state.message or "")
    assert _snapshot(store) == before


def test_batch_reports_a_bad_file_and_finishes_the_others(env: Path, tmp_path: Path) -> None:
    from flows.process import process_batch

    bad = tmp_path / "notes.png"
    bad.write_text("not a drawing")
    good = sorted((env / "drawings" / "images").glob("*.png"))
    out = process_batch([str(good[0]), str(bad), str(good[1])])
    assert [d.page.source for d in out["done"]] == [str(good[0]), str(good[1])]
    assert all({"detect", "read", "segment", "merge"} <= {k.removesuffix("_cached") for k in d.timings_ms}
               for d in out["done"])  # fmt: skip
    assert list(out["failed"]) == [str(bad)] and "notes.png" in out["failed"][str(bad)]


def test_cli_process_writes_valid_outputs_and_exits_non_zero_on_a_bad_file(env: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cli.app import app

    img = sorted((env / "drawings" / "images").glob("*.png"))[0]
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / img.name).write_bytes(img.read_bytes())
    (tmp_path / "in" / "empty.png").write_bytes(b"")
    res = CliRunner().invoke(app, ["process", str(tmp_path / "in"), "--out", str(tmp_path / "out")])
    assert res.exit_code == 1, res.output
    assert "empty.png" in res.output
    validate_json(json.loads((tmp_path / "out" / f"{img.stem}.json").read_text()))
    assert (tmp_path / "out" / f"{img.stem}.png").is_file() and (tmp_path / "out" / f"{img.stem}.csv").is_file()
    assert not (tmp_path / "out" / "empty.json").exists()


def test_readme_first_command_processes_the_shipped_samples(
    env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's first line, after setup: `dimflow process ...` then `dimflow eval ...`."""
    import shlex

    from typer.testing import CliRunner

    from cli.app import app

    root = Path(__file__).resolve().parents[2]
    monkeypatch.chdir(root)  # the README's paths are relative to the checkout
    first = (root / "README.md").read_text().split("```bash\n", 1)[1].splitlines()[0]
    steps = [shlex.split(s.strip()) for s in first.split("&&")]
    assert steps[0] == ["./scripts/setup.sh"] and steps[1][0].endswith("dimflow") and steps[1][1] == "process"
    out = str(tmp_path / "out")
    process = [out if a == steps[1][steps[1].index("--out") + 1] else a for a in steps[1][1:]]
    res = CliRunner().invoke(app, process, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    written = sorted(Path(out).glob("*.json"))
    truth = sorted((root / "samples" / "truth").glob("*.json"))
    assert [p.name for p in written] == [p.name for p in truth]  # incl. plates.json and plates-p2.json
    for p in written:
        validate_json(json.loads(p.read_text()))
    evaluate = [out if a == steps[1][steps[1].index("--out") + 1] else a for a in steps[2][1:]]
    res = CliRunner().invoke(app, evaluate, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    value_f1 = float(res.output.split("value_f1=")[1].split()[0])
    assert value_f1 >= 0.9, res.output


def test_a_new_render_of_the_same_pdf_is_a_new_page_not_a_conflict(
    env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import Image

    from flows.process import process_drawing

    img = sorted((env / "drawings" / "images").glob("*.png"))[0]
    pdf = tmp_path / "sheet.pdf"
    Image.open(img).save(pdf, resolution=200.0)
    (first,) = process_drawing(str(pdf))
    monkeypatch.setenv("DIMFLOW_PDF_DPI", "150")
    get_settings.cache_clear()
    try:
        (second,) = process_drawing(str(pdf))
    finally:
        monkeypatch.delenv("DIMFLOW_PDF_DPI")
        get_settings.cache_clear()
    assert first.page.drawing_id == second.page.drawing_id and first.page.key != second.page.key
    assert second.page.width < first.page.width
    store = env / "data" / "store"
    assert (store / first.objects["json"]).is_file() and (store / second.objects["json"]).is_file()


def test_a_stored_upload_is_processed_by_its_key(env: Path) -> None:
    """A deployed run gets the key of an upload the service stored, not a path on the worker."""
    from dimflow.storage import LocalStorage
    from flows.process import process_drawing

    img = sorted((env / "drawings" / "images").glob("*.png"))[1]
    data = img.read_bytes()
    key = f"uploads/{hashlib.sha256(data).hexdigest()}/{img.name}"
    LocalStorage(env / "data" / "store").put(key, data, "image/png")
    (done,) = process_drawing(f"store:{key}")
    doc = json.loads((env / "data" / "store" / done.objects["json"]).read_text())
    assert doc["source"] == f"store:{key}" and doc["drawing_id"] == hashlib.sha256(data).hexdigest()
    assert doc["dimensions"]
    state = process_drawing("store:uploads/0000/absent.png", return_state=True)
    assert state.is_failed() and getattr(state.result(raise_on_failure=False), "reason", None) == "missing"


def test_with_redis_a_resubmitted_drawing_is_answered_without_a_flow_run_and_without_redis_it_still_runs(
    env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    import flows.process
    from cli.app import app
    from tests.redis_server import redis_server

    img = sorted((env / "drawings" / "images").glob("*.png"))[0]
    with redis_server(tmp_path) as (url, proc):
        monkeypatch.setenv("DIMFLOW_REDIS_URL", url)
        get_settings.cache_clear()
        first = CliRunner().invoke(app, ["process", str(img), "--out", str(tmp_path / "a")])
        assert first.exit_code == 0, first.output

        def no_flow(*args, **kwargs):
            raise AssertionError("a flow ran for a drawing the cache holds")

        with monkeypatch.context() as mp:
            mp.setattr(flows.process, "process_drawing", no_flow)
            again = CliRunner().invoke(app, ["process", str(img), "--out", str(tmp_path / "b")])
        assert again.exit_code == 0 and "from the result cache" in again.output, again.output
        for ext in ("json", "png", "csv"):
            name = f"{img.stem}.{ext}"
            assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
        proc.terminate()
        proc.wait(timeout=10)
        down = CliRunner().invoke(app, ["process", str(img), "--out", str(tmp_path / "c")])  # Redis down: uncached
        assert down.exit_code == 0 and "from the result cache" not in down.output, down.output
        assert (tmp_path / "c" / f"{img.stem}.json").read_bytes() == (tmp_path / "a" / f"{img.stem}.json").read_bytes()
    monkeypatch.delenv("DIMFLOW_REDIS_URL")
    get_settings.cache_clear()


def test_an_unreachable_registry_fails_the_run_in_bounded_time_naming_it(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from flows.process import process_drawing

    url = "http://127.0.0.1:9"  # nothing listens on the discard port
    monkeypatch.setenv("DIMFLOW_MLFLOW_TRACKING_URI", url)
    monkeypatch.setattr(champions, "_MODELS", None)
    get_settings.cache_clear()
    store = env / "data" / "store"
    before = _snapshot(store)
    img = sorted((env / "drawings" / "images").glob("*.png"))[0]
    try:
        t0 = time.monotonic()
        state = process_drawing(str(img), return_state=True)
        took = time.monotonic() - t0
    finally:
        monkeypatch.delenv("DIMFLOW_MLFLOW_TRACKING_URI")
        get_settings.cache_clear()
    assert state.is_failed() and took < 120, took
    print(f"unreachable registry: the process-drawing run failed in {took:.1f} s: {state.message}")
    assert url in (state.message or "") and "MLflow registry" in (state.message or "")
    after = _snapshot(store)
    assert {k: after.get(k) for k in before} == before  # what was stored stays as it was


def test_a_broken_champion_falls_back_and_the_result_says_so(env: Path) -> None:
    """Last in this module: it registers a second reader, damaged on disk, as champion."""
    import shutil

    from dimflow import registry
    from flows.process import process_drawing

    copy = env / "reader-v2"
    shutil.copytree(BASELINE_DIR / "reader", copy, ignore=shutil.ignore_patterns("checksums.json", "*.md"))
    card = json.loads((copy / "metrics.json").read_text())
    v2 = registry.log_and_register("callout-reader", copy, card["params"], [], {}, "test", alias=registry.CHAMPION)
    weights = registry.load("callout-reader", version=v2.version).path / "reader.pt"
    weights.write_bytes(weights.read_bytes()[:-16] + b"\0" * 16)
    try:
        img = sorted((env / "drawings" / "images").glob("*.png"))[1]
        (done,) = process_drawing(str(img))
        doc = json.loads((env / "data" / "store" / done.objects["json"]).read_text())
        validate_json(doc)
        assert doc["models"]["reader"] == "callout-reader/1"
        assert "callout-reader/2" in doc["models"]["reader_note"]
        assert doc["dimensions"]
    finally:
        registry.set_alias("callout-reader", registry.CHAMPION, 1)


def test_a_cad_pdf_is_read_from_its_text_layer_with_its_frames_datums_and_title_block(env: Path) -> None:
    """A real SOLIDWORKS export through the flow: its text layer is stored beside its pixels and
    read without OCR; frames and datums are never dimensions; the result follows the contract."""
    from dimflow.evaluate import Score
    from dimflow.labelme import load
    from flows.process import process_drawing

    real = Path(__file__).resolve().parents[2] / "samples" / "real"
    (done,) = process_drawing(str(real / "Aufspannung_Ecke.PDF"))
    store = env / "data" / "store"
    doc = json.loads((store / done.objects["json"]).read_text())
    validate_json(doc)
    assert doc["text_source"] == "pdf_text"
    assert done.page.text_key is not None and (store / done.page.text_key).is_file()
    truth = load(real / "labels" / "Aufspannung_Ecke.json")
    score = Score()
    score.add(doc["dimensions"], truth["dimensions"])
    score.add_other(doc, truth)
    assert score.full_tp == 3 and score.n_pred == 3 and score.misfiled == 0
    assert score.other["gdt"]["full"] == 9 and score.other["datums"]["tp"] == 6
    assert doc["title_block"]["fields"]["drawing_number"] == "Aufspannung_Ecken"
    assert "read" in doc["timings_ms"] and doc["timings_ms"]["read"] < 2000  # no OCR: milliseconds
