"""Data-parallel training on Ray Train: the same ``Trainer`` on N workers (CPU or GPU), one machine or a cluster.

Ray is only the runtime: it starts the workers, sets up ``torch.distributed`` (gloo on CPU, NCCL on GPU) and
places them on the cluster. Every worker runs ``models.train.Trainer`` with its rank; DDP averages the gradients,
so N workers with ``batch_size / N`` samples each make the same step as one worker with the whole batch. The run
folder (``out_dir``) must be on storage all workers see (a shared or local disk on one machine).
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass, replace
from pathlib import Path

from dicface.configs.model import TrainConfig
from dicface.models.errors import DicfaceError, InputError
from dicface.models.extras import require
from dicface.models.progress import BarFactory, no_bars


@dataclass(frozen=True)
class ClusterOptions:
    workers: int = 2
    gpus_per_worker: float = 0.0  # fractional GPUs allowed
    cpus_per_worker: float = 1.0
    threads_per_worker: int | None = None  # torch threads in each worker (default: its CPUs)
    address: str | None = None  # None: RAY_ADDRESS or an embedded local Ray; "auto" or HOST:PORT: a cluster

    def __post_init__(self) -> None:
        if self.workers < 1 or self.gpus_per_worker < 0 or self.cpus_per_worker <= 0:
            raise InputError(f"invalid cluster options: {self}")


def _worker(config: dict) -> None:
    """Ray Train's per-worker loop: build the data and the trainer for this rank and train."""
    import ray.train
    import torch

    from dicface.models.train import Trainer, load_training_data

    cfg: TrainConfig = config["cfg"]
    options: ClusterOptions = config["options"]
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    torch.set_num_threads(options.threads_per_worker or max(1, int(options.cpus_per_worker)))
    device = ray.train.torch.get_device() if options.gpus_per_worker > 0 else torch.device("cpu")
    last = Path(cfg.out_dir) / "last.pt"
    if config["resume"] and last.is_file():
        cfg = replace(cfg, init=None, hg_init=None)  # the resumed state replaces them
    data, val = load_training_data(cfg, config["bars"])
    trainer = Trainer(cfg, data, val if rank == 0 else None, rank=rank, world=world, device=device)
    if config["resume"] and last.is_file():
        trainer.resume(last)
    trainer.run(config["bars"])


def use_auth_token() -> bool:
    """Clients of a cluster started with Ray's defaults (>= 2.59: token authentication, the token in
    ``~/.ray/auth_token``) must present the token, and a plain client does not; a token client reaches clusters
    without authentication too. So where a token is at hand (``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH`` or
    ``~/.ray/auth_token``) and ``RAY_AUTH_MODE`` is not set, token mode is turned on for this process (Ray reads the
    variable). Returns whether token mode is on."""
    if "RAY_AUTH_MODE" in os.environ:
        return os.environ["RAY_AUTH_MODE"] == "token"
    path = os.environ.get("RAY_AUTH_TOKEN_PATH")
    if os.environ.get("RAY_AUTH_TOKEN") or Path(path or Path.home() / ".ray" / "auth_token").is_file():
        os.environ["RAY_AUTH_MODE"] = "token"
        if "ray._raylet" in sys.modules:  # Ray caches its configuration: refresh it as Ray's own helper does
            sys.modules["ray._raylet"].Config.initialize("")
        return True
    return False


def connect(address: str | None, object_store_mb: int = 256) -> None:
    """Join the Ray cluster at ``address`` (``auto``, HOST:PORT; None: ``RAY_ADDRESS``), or start an embedded local
    Ray of this process's own with a modest object store (``address="local"``: never a cluster someone else started
    on this machine, which a bare ``ray.init()`` would join). Nothing is shipped to a cluster: every node runs the
    ``dicface`` package it has installed (``pip install 'dicface[ray]'``, the same version as here). The process's
    SIGINT/SIGTERM handlers are kept (``ray.init`` replaces SIGTERM's with its own, which would skip dicface's
    clean-up)."""
    import signal

    ray = require("ray", "ray", "the Ray runtime")

    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    token = address is not None and use_auth_token()
    try:
        ray.init(address=address or "local", include_dashboard=False, log_to_driver=True,
                 object_store_memory=None if address else object_store_mb * 1024**2)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        if token:
            hint = ("; if it uses token authentication, check RAY_AUTH_TOKEN / RAY_AUTH_TOKEN_PATH / ~/.ray/auth_token "
                    "against `ray get-auth-token` on its head node")
        else:
            hint = ("; if it uses token authentication (Ray's default since 2.59), set RAY_AUTH_TOKEN to the output "
                    "of `ray get-auth-token` on its head node (RAY_AUTH_MODE=token is then implied)")
        raise InputError(f"cannot reach the Ray cluster at {address} ({str(exc).splitlines()[0]}){hint}") from exc
    finally:
        if threading.current_thread() is threading.main_thread():
            for sig, handler in handlers.items():
                if handler is not None:
                    signal.signal(sig, handler)


def train_on_ray(cfg: TrainConfig, options: ClusterOptions, resume: bool = False, bars: BarFactory = no_bars
                 ) -> None:
    """Run ``cfg`` on ``options.workers`` Ray Train workers; rank 0 writes the run folder as in-process (its
    progress on a bar from ``bars``, which must pickle: ``tqdm`` does)."""
    require("ray.train", "ray", "training on Ray")
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    if cfg.batch_size % options.workers:
        raise InputError(f"batch_size {cfg.batch_size} does not split over {options.workers} workers")
    out_dir = Path(cfg.out_dir).resolve()
    cfg = _absolute_paths(cfg)
    connect(options.address)
    resources = {"CPU": options.cpus_per_worker}
    if options.gpus_per_worker:
        resources["GPU"] = options.gpus_per_worker
    trainer = TorchTrainer(
        _worker,
        train_loop_config={"cfg": cfg, "options": options, "resume": resume, "bars": bars},
        scaling_config=ScalingConfig(num_workers=options.workers, use_gpu=options.gpus_per_worker > 0,
                                     resources_per_worker=resources),
        run_config=RunConfig(name="dicface-train", storage_path=str(out_dir / "ray")),
    )
    try:
        trainer.fit()
    except Exception as exc:  # Ray wraps worker errors in its own types
        cause = exc
        while cause.__cause__ is not None:
            cause = cause.__cause__
        if isinstance(cause, DicfaceError):
            raise cause from exc
        raise DicfaceError(f"distributed training failed ({type(cause).__name__}: {cause})") from exc


def _absolute_paths(cfg: TrainConfig) -> TrainConfig:
    """Workers may start in another directory: every path of the config made absolute."""
    fields = ("train_images", "train_landmarks", "out_dir", "val_images", "val_landmarks", "cache_dir", "init",
              "hg_init", "feature_init")
    return replace(cfg, **{f: str(Path(getattr(cfg, f)).resolve()) for f in fields if getattr(cfg, f)})
