"""The MLflow registry as serving sees it: which version is champion, and that version's compiled arrays.

Versions are downloaded (only their ``artifacts/serving`` folder) and compiled once into the shared cache,
under a file lock, so several workers starting together do the work once and memory-map the same files.
"""

from __future__ import annotations

import fcntl
import logging
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import yaml

from training.layout import ArtifactError, find_serving_folder
from serving.compile import compile_folder, compile_in_subprocess, rows_in
from serving.compiled import is_compiled
from serving.settings import ServingSettings
from features.settings import CHAMPION

log = logging.getLogger(__name__)

IN_PROCESS_ROWS = 2_000_000  # layouts with more rows than this compile in a child process
KEEP_VERSIONS = 3  # compiled versions kept per model beyond those in use (rollback without a recompile)
_NOT_FOUND = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND")


@dataclass(frozen=True)
class RegisteredVersion:
    """One model version the registry names champion."""

    kind: str
    name: str
    version: str
    run_id: str | None


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


class Registry:
    """Champion lookup and cached download + compile of registered versions."""

    def __init__(self, settings: ServingSettings):
        self.settings = settings
        self._client: Any = None

    def _mlflow(self) -> Any:
        if self._client is None:
            from mlflow import MlflowClient  # imported here: 2 s and 100 MB nobody needs at import time

            uri = self.settings.tracking_uri
            self._client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        return self._client

    def champion(self, kind: str) -> RegisteredVersion | None:
        """The version aliased champion, None when the model or the alias does not exist."""
        from mlflow.exceptions import MlflowException

        name = self.settings.model_name(kind)
        try:
            mv = self._mlflow().get_model_version_by_alias(name, CHAMPION)
        except MlflowException as exc:
            if exc.error_code in _NOT_FOUND:
                return None
            raise
        return RegisteredVersion(kind=kind, name=name, version=str(mv.version), run_id=mv.run_id)

    def compiled(self, version: RegisteredVersion) -> Path:
        """Folder of the compiled arrays of a version, downloading and compiling it on first use."""
        base = self.settings.cache_dir / version.name / version.version
        compiled = base / "compiled"
        if is_compiled(compiled):
            return compiled
        with _locked(base.parent / f".{version.version}.lock"):
            if is_compiled(compiled):  # another worker did it while we waited
                return compiled
            folder = self._download(version, base)
            log.info("compiling %s version %s", version.name, version.version)
            if rows_in(folder) > IN_PROCESS_ROWS:
                compile_in_subprocess(version.kind, folder, compiled)
            else:  # small: a child process would cost more than the memory it gives back
                compile_folder(version.kind, folder, compiled)
            shutil.rmtree(base / "download", ignore_errors=True)  # the arrays hold everything served
        return compiled

    def _download(self, version: RegisteredVersion, base: Path) -> Path:
        import mlflow

        uri = self.settings.tracking_uri
        target = base / "download"
        shutil.rmtree(target, ignore_errors=True)
        log.info("downloading %s version %s", version.name, version.version)
        # The version's storage location, not a models:/ URI: MLflow resolves those against the process-wide
        # registry URI, which this server never sets (several registries may live in one test process).
        location = self._mlflow().get_model_version_download_uri(version.name, version.version).rstrip("/")
        try:  # just the serving folder, where MLmodel says the pyfunc artefact "serving" lies
            mlmodel = mlflow.artifacts.download_artifacts(artifact_uri=f"{location}/MLmodel",
                                                          dst_path=str(base / "mlmodel"), tracking_uri=uri)
            flavor = yaml.safe_load(Path(mlmodel).read_text())["flavors"]["python_function"]
            relative = flavor["artifacts"]["serving"]["path"]
            path = mlflow.artifacts.download_artifacts(artifact_uri=f"{location}/{relative}", dst_path=str(target),
                                                       tracking_uri=uri)
        except Exception as exc:  # noqa: BLE001 - another layout: fetch the whole version and look for it
            log.info("%s version %s: no pyfunc artefact 'serving' (%s); downloading the whole version",
                     version.name, version.version, exc)
            shutil.rmtree(target, ignore_errors=True)
            path = mlflow.artifacts.download_artifacts(artifact_uri=location, dst_path=str(target), tracking_uri=uri)
        finally:
            shutil.rmtree(base / "mlmodel", ignore_errors=True)
        try:
            return find_serving_folder(path)
        except ArtifactError as exc:
            raise ArtifactError(f"{version.name} version {version.version}: {exc}") from None

    def prune(self, name: str, in_use: set[str]) -> None:
        """Remove compiled versions of a model beyond the newest few and those in use.

        Safe while other workers map them: an unlinked file lives on until the last mapping goes.
        """
        folder = self.settings.cache_dir / name
        if not folder.exists():
            return
        versions = sorted((p for p in folder.iterdir() if p.is_dir() and p.name.isdigit()),
                          key=lambda p: int(p.name), reverse=True)
        for path in versions[KEEP_VERSIONS:]:
            if path.name not in in_use:
                shutil.rmtree(path, ignore_errors=True)
