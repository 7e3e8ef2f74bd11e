"""MLflow in one place: runs, params, metrics, figures, the scoring model and the registry.

The default store is embedded, in the current directory: `mlflow.db` (SQLite) for runs and
`mlartifacts/` for artifacts. `MLFLOW_TRACKING_URI` points it elsewhere (a server, another file).
"""

from __future__ import annotations

import logging
import math
import os
import platform
import re
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

import anomaly
from anomaly.detect.pipeline import find_pipeline_folder
from anomaly.errors import UserError
from anomaly.track import model_cache
from anomaly.track.model_cache import tracking_uri

log = logging.getLogger(__name__)
PYFUNC_SCRIPT = Path(__file__).with_name("pyfunc_model.py")
PACKAGE_DIR = Path(anomaly.__file__).parent


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=PACKAGE_DIR, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _fit(text: str, limit: int = 6000) -> str:
    return text if len(text) <= limit else text[: limit - 40] + f"... (cut: {len(text)} characters)"


def git_dirty() -> str:
    """'true' when tracked files differ from the commit logged beside it, or the package holds a
    file git does not track (a new module that ran): that commit alone would not rerun the
    number. Untracked files elsewhere (a user's logs beside the code) do not count."""
    try:
        out = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=all"],
            cwd=PACKAGE_DIR,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if out.returncode:
        return "unknown"
    package = f"{PACKAGE_DIR.name}/"
    lines = out.stdout.splitlines()
    dirty = any(not line.startswith("??") or line[3:].startswith(package) for line in lines)
    return str(dirty).lower()


def library_versions() -> str:
    """The libraries a number depends on, at the versions it ran with (pyproject gives lower
    bounds only)."""
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for pkg in ("torch", "pytorch-lightning", "numpy", "pandas", "scikit-learn", "mlflow"):
        try:
            out.append(f"{pkg} {version(pkg)}")
        except PackageNotFoundError:
            out.append(f"{pkg} -")
    return ", ".join(out)


def machine() -> str:
    """The machine setup a run's timings were measured on: CPU model, cores this process may
    use, torch's threads and the GPU if one is visible. Fit times race each other only on the
    same setup (threads change them as hardware does), and a sweep resumed from an archive may
    mix machines."""
    import torch

    cpu = platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(
                (ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu
            )
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    text = f"{cpu}, {cores} cores, torch {torch.get_num_threads()} threads"
    if torch.cuda.is_available():
        text += f", {torch.cuda.get_device_name(0)}"
    return text


def artifact_location(uri: str) -> str | None:
    """Artifacts of a SQLite store live beside its file (`mlartifacts/`), not in whatever folder
    the command ran from; a server decides for itself (None)."""
    if uri.startswith("sqlite:///"):
        return (Path(uri[len("sqlite:///") :]).resolve().parent / "mlartifacts").as_uri()
    return None


EXPERIMENT_KIND = "custom_model_development"  # the UI then opens on the runs table
DEFAULT_DESCRIPTION = (
    "Runs of `anomaly train` and `anomaly compare`: one run per trained detector, with its config, "
    "test-flight metrics, figures and the scoring model."
)


class Tracker:
    """Opens the store and an experiment; one object per process is enough.

    Every experiment it touches carries MLflow's experiment-kind tag (without it, MLflow 3's UI
    opens an experiment as a GenAI trace overview) and a description of what it holds.
    """

    def __init__(
        self, experiment: str = "anomaly", uri: str | None = None, description: str | None = None
    ):
        self.uri = uri or tracking_uri()
        mlflow.set_tracking_uri(self.uri)
        self.client = MlflowClient(self.uri)
        exp = self.client.get_experiment_by_name(experiment)
        if exp is None:
            try:
                exp_id = self.client.create_experiment(
                    experiment, artifact_location=artifact_location(self.uri)
                )
                tags = {}
            except MlflowException:
                # two processes opening a new experiment at once (two searches started
                # together): the other one created it between our lookup and our create
                exp = self.client.get_experiment_by_name(experiment)
                if exp is None:
                    raise
        if exp is not None:
            _refuse_deleted(exp, self.uri)
            exp_id, tags = exp.experiment_id, exp.tags
        wanted = {
            "mlflow.experimentKind": EXPERIMENT_KIND,
            "mlflow.note.content": description
            or tags.get("mlflow.note.content")
            or DEFAULT_DESCRIPTION,
        }
        for key, value in wanted.items():
            if tags.get(key) != value:
                self.client.set_experiment_tag(exp_id, key, value)
        self.experiment_id = exp_id
        self.experiment = experiment

    @contextmanager
    def run(
        self, run_name: str, parent_run_id: str | None = None, tags: dict | None = None
    ) -> Iterator[str]:
        """Start a run (a child when `parent_run_id` is given); yields its id. A raised error marks it FAILED."""
        tags = dict(tags or {})
        if parent_run_id:
            tags["mlflow.parentRunId"] = parent_run_id
        run_id = None
        try:
            # created inside the try: a Ctrl-C just after must not leave it RUNNING
            run_id = self.client.create_run(
                self.experiment_id, run_name=run_name, tags=tags
            ).info.run_id
            # a child may open while its parent is the active run (a search logs each trial
            # inside its parent's run): MLflow calls that nesting
            with mlflow.start_run(run_id=run_id, nested=mlflow.active_run() is not None):
                yield run_id
        except BaseException as exc:
            if run_id is None:
                raise
            self.client.set_tag(run_id, "error", f"{type(exc).__name__}: {exc}"[:5000])
            self.client.set_terminated(
                run_id, "FAILED" if not isinstance(exc, KeyboardInterrupt) else "KILLED"
            )
            raise

    def log_params(self, run_id: str, params: dict) -> None:
        from mlflow.entities import Param

        # MLflow keeps 6,000 characters of a value: a longer one says it was cut rather than
        # passing for whole (a training run's flight lists are kept whole in its split.json)
        items = [Param(k, _fit(str(v))) for k, v in params.items()]
        for i in range(0, len(items), 100):
            self.client.log_batch(run_id, params=items[i : i + 100])

    def log_metrics(self, run_id: str, metrics: dict, step: int = 0) -> None:
        """Log finite metrics; an undefined one (NaN: e.g. recall on flights without a fault) is
        named in the run's `anomaly.missing_metrics` tag, so a missing value is never silent."""
        self._log_steps(run_id, [(step, metrics)])

    def log_history(self, run_id: str, history: list[dict]) -> None:
        """Per-epoch losses as metric steps: the loss curves in the UI. One batched write for all
        epochs: a write per epoch cost a sweep's main process seconds per cell."""
        self._log_steps(
            run_id,
            [
                (int(row["epoch"]), {k: v for k, v in row.items() if k != "epoch"})
                for row in history
            ],
        )

    def _log_steps(self, run_id: str, steps: list[tuple[int, dict]]) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items, missing = [], set()
        for step, metrics in steps:
            for k, v in metrics.items():
                if v is None or math.isnan(float(v)):
                    missing.add(k)
                else:
                    items.append(Metric(k, float(v), now, step))
        for i in range(0, len(items), 1000):  # MLflow's limit on metrics per batch
            self.client.log_batch(run_id, metrics=items[i : i + 1000])
        if missing:
            tag = "anomaly.missing_metrics"
            known = self.client.get_run(run_id).data.tags.get(tag, "")
            names = sorted(set(filter(None, known.split(","))) | missing)
            self.client.set_tag(run_id, tag, ",".join(names)[:5000])

    def set_tags(self, run_id: str, tags: dict) -> None:
        for k, v in tags.items():
            self.client.set_tag(run_id, k, str(v))

    def log_figure(self, run_id: str, fig, path: str) -> None:
        self.client.log_figure(run_id, fig, path)

    def log_dict(self, run_id: str, data: dict, path: str) -> None:
        self.client.log_dict(run_id, data, path)

    def log_text(self, run_id: str, text: str, path: str) -> None:
        self.client.log_text(run_id, text, path)

    def log_artifacts(self, run_id: str, folder: str | Path, path: str | None = None) -> None:
        self.client.log_artifacts(run_id, str(folder), path)

    def log_pipeline(self, pipeline, example: pd.DataFrame) -> str:
        """Log the fitted pipeline as a pyfunc "model from code" in the active run; returns its URI.

        The model is a short script that loads the saved pipeline (weights as a state_dict, read
        weights-only); the `anomaly` package travels with it through `code_paths`.
        """
        from mlflow.models import ModelSignature, infer_signature

        from anomaly.detect.scoring import score_frame

        with tempfile.TemporaryDirectory() as tmp:
            folder = pipeline.save(Path(tmp) / "pipeline")
            output = score_frame(pipeline, example)
            # outputs only: MLflow drops an input column its schema does not name (a time
            # column headed `Time`, which then could not be checked) and refuses an integer
            # channel for a double one; the model reads its input as `anomaly score` reads a log
            signature = ModelSignature(outputs=infer_signature(example, output).outputs)
            mlflow.pyfunc.log_model(
                name="model",
                python_model=str(PYFUNC_SCRIPT),
                artifacts={"pipeline": str(folder)},
                code_paths=[str(PACKAGE_DIR)],
                signature=signature,
                input_example=example,
                pip_requirements=_requirements(),
            )
        run_id = mlflow.active_run().info.run_id
        return f"runs:/{run_id}/model"

    @staticmethod
    def check_experiment(name: str) -> None:
        """Refuse a deleted experiment before anything is trained, creating no store: a store
        that is not there yet holds no experiment to refuse."""
        uri = tracking_uri()
        db = Path(unquote(uri[len("sqlite:///") :])) if uri.startswith("sqlite:///") else None
        if db is not None and not db.exists():
            folder = db.resolve().parent
            if not (folder.is_dir() and os.access(folder, os.W_OK)):  # found before training
                raise UserError(
                    f"no MLflow store can be made at {db}: {folder} is no writable folder"
                )
            return
        exp = MlflowClient(uri).get_experiment_by_name(name)
        if exp is not None:
            _refuse_deleted(exp, uri)

    @staticmethod
    def check_model_name(name: str) -> None:
        """Refuse, before anything is trained, a name the registry would refuse after."""
        from mlflow.utils.validation import _validate_model_name

        try:
            _validate_model_name(name)
        except MlflowException as exc:
            raise UserError(f"--register {name!r}: {one_line(exc)}") from None

    def register(
        self, model_uri: str, name: str, tags: dict | None = None, alias: str = "champion"
    ) -> tuple[str, str | None]:
        """Register a new version of `name`, tagged with what it is (`tags`: its model, scores,
        data and commit, so the registry shows what an alias points at), and move `alias` to
        it; returns (the new version, the version the alias left, or None)."""
        from mlflow.exceptions import MlflowException

        try:
            before = str(self.client.get_model_version_by_alias(name, alias).version)
        except MlflowException:  # a new name, or no such alias yet
            before = None
        mv = mlflow.register_model(
            model_uri, name, tags={k: str(v) for k, v in (tags or {}).items()}
        )
        self.client.set_registered_model_alias(name, alias, mv.version)
        return str(mv.version), before

    def version_tags(self, name: str, version: str) -> dict[str, str]:
        return dict(self.client.get_model_version(name, version).tags)

    def search(
        self, filter_string: str = "", experiment_ids: list[str] | None = None
    ) -> pd.DataFrame:
        return mlflow.search_runs(
            experiment_ids=experiment_ids or [self.experiment_id], filter_string=filter_string
        )

    def terminate(self, run_id: str, status: str = "FINISHED") -> None:
        self.client.set_terminated(run_id, status)

    def reopen(self, run_id: str) -> None:
        """A finished run RUNNING again (a resumed sweep's parent), until `terminate`."""
        self.client.update_run(run_id, status="RUNNING")


def _requirements() -> list[str]:
    from importlib.metadata import version

    pins = []
    for pkg in (
        "torch",
        "pytorch-lightning",
        "pandas",
        "scikit-learn",
        "numpy",
        "pyarrow",
        "pyyaml",
        "matplotlib",
    ):
        try:
            pins.append(f"{pkg}=={version(pkg).split('+')[0]}")
        except Exception:  # a package missing here is simply not pinned
            pins.append(pkg)
    return pins


def one_line(exc: Exception, limit: int = 400) -> str:
    """MLflow's message on one line: its reason often follows a first line ending in a colon."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def resolve_alias(uri: str) -> tuple[str, str] | None:
    """`models:/NAME@ALIAS` (or `/latest`, or a stage) -> (`models:/NAME/VERSION`, run id) as it
    points now, so a batch scores with, and records, one version even if it moves meanwhile;
    None for any other URI (a version number is pinned already)."""
    if not uri.startswith("models:/") or re.fullmatch(r"models:/[^/@]+(/\d*)?", uri):
        return None  # a version number, or a logged model's id (models:/m-...): fixed already
    from mlflow.store.artifact.utils.models import get_model_name_and_version

    mlflow.set_tracking_uri(_existing_store(uri))
    client = MlflowClient()
    try:
        name, version = get_model_name_and_version(client, uri)
        run_id = client.get_model_version(name, version).run_id
    except MlflowException as exc:
        raise FileNotFoundError(f"model {uri}: {one_line(exc)}") from None
    return f"models:/{name}/{version}", run_id


def _existing_store(uri: str) -> str:
    """The tracking store; a SQLite file that is not there is refused, since MLflow would
    create an empty store there, then say the model is not found."""
    store = tracking_uri()
    if store.startswith("sqlite:///") and not Path(unquote(store[len("sqlite:///") :])).exists():
        raise FileNotFoundError(
            f"model {uri}: no MLflow store at {unquote(store[len('sqlite:///') :])}; run from "
            "the folder that holds the run's mlflow.db, or set MLFLOW_TRACKING_URI"
        )
    return store


def download_model(uri: str, into: Path) -> Path:
    """An MLflow model URI (runs:/, models:/NAME@ALIAS, models:/NAME/VERSION) -> its saved
    pipeline folder, downloaded from the tracking store into `into` (the caller's temporary
    folder: nothing is left behind), and kept in the cache when the URI cannot change. What
    MLflow cannot find is the user's to fix; any other failure is the tool's (exit 1, traceback
    kept)."""
    if not uri.startswith(("runs:/", "models:/")) and "://" not in uri:
        raise FileNotFoundError(
            f"model {uri}: neither a saved pipeline folder nor an MLflow model URI "
            "(runs:/RUN_ID/model, models:/NAME@ALIAS, models:/NAME/VERSION)"
        )
    if re.fullmatch(r"runs:/[^/]+/?", uri):
        raise FileNotFoundError(f"model {uri}: name the model in the run: {uri.rstrip('/')}/model")
    mlflow.set_tracking_uri(_existing_store(uri))
    try:
        path = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(into)))
    except MlflowException as exc:
        hint = ""
        m = re.fullmatch(r"models:/([^/@]+)/?", uri)  # MLflow reads it as a model's id
        if m and not m[1].startswith("m-"):  # a name meant as a registered model's
            hint = f" (a registered model: models:/{m[1]}/VERSION or models:/{m[1]}@ALIAS)"
        raise FileNotFoundError(f"model {uri}: {one_line(exc)}{hint}") from None
    except ImportError as exc:  # a store's client library (boto3 for s3://) not installed here
        raise FileNotFoundError(f"model {uri}: {exc}; install it to read this store") from None
    if not path.is_dir() or find_pipeline_folder(path) is None:  # checked before it is cached
        raise FileNotFoundError(f"model {uri}: no anomaly pipeline inside")
    return find_pipeline_folder(model_cache.store(uri, path))


def runs_frame(experiment: str | None = None, parent_run_id: str | None = None) -> pd.DataFrame:
    """Finished and failed runs of an experiment (or children of a parent) as a DataFrame."""
    mlflow.set_tracking_uri(tracking_uri())
    client = MlflowClient()
    if parent_run_id:
        parent = client.get_run(parent_run_id)
        ids = [parent.info.experiment_id]
        flt = f"tags.mlflow.parentRunId = '{parent_run_id}'"
    else:
        exp = client.get_experiment_by_name(experiment)
        if exp is None:
            raise UserError(f"no MLflow experiment named {experiment!r} in {tracking_uri()}")
        ids, flt = [exp.experiment_id], ""
    return mlflow.search_runs(experiment_ids=ids, filter_string=flt, max_results=50000)


def _refuse_deleted(exp, uri: str) -> None:
    if exp.lifecycle_stage == "deleted":  # MLflow would refuse the first run logged there
        raise UserError(
            f"MLflow experiment {exp.name!r} was deleted in {uri}: restore it (mlflow "
            f"experiments restore --experiment-id {exp.experiment_id}) or use another name"
        )


SWEPT_AT = "anomaly.swept_at"  # when a sweep last ran under a parent run, ms since the epoch


def parent_run(sweep: str) -> tuple[str, dict]:
    """A sweep's parent run from its run id or its experiment name (the one swept last there)."""
    mlflow.set_tracking_uri(tracking_uri())
    client = MlflowClient()
    if len(sweep) == 32 and all(c in "0123456789abcdef" for c in sweep):
        run = client.get_run(sweep)
    else:
        exp = client.get_experiment_by_name(sweep)
        if exp is None:
            raise UserError(f"no MLflow experiment or run named {sweep!r} in {tracking_uri()}")
        runs = client.search_runs(
            [exp.experiment_id], "tags.`anomaly.role` = 'parent'", max_results=50_000
        )
        if not runs:
            raise UserError(f"experiment {sweep!r} has no sweep parent run")
        # the one swept last, resumed or new (a parent from before the tag: its start)
        run = max(runs, key=lambda r: int(r.data.tags.get(SWEPT_AT, r.info.start_time)))
    params = dict(run.data.params)
    params["experiment"] = client.get_experiment(run.info.experiment_id).name
    return run.info.run_id, params


def artifact_text(run_id: str, path: str) -> str | None:
    """A run's text artifact, or None when the run has none at that path. A store that fails
    to read one it has raises: a report must not quietly lose a cell's table."""
    folder = path.rpartition("/")[0] or None
    listed = {a.path for a in MlflowClient(tracking_uri()).list_artifacts(run_id, folder)}
    if path not in listed:
        return None
    return mlflow.artifacts.load_text(f"runs:/{run_id}/{path}")


def run_data(run_id: str) -> tuple[dict, dict, dict]:
    """(tags, params, latest metrics) of a run."""
    run = MlflowClient(tracking_uri()).get_run(run_id)
    return dict(run.data.tags), dict(run.data.params), dict(run.data.metrics)


def metric_history(run_id: str, key: str) -> list[tuple[int, float]]:
    """(step, value) of every value of a run's metric, in step order."""
    client = MlflowClient(tracking_uri())
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))
