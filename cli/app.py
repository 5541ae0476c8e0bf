"""The `dimflow` command line."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from dimflow.realset import DRAWING_SUFFIXES
from dimflow.registry import RegistryError
from dimflow.settings import configure_environment, get_settings

app = typer.Typer(
    help="dimflow: mechanical engineering drawings in, every dimension out as structured data.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(stderr=True, soft_wrap=True)


@app.callback()
def main(
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Log warnings only (no epoch or task-run lines).")
    ] = False,
) -> None:
    """dimflow: mechanical engineering drawings in, every dimension out as structured data."""
    configure_environment(log_level="WARNING" if quiet else None)
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("alembic", "mlflow", "urllib3", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print an error a person can act on and return the exit to raise."""
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


@app.command()
def synth(
    out: Annotated[Path, typer.Option(help="Folder to write the drawings and their ground truth into.")],
    n: Annotated[int, typer.Option(min=1, max=100_000, help="Number of drawings to generate.")] = 50,
    seed: Annotated[int | None, typer.Option(help="Generator seed; the same seed gives byte-identical files.")] = None,
    start: Annotated[int, typer.Option(min=0, help="Index of the first drawing (to extend a dataset).")] = 0,
    degrade: Annotated[
        float | None, typer.Option(min=0.0, max=1.0, help="Share of drawings blurred, noised, JPEG'd or rotated.")
    ] = None,
    cad: Annotated[
        bool, typer.Option("--cad", help="CAD-style sheets: feature control frames, datums, roughness symbols.")
    ] = False,
    pdf: Annotated[
        bool, typer.Option("--pdf", help="Also each drawing as a vector PDF with a text layer (pdf/, truth-pdf/).")
    ] = False,
    cad_share: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of the drawings CAD-style, spread evenly (--cad: all).")
    ] = 0.0,
) -> None:
    """Generate synthetic mechanical drawings with exact ground truth.

    Writes images/, truth/ (the result contract), labels/ (YOLO), segmentation/ and strokes/
    (segmenter labels), crops/ (reader crops with their strings) and meta/ under OUT.
    """
    from dimflow.synth.dataset import write_dataset

    settings = get_settings()
    seed = settings.synth_seed if seed is None else seed
    share = settings.synth_degrade_share if degrade is None else degrade
    with Progress(TextColumn("synth"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("synth", total=n)
        metas = write_dataset(out, n, seed, start=start, degrade_share=share, progress=lambda k: bar.advance(task, k),
                              cad=cad, pdf=pdf, cad_share=cad_share)  # fmt: skip
    n_dims = sum(m["n_dimensions"] for m in metas)
    console.print(f"wrote {len(metas)} drawings with {n_dims} dimensions to {out}")


@app.command("eval")
def evaluate(
    pred_dir: Annotated[Path, typer.Argument(help="Folder of predicted results (<name>.json).")],
    truth_dir: Annotated[
        Path,
        typer.Argument(
            help="Folder of ground truth with the same names: contract JSON "
            "or LabelMe JSON (the real set: samples/real/labels)."
        ),
    ],
    per_drawing: Annotated[
        bool,
        typer.Option(
            "--per-drawing",
            help="Also a table per drawing: detection, values, misfiled dimensions, frames, datums, finishes.",
        ),
    ] = False,
    calibration: Annotated[
        bool,
        typer.Option("--calibration", help="Also the share of predicted dimensions fully right per confidence bin."),
    ] = False,
) -> None:
    """Score predictions against ground truth with the contract's rule.

    Prints per-kind recall and, as the last line, value_f1, full_f1, n_truth and n_pred.
    A truth file without a prediction counts as a drawing where nothing was found.
    """
    from dimflow.evaluate import KINDS, ScoreInputError, score_dirs

    for folder in (pred_dir, truth_dir):
        if not folder.is_dir():
            raise fail(f"{folder} is not a folder")
    try:
        score = score_dirs(pred_dir, truth_dir)
    except ScoreInputError as exc:
        raise fail(str(exc)) from None
    table = Table(title=f"{score.drawings} drawings")
    for col in ("kind", "truth", "value recall", "full recall"):
        table.add_column(col, justify="right" if col != "kind" else "left")
    for kind in KINDS:
        t = score.kind_truth[kind]
        if t:
            table.add_row(kind, str(t), f"{score.kind_value[kind] / t:.3f}", f"{score.kind_full[kind] / t:.3f}")
    Console().print(table)
    if per_drawing:
        sheets = Table(title="per drawing")
        cols = ("drawing", "dims", "pred", "det recall", "det precision", "value acc", "value F1", "full F1",
                "misfiled", "gdt tp/truth/pred", "datums tp/truth/pred", "finish tp/truth/pred")  # fmt: skip
        for col in cols:
            sheets.add_column(col, justify="left" if col == "drawing" else "right")
        rows = {**score.per_drawing, "all": score.row()}
        for name, r in rows.items():
            other = [f"{r.get(k + '_tp', 0)}/{r.get(k + '_truth', 0)}/{r.get(k + '_pred', 0)}"
                     for k in ("gdt", "datums", "surface_finish")]  # fmt: skip
            sheets.add_row(name, str(r["dims"]), str(r["pred"]), f"{r['det_recall']:.3f}", f"{r['det_precision']:.3f}",
                           f"{r['value_acc']:.3f}", f"{r['value_f1']:.3f}", f"{r['full_f1']:.3f}", str(r["misfiled"]),
                           *other)  # fmt: skip
        Console(width=200).print(sheets)
    if calibration:
        cal = Table(title="calibration: predicted dimensions fully right, by confidence")
        for col in ("confidence", "n", "right", "share"):
            cal.add_column(col, justify="left" if col == "confidence" else "right")
        for r in score.calibration():
            cal.add_row(r["bin"], str(r["n"]), str(r["right"]), "-" if r["share"] is None else f"{r['share']:.3f}")
        Console().print(cal)
    if score.missing:
        console.print(f"[yellow]{len(score.missing)} truth files had no prediction[/yellow]")
    print(score.summary_line())


train_app = typer.Typer(help="Train a model, register it in MLflow and promote it if it beats the champion.")
models_app = typer.Typer(help="Inspect, bootstrap, evaluate, promote and roll back the registered models.")
app.add_typer(train_app, name="train")
app.add_typer(models_app, name="models")

DataOption = Annotated[
    Path, typer.Option(help="Dataset root holding train/ and val/ splits (as `dvc repro` writes them).")
]


def _require_splits(data: Path, splits: tuple[str, ...] = ("train", "val")) -> None:
    for split in splits:
        if not (data / split / "images").is_dir():
            raise fail(f"{data / split} has no images/; run `dvc repro` or `dimflow synth --out {data / split}`")


@contextmanager
def _training_bar(key: str) -> Iterator[Callable[[str, int, int], None]]:
    """A progress bar for one model's training, and the callback its epochs report through."""
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as bar:
        task = bar.add_task(f"train {key}", total=None)

        def progress(msg: str, done: int, total: int) -> None:
            bar.update(task, description=f"{key} {msg}", completed=done, total=total)

        yield progress


def _train(key: str, data: Path, params, promote: bool) -> None:
    from dimflow.lifecycle import train_and_register

    # a run trained elsewhere (--run-dir) brings its weights: only the validation split is read here
    _require_splits(data, ("val",) if getattr(params, "run_dir", None) else ("train", "val"))
    with _training_bar(key) as progress:
        try:
            result = train_and_register(key, data, params, progress=progress, promote=promote)
        except RegistryError as exc:  # the registry is down or answers errors
            raise fail(str(exc), code=1) from None
    val = {k: v for k, v in result["val"].items() if isinstance(v, float)}
    console.print(f"registered {result['name']}/{result['version']}; validation: {val}")
    if result.get("promoted"):
        console.print("promoted to champion")
    elif not promote:
        console.print("left as challenger (--no-promote); `champion` unchanged")
    elif "reason" in result:
        console.print(f"not promoted: {result['reason']}")
    else:
        console.print(
            f"not promoted: {result['challenger']:.4f} on val against the champion's {result['champion']:.4f}"
        )


def expand_inputs(inputs: list[str]) -> tuple[list[Path], dict[Path, str]]:
    """Files as given, folders as their drawings (sorted), globs expanded; a missing path stays,
    so that it is reported as failed rather than skipped.

    A folder's files are sorted by content, not name (an upload renamed `.dat` is a drawing): a
    file whose bytes are a supported type is processed, and so is one named like a drawing (a
    corrupt `.png` fails with its reason); any other file is skipped and returned with why."""
    import glob

    from dimflow.inputs import BadInput, sniff_file

    found: list[Path] = []
    skipped: dict[Path, str] = {}
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            for f in sorted(f for f in p.iterdir() if f.is_file()):
                try:
                    sniff_file(f)
                except BadInput as exc:
                    if f.suffix.lower() not in DRAWING_SUFFIXES and exc.reason == "unsupported_type":
                        skipped[f] = str(exc)
                        continue
                except OSError as exc:
                    skipped[f] = f"cannot be read: {exc}"
                    continue
                found.append(f)
        elif any(ch in item for ch in "*?["):
            found += sorted(Path(f) for f in glob.glob(item, recursive=True) if Path(f).is_file())
        else:
            found.append(p)
    return list(dict.fromkeys(found)), skipped


class _NoTracebackForBadInput(logging.Filter):
    """A bad upload is the user's to fix: its reason is enough, Prefect's traceback is noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        from dimflow.inputs import BadInput

        if record.exc_info and isinstance(record.exc_info[1], BadInput):
            record.exc_info, record.exc_text = None, None
        return True


def _quiet_bad_input_tracebacks() -> None:
    for name in ("prefect.task_runs", "prefect.flow_runs"):
        logging.getLogger(name).addFilter(_NoTracebackForBadInput())


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


@app.command()
def process(
    inputs: Annotated[list[str], typer.Argument(help="Drawings: files (PNG, JPG, TIFF, BMP, PDF), folders or globs.")],
    out: Annotated[Path, typer.Option(help="Folder for <stem>.json, <stem>.png (ballooned) and <stem>.csv.")] = Path(
        "out/results"
    ),
    storage: Annotated[
        str | None, typer.Option(help="Where results are kept: a folder, s3://bucket/prefix or block:<name>.")
    ] = None,
) -> None:
    """Process drawings through the process-drawing flow: contract JSON, ballooned PNG and CSV per page."""
    configure_environment()
    files, skipped = expand_inputs(inputs)
    for f, why in skipped.items():
        console.print(f"[yellow]skipped[/yellow] {f}: {why}")
    if not files:
        raise fail(f"no drawings found in {' '.join(inputs)} (looked at every file's content for PNG, JPEG, "
                   "TIFF, BMP or PDF)")  # fmt: skip
    from dimflow.cache import champions_key, result_cache
    from dimflow.champions import champion_refs

    try:  # before Prefect starts: a registry that is down or empty fails every file the same way
        models = champions_key(champion_refs())
    except RegistryError as exc:
        raise fail(str(exc), code=1) from None
    from tasks.process import resolve_storage, storage_scope

    _quiet_bad_input_tracebacks()
    out.mkdir(parents=True, exist_ok=True)
    store, cache, scope = resolve_storage(storage), result_cache(), storage_scope(storage)
    failed: dict[str, str] = {}
    used: set[str] = set()
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as bar:
        task = bar.add_task("process", total=len(files))
        for f in files:
            bar.update(task, description=f"process {f.name}")
            stem = f.stem if f.stem not in used else f"{f.parent.name}-{f.stem}"
            used.add(stem)
            hit = _from_cache(cache, f, models, scope, store, out / stem)
            done = hit if hit is not None else _process_one(f, storage, failed, out / stem, store)
            bar.advance(task)
            for d in done or []:
                note = " (from the result cache)" if hit is not None else "" if d.written else " (already stored)"
                written = out / f"{stem}{d.page.suffix}.json"
                console.print(f"{f}{d.page.suffix}: {d.n_dimensions} dimensions -> {written}{note}")
    if failed:
        raise fail(f"{len(failed)} of {len(files)} file(s) failed: " + "; ".join(failed), code=1)


def _copy_outputs(store, results, out_stem: Path) -> None:
    for d in results:
        for ext in ("json", "png", "csv"):
            _write_atomic(out_stem.with_name(f"{out_stem.name}{d.page.suffix}.{ext}"), store.get(d.objects[ext]))


def _from_cache(cache, f: Path, models: str, scope: str, store, out_stem: Path):
    """A drawing answered from the result cache without a flow run; None on a miss (or no cache)."""
    from dimflow.inputs import content_hash

    if cache is None or not f.is_file():
        return None
    hit = cache.get(content_hash(f.read_bytes()), models, scope)
    if hit is None:
        return None
    try:
        _copy_outputs(store, hit, out_stem)
    except FileNotFoundError:  # the store lost what the cache points at: process it again
        return None
    return hit


def _process_one(f: Path, storage: str | None, failed: dict[str, str], out_stem: Path, store):
    """One file through the process-drawing flow; its outputs copied beside `out_stem`, or its failure noted."""
    from flows.process import process_drawing

    state = process_drawing(str(f), storage, return_state=True)
    if not state.is_completed():
        exc = state.result(raise_on_failure=False)
        failed[str(f)] = str(exc) if isinstance(exc, BaseException) else (state.message or state.name)
        console.print(f"[red]failed[/red] {f}: {failed[str(f)]}")
        if isinstance(exc, RegistryError):  # every other file would fail the same way
            raise fail(f"{failed[str(f)]}", code=1)
        return None
    done = state.result()
    _copy_outputs(store, done, out_stem)
    return done


@train_app.command("segmenter")
def train_segmenter(
    data: DataOption = Path("data/synth"),
    epochs: Annotated[int, typer.Option(min=1, help="Passes over the training drawings.")] = 40,
    max_train: Annotated[int, typer.Option(min=1, help="Training drawings to use (graphs are cached).")] = 200,
    lr: Annotated[float, typer.Option(help="Peak learning rate (one-cycle).")] = 3e-3,
    promote: Annotated[bool, typer.Option(help="Promote to champion if better on val.")] = True,
) -> None:
    """Train the GraphSAGE stroke segmenter (contour / dimension / text / other)."""
    from dimflow.segment.train import SegmenterParams

    _train("segmenter", data, SegmenterParams(epochs=epochs, max_train=max_train, lr=lr), promote)


@train_app.command("reader")
def train_reader(
    data: DataOption = Path("data/synth"),
    epochs: Annotated[
        int, typer.Option(min=0, help="Passes over the training crops (0: only refit the orientation net of --init).")
    ] = 30,
    max_train: Annotated[int | None, typer.Option(min=1, help="Training crops to use (default: all).")] = None,
    lr: Annotated[float, typer.Option(help="Peak learning rate (one-cycle).")] = 2e-3,
    init: Annotated[
        str | None, typer.Option(help="Fine-tune from a registered reader: an alias (champion) or a version number.")
    ] = None,
    orient_epochs: Annotated[
        int, typer.Option(min=0, help="Epochs for the orientation net (0: keep the one of --init).")
    ] = 8,
    extra_train: Annotated[
        list[str] | None,
        typer.Option(help="More splits under --data whose crops join training (repeat; default: cad_train)."),
    ] = None,
    extra_val: Annotated[
        list[str] | None, typer.Option(help="More splits epochs are chosen on (repeat; default: cad_val).")
    ] = None,
    plain: Annotated[
        bool, typer.Option(help="Train and choose on train/ and val/ only (no CAD-style splits).")
    ] = False,
    promote: Annotated[bool, typer.Option(help="Promote to champion if better on val.")] = True,
) -> None:
    """Train the CRNN callout reader on callout crops (rotated and stacked ones included), from plain
    and CAD-style sheets; promoted only if better on the mean of the validation splits and no worse on any."""
    from dimflow import registry
    from dimflow.read.train import ReaderParams, missing_crops

    start = None
    if init:
        try:
            ref = (
                registry.load("callout-reader", version=int(init))
                if init.isdigit()
                else registry.load("callout-reader", init)
            )
        except (registry.RegistryError, registry.ChecksumError) as exc:
            raise fail(str(exc)) from None
        start = str(ref.path)
    extras = ([], []) if plain else (extra_train or ["cad_train"], extra_val or ["cad_val"])
    if missing := missing_crops(data, extras[0] + extras[1]):
        raise fail(f"{missing[0]} has no crops; run `dvc repro` (or --plain: train/ and val/ only)")
    params = ReaderParams(epochs=epochs, max_train=max_train, lr=lr, init=start, orient_epochs=orient_epochs,
                          extra_train=extras[0], extra_val=extras[1])  # fmt: skip
    _train("reader", data, params, promote)


@train_app.command("detector")
def train_detector(
    data: DataOption = Path("data/synth"),
    epochs: Annotated[int, typer.Option(min=1, help="Passes over the training drawings.")] = 15,
    imgsz: Annotated[int, typer.Option(min=320, help="Long side of the drawing as the network sees it, px.")] = 1600,
    batch: Annotated[int, typer.Option(min=1, help="Drawings per step.")] = 4,
    max_train: Annotated[int, typer.Option(min=1, help="Training drawings to use.")] = 120,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run from its last checkpoint.")] = True,
    finish: Annotated[bool, typer.Option(help="Register an interrupted run's best checkpoint as it is.")] = False,
    run_dir: Annotated[
        Path | None,
        typer.Option(help="Register a run trained elsewhere (scripts/gpu/train_detector.sh) instead of training."),
    ] = None,
    promote: Annotated[bool, typer.Option(help="Promote to champion if better on val.")] = True,
) -> None:
    """Train the YOLO11n callout detector from its yaml (no downloaded weights), export ONNX."""
    from dimflow.detect.train import DetectorParams

    if run_dir is not None and not (run_dir / "weights" / "best.pt").is_file():
        raise fail(f"{run_dir} holds no weights/best.pt; pass the detector-run folder the GPU script wrote")
    params = DetectorParams(
        epochs=epochs,
        imgsz=imgsz,
        batch=batch,
        max_train=max_train,
        resume=resume,
        finish_only=finish,
        run_dir=str(run_dir) if run_dir else None,
    )
    _train("detector", data, params, promote)


@models_app.command("bootstrap")
def models_bootstrap() -> None:
    """Register the shipped baseline models (version 1, alias champion) where the registry lacks them."""
    from dimflow.lifecycle import bootstrap
    from dimflow.registry import ChecksumError

    try:
        for key, state in bootstrap().items():
            console.print(f"{key}: {state}")
    except (ChecksumError, RegistryError) as exc:
        raise fail(str(exc)) from None


@models_app.command("evaluate")
def models_evaluate(
    split: Annotated[Path, typer.Option(help="Split to evaluate on.")] = Path("data/synth/test"),
    model: Annotated[list[str] | None, typer.Option(help="Model(s) to evaluate (default: all).")] = None,
) -> None:
    """Evaluate each champion on a split and print its metrics."""
    from dimflow.lifecycle import evaluate_champions
    from dimflow.registry import ChecksumError

    if not (split / "images").is_dir():
        raise fail(f"{split} has no images/; run `dvc repro` first")
    try:
        results = evaluate_champions(split, model)
    except (RegistryError, ChecksumError, KeyError) as exc:
        raise fail(str(exc)) from None
    for key, metrics in results.items():
        shown = " ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, float))
        print(f"{key} {metrics['model']} {shown}")


@models_app.command("fit")
def models_fit(
    model: Annotated[str, typer.Argument(help="detector, reader or segmenter.")],
    out: Annotated[Path, typer.Option(help="Folder the trained model (and its metrics.json) is written to.")],
    data: DataOption = Path("data/synth"),
    params: Annotated[
        Path, typer.Option(help="YAML file whose train.<model> section holds the training parameters.")
    ] = Path("params.yaml"),
) -> None:
    """Train one model into a folder, outside the registry: the DVC pipeline's train stage
    (`dvc repro`), reproducible from params.yaml and the data's hash."""
    import yaml

    from dimflow.lifecycle import fit, get_kind, params_for

    try:
        get_kind(model)
        values = ((yaml.safe_load(params.read_text()) or {}).get("train") or {}).get(model) or {}
        p = params_for(model, values)
    except (OSError, yaml.YAMLError, KeyError, ValueError, TypeError) as exc:
        raise fail(f"{params}: {exc}") from None
    _require_splits(data)
    with _training_bar(model) as progress:
        metrics = fit(model, data, p, out, progress=progress)
    val = {k: round(v, 4) for k, v in metrics["val"].items() if isinstance(v, float)}
    console.print(f"{model} -> {out}; validation: {val}")


@models_app.command("score")
def models_score(
    trained: Annotated[Path, typer.Option(help="Folder of trained models (<role>/); a role missing: the shipped one.")],
    out: Annotated[Path, typer.Option(help="Metrics JSON to write (DVC's metrics.json).")] = Path("metrics.json"),
    gate_split: Annotated[
        Path, typer.Option("--gate", help="Split to score on, kept apart from training and validation.")
    ] = Path("data/synth/gate"),
    real: Annotated[Path | None, typer.Option(help="Imported labelled real drawings (dimflow labels import).")] = None,
) -> None:
    """Score trained models on the gate split and the labelled real drawings: the DVC pipeline's
    evaluate stage; `dvc metrics show` / `dvc metrics diff` read what it writes."""
    from dimflow.lifecycle import score

    if not (gate_split / "images").is_dir():
        raise fail(f"{gate_split} has no images/; run `dvc repro synth@gate`")
    if real is not None and not (real / "labels").is_dir():
        raise fail(f"{real} has no labels/; run `dimflow labels import samples/real --out {real}`")
    metrics = score(trained, gate_split, real)
    _write_atomic(out, (json.dumps(metrics, indent=1, sort_keys=True) + "\n").encode())
    for role, figures in metrics.items():
        console.print(f"{role}: " + " ".join(f"{k}={v:.4f}" for k, v in figures.items()))


labels_app = typer.Typer(help="Labelled real drawings (LabelMe or COCO) for evaluation and the promotion gate.")
app.add_typer(labels_app, name="labels")


@labels_app.command("import")
def labels_import(
    src: Annotated[Path, typer.Argument(help="A LabelMe folder (drawings beside labels/*.json) or a COCO JSON file.")],
    out: Annotated[Path, typer.Option(help="Folder to write: <name>.pdf|png beside labels/<name>.json.")] = Path(
        "data/real"
    ),
) -> None:
    """Check every label reads as contract truth and copy the set into one layout (`dimflow eval`,
    the gate and `dimflow models score` read it); a bad label stops it, naming file and shape."""
    from dimflow.labelme import LabelError
    from dimflow.realset import import_labelled

    if not src.exists():
        raise fail(f"{src} does not exist")
    try:
        done = import_labelled(src, out)
    except (LabelError, OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise fail(f"import refused: {exc}") from None
    console.print(f"{out}: {done.line()}")


ModelName = Annotated[str, typer.Argument(help="The model: detector, reader, segmenter, or its registered name.")]
ReasonOption = Annotated[str, typer.Option(help="Why: kept with the move in the registry and the audit log.")]


def _actor() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # no user name in a container: still recorded, as such
        return "unknown"


def _audit_move(move) -> None:
    """The move in the service's audit log too (its registry tags are the record either way)."""
    import socket

    from service.audit import AuditLog, Entry, audit_url

    try:
        log = AuditLog(audit_url())
        log.migrate()
        log.record(Entry(action=f"models.{move.action}", method="CLI", route=f"dimflow models {move.action}",
                         status=0, client=socket.gethostname(), subject=move.by,
                         models={move.model: f"{move.model}/{move.version}"},
                         detail=move.line()))  # fmt: skip
    except Exception as exc:
        console.print(f"[yellow]warning:[/yellow] the move is recorded in the registry, not in the audit log: {exc}")


@models_app.command("promote")
def models_promote(
    name: ModelName,
    version: Annotated[int, typer.Argument(help="The registered version to make champion.")],
    reason: ReasonOption = "",
) -> None:
    """Make a version the champion by hand; the one it replaces becomes `previous` (for rollback)."""
    from dimflow.lifecycle import LifecycleError, promote

    try:
        move = promote(name, version, by=_actor(), reason=reason or "by hand")
    except (LifecycleError, RegistryError) as exc:
        raise fail(str(exc)) from None
    _audit_move(move)
    print(move.line())


@models_app.command("rollback")
def models_rollback(name: ModelName, reason: ReasonOption = "") -> None:
    """Put the `previous` champion back; an error when there is none."""
    from dimflow.lifecycle import LifecycleError, rollback

    try:
        move = rollback(name, by=_actor(), reason=reason or "by hand")
    except (LifecycleError, RegistryError) as exc:
        raise fail(str(exc)) from None
    _audit_move(move)
    print(move.line())


@models_app.command("history")
def models_history(
    name: ModelName,
    as_json: Annotated[bool, typer.Option("--json", help="Print it as JSON.")] = False,
) -> None:
    """Every version (aliases, metrics, data hash, commit) and every move of the champion."""
    from dataclasses import asdict
    from datetime import UTC, datetime

    from dimflow.lifecycle import LifecycleError, history

    try:
        h = history(name)
    except (LifecycleError, RegistryError) as exc:
        raise fail(str(exc)) from None
    if as_json:
        print(json.dumps(h | {"moves": [asdict(m) for m in h["moves"]]}, indent=1))
        return
    table = Table(title=f"{h['model']}: versions")
    for col in ("version", "aliases", "registered", "metrics", "data", "commit"):
        table.add_column(col)
    for v in h["versions"]:
        when = datetime.fromtimestamp(v["created_ms"] / 1000, UTC).strftime("%Y-%m-%d %H:%M")
        shown = " ".join(f"{k}={m:.0f}" if float(m).is_integer() else f"{k}={m:.4f}"
                         for k, m in sorted(v["metrics"].items()))  # fmt: skip
        table.add_row(str(v["version"]), ",".join(v["aliases"]), when, shown, (v["dataset"] or "")[:12],
                      (v["commit"] or "")[:10])  # fmt: skip
    Console(soft_wrap=True).print(table)
    print("champion moves:" if h["moves"] else "champion moves: none recorded")
    for m in h["moves"]:
        print(f"  {m.line()}")


@models_app.command("compare")
def models_compare(
    storage: Annotated[str | None, typer.Option(help="The service's result storage (default: settings).")] = None,
) -> None:
    """How the challengers agreed with the champions on the pages shadow runs read (DIMFLOW_SHADOW_SHARE)."""
    from dimflow import shadow
    from dimflow.storage import StorageError
    from tasks.process import resolve_storage

    try:
        store = resolve_storage(storage)
        summaries = shadow.summarize([store.get(k) for k in store.keys(shadow.PREFIX)])
    except (StorageError, OSError) as exc:
        raise fail(f"cannot read the shadow records: {exc}") from None
    if not summaries:
        print("no shadow records: set DIMFLOW_SHADOW_SHARE for the service's workers and register a challenger")
        return
    for s in summaries:
        changed = {k: v for k, v in s.challenger.items() if s.champion.get(k) != v}
        print(f"champions {s.champion} vs challengers {changed}: {s.pages} pages")
        table = Table()
        for col in ("dimensions (champ / chall / matched)", "detection", *shadow.FIELDS):
            table.add_column(col)
        fields = s.field_agreement()
        table.add_row(f"{s.champion_dimensions} / {s.challenger_dimensions} / {s.matched}",
                      f"{s.detection_agreement:.3f}", *(f"{fields[f]:.3f}" for f in shadow.FIELDS))  # fmt: skip
        Console(soft_wrap=True).print(table)


pools_app = typer.Typer(help="Prefect work pools and the GPU concurrency limit the deployments run on.")
app.add_typer(pools_app, name="pools")


@pools_app.command("setup")
def pools_setup(
    gpu_type: Annotated[
        str,
        typer.Option(
            help="Infrastructure of the `gpu` pool: process, docker or kubernetes "
            "(the last two from infra/pools/gpu-<type>.json)."
        ),
    ] = "process",
    gpu_limit: Annotated[int, typer.Option(min=1, help="Runs that may hold a GPU at once (global limit `gpu`).")] = 1,
) -> None:
    """Create (or update) the `cpu` and `gpu` work pools and the `gpu` global concurrency limit on the
    Prefect API (PREFECT_API_URL), before `prefect deploy --all`."""
    from prefect import get_client
    from prefect.client.schemas.actions import (
        GlobalConcurrencyLimitCreate,
        GlobalConcurrencyLimitUpdate,
        WorkPoolCreate,
        WorkPoolUpdate,
    )
    from prefect.exceptions import ObjectNotFound

    if gpu_type not in ("process", "docker", "kubernetes"):
        raise fail(f"--gpu-type {gpu_type!r}: one of process, docker, kubernetes")
    templates = Path(__file__).resolve().parents[1] / "infra" / "pools"
    pools = {"cpu": ("process", None)}
    pools["gpu"] = (gpu_type, json.loads((templates / f"gpu-{gpu_type}.json").read_text()) if gpu_type != "process"
                    else None)  # fmt: skip
    try:
        with get_client(sync_client=True) as client:
            for name, (kind, template) in pools.items():
                extra = {"base_job_template": template} if template else {}
                try:
                    existing = client.read_work_pool(name)
                except ObjectNotFound:
                    client.create_work_pool(WorkPoolCreate(name=name, type=kind, **extra))
                    console.print(f"work pool {name} ({kind}) created")
                    continue
                if existing.type != kind:
                    raise fail(f"work pool {name} exists as type {existing.type}, not {kind}; delete it first "
                               f"(`prefect work-pool delete {name}`)")  # fmt: skip
                if template:
                    client.update_work_pool(name, WorkPoolUpdate(base_job_template=template))
                console.print(f"work pool {name} ({kind}) present")
            try:
                client.read_global_concurrency_limit_by_name("gpu")
                client.update_global_concurrency_limit("gpu", GlobalConcurrencyLimitUpdate(limit=gpu_limit))
            except ObjectNotFound:
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name="gpu", limit=gpu_limit))
            console.print(f"global concurrency limit gpu = {gpu_limit}")
    except typer.Exit:
        raise
    except Exception as exc:  # the API unreachable or refusing
        raise fail(f"cannot set up the pools on the Prefect API ({type(exc).__name__}: {exc})", code=1) from None


# ---------------------------------------------------------------------------------------------- service

token_app = typer.Typer(help="Tokens for the service API.")
app.add_typer(token_app, name="token")
audit_app = typer.Typer(help="The service's audit log (who did what to which drawing).")
app.add_typer(audit_app, name="audit")


def _check_registry() -> None:
    from dimflow.champions import champion_versions

    try:
        champion_versions()
    except RegistryError as exc:
        raise fail(str(exc), code=1) from None


@app.command()
def api(
    host: Annotated[str, typer.Option(help="Interface to listen on (loopback behind a proxy).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the API.")] = 8000,
    workers: Annotated[
        int | None, typer.Option(min=0, max=64, help="Warm worker processes beside it (default DIMFLOW_WORKERS).")
    ] = None,
) -> None:
    """Run the upload API with warm workers; jobs run as Prefect flow runs (PREFECT_API_URL, else a
    local Prefect server this starts, whose UI shows every job)."""
    configure_environment()
    _check_registry()
    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    from service.prefect_server import PrefectServerError, prefect_api

    try:
        with prefect_api(log_path=settings.data_dir / "prefect-server.log") as url:
            import uvicorn

            from service.api import create_app

            ui = url.removesuffix("/api")
            console.print(f"Prefect API {url} (UI {ui}); dimflow API http://{host}:{port} (docs /docs)")
            app_ = create_app(workers=workers, name=f"api-{port}")
            uvicorn.run(app_, host=host, port=port, log_level="info", access_log=False)
    except PrefectServerError as exc:
        raise fail(str(exc), code=1) from None


@app.command()
def worker(
    processes: Annotated[int, typer.Option(min=1, max=64, help="Warm worker processes.")] = 2,
    metrics_port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Serve Prometheus metrics on this port (loopback).")
    ] = None,
) -> None:
    """Run warm workers alone (another machine, a GPU pool) for the service's Prefect API (PREFECT_API_URL)."""
    import os
    import signal
    import threading

    configure_environment()
    if not os.environ.get("PREFECT_API_URL"):
        raise fail("a standalone worker needs the service's Prefect API: set PREFECT_API_URL (and the same "
                   "DIMFLOW_STORAGE_URL, DIMFLOW_MLFLOW_TRACKING_URI and DIMFLOW_REDIS_URL as the API)")  # fmt: skip
    _check_registry()
    from service.metrics import Metrics
    from service.worker import Supervisor

    metrics = Metrics()
    if metrics_port:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr="127.0.0.1", registry=metrics.registry)
    sup = Supervisor(processes, on_event=metrics.on_worker_event, attempts=get_settings().job_attempts)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    sup.start()
    console.print(f"{processes} warm workers for {os.environ['PREFECT_API_URL']}; Ctrl-C stops them")
    stop.wait()
    sup.stop()


@token_app.command("create")
def token_create(
    sub: Annotated[str, typer.Option(help="Who or what system the token is for (shown in the job's run tags).")],
    scope: Annotated[
        list[str] | None, typer.Option(help="drawings:submit, drawings:read or admin; repeat for several.")
    ] = None,
    ttl: Annotated[int, typer.Option(min=60, max=366 * 24 * 3600, help="Seconds the token is valid.")] = 24 * 3600,
    tenant: Annotated[
        str | None, typer.Option(help="The tenant (plant, customer) whose jobs the token sees; none: its own.")
    ] = None,
) -> None:
    """Print a signed API token (the last line), for `dimflow submit --token` or an Authorization header."""
    from service.auth import create_token

    scope = scope or ["drawings:submit", "drawings:read"]
    try:
        token = create_token(sub, scope, ttl, tenant=tenant)
    except ValueError as exc:
        raise fail(str(exc)) from None
    where = f", tenant {tenant}" if tenant else ""
    console.print(f"token for {sub!r}{where}, scopes {' '.join(sorted(set(scope)))}, valid {ttl} s:")
    print(token)


@audit_app.command("tail")
def audit_tail(
    n: Annotated[int, typer.Option("--n", "-n", min=1, max=10000, help="How many of the newest entries.")] = 20,
    subject: Annotated[str | None, typer.Option(help="Only this subject's entries.")] = None,
    action: Annotated[str | None, typer.Option(help="Only this action (submit, read_result, ...).")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new entries as they come.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Print the newest audit entries (DIMFLOW_AUDIT_URL, else data/audit.db), oldest first."""
    import json as _json
    import time as _time

    import sqlalchemy as sa

    from service.audit import AuditLog, audit_url

    log = AuditLog(audit_url())
    try:
        rows = log.tail(n, subject=subject, action=action)
    except sa.exc.OperationalError as exc:
        raise fail(f"the audit log at {log.url} cannot be read ({exc.orig}); is DIMFLOW_AUDIT_URL right, "
                   "and has `dimflow api` started once to create it?") from None  # fmt: skip

    def show(r: dict) -> None:
        if as_json:
            print(_json.dumps(r, default=str))
        else:
            who = r["subject"] + (f"@{r['tenant']}" if r["tenant"] else "") or "-"
            extra = " ".join(x for x in (r["job_id"] or "", r["detail"] or "") if x)
            print(f"{r['at']}  {r['client']:>15}  {who:<20} {r['action']:<13} {r['method']} {r['route']} "
                  f"{r['status']}  {extra}".rstrip())  # fmt: skip

    for r in rows:
        show(r)
    last = rows[-1]["id"] if rows else 0
    while follow:
        _time.sleep(1.0)
        for r in log.tail(10000, subject=subject, action=action, after_id=last):
            show(r)
            last = r["id"]


@app.command()
def submit(
    files: Annotated[list[str], typer.Argument(help="Drawings to send as one job: files, or s3://bucket/key URIs.")],
    api_url: Annotated[str, typer.Option("--api", envvar="DIMFLOW_API_URL", help="The service's URL.")] = (
        "http://127.0.0.1:8000"
    ),
    token: Annotated[
        str | None, typer.Option(envvar="DIMFLOW_API_TOKEN", help="From `dimflow token create`.", show_default=False)
    ] = None,
    wait: Annotated[bool, typer.Option(help="Wait for the job and print what it found.")] = False,
    out: Annotated[
        Path | None, typer.Option(help="With --wait: write each page's JSON, ballooned PNG and CSV here.")
    ] = None,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds --wait waits.")] = 600,
) -> None:
    """Send drawings to a running service (`dimflow api`) as one job; prints the job id (last line)."""
    import httpx

    from dimflow.client import ApiError, Client

    if not token:
        raise fail("no token: pass --token or set DIMFLOW_API_TOKEN (create one with `dimflow token create`)")
    uris = [f for f in files if f.startswith("s3://")]
    local = [Path(f) for f in files if not f.startswith("s3://")]
    if uris and local:
        raise fail("a job takes local files or s3:// URIs, not both; submit them as two jobs")
    for f in local:
        if not f.is_file():
            raise fail(f"{f} is not a file")
    try:
        with Client(api_url, token) as client:
            job = client.submit(uris=uris) if uris else client.submit(local)
            console.print(f"job {job.job_id} queued: {job.status_url}")
            if wait:
                with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                              console=console) as bar:  # fmt: skip
                    task = bar.add_task("queued", total=1.0)

                    def show(st) -> None:
                        bar.update(task, completed=st.progress, description=f"{st.status} {st.stage or ''}")

                    st = client.wait(job.job_id, timeout_s=timeout, on_status=show)
                for f in st.files:
                    console.print(f"{f.name}: " + (f"[red]{f.error}[/red]" if f.error else f"{f.pages} page(s)"))
                if st.status == "failed":
                    raise fail(f"job {job.job_id} failed: {st.error}", code=1)
                results = client.results(job.job_id)
                for i, r in enumerate(results, 1):
                    console.print(f"page {i}: {len(r['dimensions'])} dimensions")
                    if out is not None:
                        out.mkdir(parents=True, exist_ok=True)
                        stem = out / f"{job.job_id[:8]}-{i}"
                        _write_atomic(stem.with_suffix(".json"), json.dumps(r, indent=1).encode())
                        _write_atomic(stem.with_suffix(".png"), client.balloons(job.job_id, i))
                        _write_atomic(stem.with_suffix(".csv"), client.inspection_csv(job.job_id, i))
    except ApiError as exc:
        raise fail(str(exc), code=1) from None
    except TimeoutError as exc:
        raise fail(str(exc), code=1) from None
    except httpx.HTTPError as exc:
        raise fail(f"the service at {api_url} cannot be reached ({exc}); is `dimflow api` running?", code=1) from None
    print(job.job_id)


if __name__ == "__main__":
    app()
