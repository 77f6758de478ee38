"""A real Dask cluster for tests: `dask scheduler` and `dask worker` processes on loopback (not a LocalCluster in
the test process), the workers in a working directory of their own; and a worker plugin that kills its worker."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from distributed.diagnostics.plugin import WorkerPlugin

from tests.serving.helpers import free_port

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Cluster:
    address: str
    folder: Path
    workers: list[subprocess.Popen] = field(default_factory=list)

    def wait_for_workers(self, n: int, timeout: float = 60) -> None:
        """Until ``n`` workers are registered (a killed worker's nanny starts a new one)."""
        from dask.distributed import Client

        deadline = time.time() + timeout
        while True:
            try:
                with Client(self.address, timeout=5) as client:
                    if len(client.scheduler_info()["workers"]) >= n:
                        return
            except OSError:
                pass
            assert time.time() < deadline, self.logs()
            time.sleep(0.3)

    def logs(self) -> str:
        return "\n".join(p.read_text()[-3000:] for p in sorted(self.folder.glob("*.log")))


def _start(args: list[str], log: Path, cwd: Path) -> subprocess.Popen:
    # Its own session: the worker's nanny and the worker process it runs are stopped together.
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # the workers unpickle tests' plugins too
    with open(log, "w") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=env, start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


@contextmanager
def real_cluster(folder: Path, workers: int = 2, memory_limit: str = "2GB") -> Iterator[Cluster]:
    """A scheduler and ``workers`` single-threaded worker processes (each under a nanny that restarts it when
    it dies), all started in ``folder/worker-home``: a relative path only works if the client resolves it."""
    dask_cli = shutil.which("dask", path=str(Path(sys.executable).parent))
    assert dask_cli, "the dask command comes with dask[distributed]"
    home = folder / "worker-home"
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    cluster = Cluster(address=f"tcp://127.0.0.1:{port}", folder=folder)
    scheduler = _start([dask_cli, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                       folder / "scheduler.log", home)
    try:
        for i in range(workers):
            cluster.workers.append(_start([dask_cli, "worker", cluster.address, "--nworkers", "1", "--nthreads", "1",
                                           "--memory-limit", memory_limit, "--no-dashboard", "--host", "127.0.0.1"],
                                          folder / f"worker-{i}.log", home))
        cluster.wait_for_workers(workers)
        yield cluster
    finally:
        for proc in cluster.workers:
            _stop(proc)
        _stop(scheduler)


class KillWorker(WorkerPlugin):
    """Kill the worker process with SIGKILL (as the kernel's OOM killer does) when one of its tasks named
    ``task`` (as ``dask.utils.key_split`` names it: ``train_part`` for lightgbm's ``_train_part-<id>``) enters
    worker state ``state``, ``times`` times in all across the cluster.

    The kills are counted in files under ``folder`` (created exclusively, so two workers never take the same
    one); each file holds the worker and the task it killed.
    """

    def __init__(self, task: str, folder: str, times: int = 1, state: str = "executing") -> None:
        self.task, self.folder, self.times, self.state = task, folder, times, state

    def setup(self, worker) -> None:
        self.address = worker.address

    def transition(self, key, start, finish, **kwargs) -> None:
        from dask.utils import key_split

        if finish != self.state or key_split(key) != self.task:
            return
        for i in range(self.times):
            try:
                fd = os.open(os.path.join(self.folder, f"kill-{self.task}-{i}"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                continue
            os.write(fd, f"{self.address} {key}".encode())
            os.close(fd)
            os.kill(os.getpid(), signal.SIGKILL)


@contextmanager
def killing(address: str, folder: Path, task: str, times: int = 1, state: str = "executing") -> Iterator[Path]:
    """While inside, every worker of the cluster at ``address`` runs :class:`KillWorker`; yields the folder of
    kill records."""
    from dask.distributed import Client

    folder.mkdir(parents=True, exist_ok=True)
    name = f"kill-{task}-{state}"
    with Client(address) as client:
        client.register_plugin(KillWorker(task, str(folder), times, state), name=name)
        try:
            yield folder
        finally:
            client.unregister_worker_plugin(name)


def kills(folder: Path) -> list[str]:
    """What :class:`KillWorker` killed: one ``worker key`` line per kill."""
    return [p.read_text() for p in sorted(folder.glob("kill-*"))]
