"""Local copies of immutable MLflow models, found without importing MLflow.

`runs:/<run_id>/<path>` never changes once logged, nor does a registered `models:/<name>/<version>`
while it stays registered (the cache checks that it does), so a model downloaded once is read
from this cache afterwards: a daily `anomaly score` with such a URI then
starts as fast as with a local folder. Aliases (`models:/NAME@champion`) can move and are always
resolved by MLflow. The cache is keyed by tracking store, so two stores never share an entry.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path
from urllib.parse import unquote, urlparse

from anomaly import user_dir

log = logging.getLogger(__name__)
IMMUTABLE = re.compile(r"^(runs:/[0-9a-f]{32}/.+|models:/[^/@]+/\d+)$")
RUN_MODEL = re.compile(r"^runs:/(?P<run>[0-9a-f]{32})/(?P<name>[^/]+)$")


def tracking_uri() -> str:
    """The tracking store: `MLFLOW_TRACKING_URI`, else `mlflow.db` in the working directory."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def canonical_store(uri: str) -> str:
    """The store a URI names, however it was written: `sqlite:///mlflow.db` in two folders is
    two stores, so a relative path is made absolute before it keys anything."""
    if uri.startswith("sqlite:///"):
        return "sqlite:///" + str(Path(unquote(uri[len("sqlite:///") :])).resolve())
    if urlparse(uri).scheme == "":
        return str(Path(uri).resolve())
    return uri


def cache_path(uri: str) -> Path | None:
    """Where an immutable model URI is kept; None for URIs that may change. A registered
    version can be deleted and its number given to another model, so it is keyed by the run
    and time it was registered from (read from a SQLite store), and not cached elsewhere."""
    if not IMMUTABLE.match(uri):
        return None
    store_uri = canonical_store(tracking_uri())
    identity = uri
    if uri.startswith("models:/"):
        registry = os.environ.get("MLFLOW_REGISTRY_URI")
        if registry and canonical_store(registry) != store_uri:
            return None  # MLflow reads versions from that registry, not from the store's table
        version = _registered(store_uri, *uri[len("models:/") :].split("/"))
        if version is None:
            return None
        identity = f"{uri}|{version}"
    key = hashlib.sha256(f"{store_uri}|{identity}".encode()).hexdigest()[:24]
    return user_dir("models") / key


def _registered(store_uri: str, name: str, version: str) -> str | None:
    """'run_id|creation_time' of a registered model version in a SQLite store; None when it is
    not there or the store is not SQLite on this disk (MLflow then resolves it each time)."""
    row = _sqlite_row(
        store_uri,
        "SELECT run_id, creation_time FROM model_versions WHERE name = ? AND version = ?",
        (name, int(version)),
    )
    return None if row is None else f"{row[0]}|{row[1]}"


def _sqlite_row(store_uri: str, sql: str, args: tuple) -> tuple | None:
    """One row of a SQLite store on this disk, read with Python's own sqlite3 (MLflow's store
    takes about 2 s to import); None for another store, no row, another schema or a locked
    file: MLflow then knows better."""
    if not store_uri.startswith("sqlite:///"):
        return None
    db = Path(store_uri[len("sqlite:///") :])
    if not db.is_file():
        return None
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
            return con.execute(sql, args).fetchone()
    except sqlite3.Error:
        return None


def cached(uri: str) -> Path | None:
    path = cache_path(uri)
    return path if path is not None and path.is_dir() else None


def store(uri: str, folder: Path) -> Path:
    """Copy a downloaded model folder into the cache (atomically: copy, then rename). The
    cache only saves time: where it cannot be written, the download is used, with a warning."""
    path = cache_path(uri)
    if path is None:
        return folder
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(folder, tmp, dirs_exist_ok=True)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        log.warning("model %s not cached (%s); it is downloaded again next time", uri, exc)
        return folder
    try:
        tmp.rename(path)
    except OSError:  # another process cached it first: keep theirs
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def local_model(uri: str) -> Path | None:
    """The folder of a `runs:/ID/NAME` model kept on this disk by a SQLite store, read without
    MLflow; None for any other URI or store, which MLflow then resolves."""
    m = RUN_MODEL.match(uri)
    if m is None:
        return None
    row = _sqlite_row(
        canonical_store(tracking_uri()),
        "SELECT artifact_location FROM logged_models WHERE source_run_id = ? AND name = ?"
        " AND lifecycle_stage = 'active' ORDER BY creation_timestamp_ms DESC LIMIT 1",
        (m["run"], m["name"]),
    )
    if row is None or urlparse(row[0]).scheme not in ("file", ""):
        return None
    folder = Path(unquote(urlparse(row[0]).path))
    return folder if folder.is_dir() else None
