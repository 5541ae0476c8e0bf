"""Keep ultralytics offline: no font, weight, settings-sync or pip look-ups at run time.

Air-gapped plants (and this project's build machines) have no internet; ultralytics would
otherwise download Arial.ttf for plots, try to auto-install missing packages and ping its
hub. Call `offline()` before the first `import ultralytics` (the detect package does).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from dimflow.settings import configure_environment

_INTEGRATIONS = ("mlflow", "raytune", "tensorboard", "wandb", "clearml", "comet", "dvc", "neptune")
_FONT = Path(__file__).resolve().parent.parent / "synth" / "fonts" / "DejaVuSans.ttf"


def offline() -> Path:
    """Point ultralytics at a local config folder with a local font; disable network features.

    Imports ultralytics (after the environment is set) to switch its integrations off.
    """
    configure_environment()  # YOLO_CONFIG_DIR, YOLO_OFFLINE, ... before the first import reads them
    from ultralytics.utils import SETTINGS, USER_CONFIG_DIR

    cfg = Path(USER_CONFIG_DIR)
    cfg.mkdir(parents=True, exist_ok=True)

    for name in ("Arial.ttf", "Arial.Unicode.ttf"):  # plots look for these and would download them
        if not (Path(USER_CONFIG_DIR) / name).is_file():
            shutil.copy(_FONT, Path(USER_CONFIG_DIR) / name)

    # no telemetry, and no experiment-tracker callbacks: dimflow logs to its own MLflow store
    SETTINGS.update({"sync": False, **{k: False for k in _INTEGRATIONS if k in SETTINGS}})
    SETTINGS.update(
        {"datasets_dir": str(cfg / "datasets"), "weights_dir": str(cfg / "weights"), "runs_dir": str(cfg / "runs")}
    )
    return cfg
