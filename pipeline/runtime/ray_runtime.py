"""The Ray runtime: each stream's ``Sequencer`` runs in this process (one thread per stream), detection and DIC run
in Ray actor pools shared by all streams of a job, on this machine or across a cluster.

- Detection actors take one frame's images (the whole frame, or the regions around its tracked faces) per call.
- DIC actors batch across frames and streams: requests that arrive within ``max_wait_ms`` of each other are run
  as one forward pass of up to ``max_batch`` faces, then split back to their callers.
- Back-pressure: a stream has at most ``lookahead`` decoded frames and two DIC windows in flight, so memory does
  not grow with the length of a video.
- Faults: actors are restarted by Ray when their process dies; a call lost with its actor is sent again (to the
  restarted actor or another one of the pool) and counted as a retry, so no frame is lost or written twice.

Without an address an embedded local Ray is started, sized to this machine, with a small object store.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np

from configs.schema import RunConfig
from models.errors import DicfaceError, InputError
from pipeline.align import Aligner, FaceCrop
from pipeline.blend import Blender
from pipeline.detect.regions import DetectPlan
from pipeline.detect.spec import DetectorSpec
from pipeline.enhance import EnhancedFace
from pipeline.runtime.sequencer import RunOptions, Sequencer, StreamRunner
from pipeline.track import TrackConfig
from pipeline.types import Detection

T = TypeVar("T")
RETRIES = 3  # times a call lost with its actor is sent again
ACTOR_RESTARTS = 3  # times Ray restarts a dead actor process
PLACEMENT_TIMEOUT = 120.0  # seconds for the pools' actors to start (load their models) before giving up


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide the pools run. ``workers``: actors in each pool; ``cpus_per_actor`` is also the
    actor's thread count; ``gpus_per_actor`` applies to DIC actors (fractions share a GPU); ``*_resources``: custom
    Ray resources an actor needs (to place a pool on particular nodes)."""

    address: str | None = None
    workers: int = 1
    cpus_per_actor: float = 1.0
    gpus_per_actor: float = 0.0
    max_wait_ms: float = 10.0
    lookahead: int = 16
    detect_resources: dict[str, float] = field(default_factory=dict)
    dic_resources: dict[str, float] = field(default_factory=dict)
    object_store_mb: int = 256

    def __post_init__(self) -> None:
        if self.workers < 1 or self.cpus_per_actor <= 0 or self.gpus_per_actor < 0:
            raise InputError(f"invalid Ray options: workers {self.workers}, cpus per actor {self.cpus_per_actor}, "
                             f"gpus per actor {self.gpus_per_actor}")
        if self.max_wait_ms < 0 or self.lookahead < 0:
            raise InputError("--max-wait-ms and the lookahead cannot be negative")


@dataclass(frozen=True)
class ActorStats:
    """One actor's work so far: busy seconds, calls, items (images or faces) and the Ray node it runs on."""

    node: str
    busy: float
    calls: int
    items: int


def _node() -> str:
    import ray

    return ray.get_runtime_context().get_node_id()


class DetectorActor:
    """A detector in its own process: one call per frame (its whole image, or its face regions)."""

    def __init__(self, spec: DetectorSpec, threads: int) -> None:
        import cv2

        cv2.setNumThreads(threads)
        self.detector = spec.build()
        self.busy, self.calls, self.items = 0.0, 0, 0

    def detect(self, images: list[np.ndarray]) -> list[list[Detection]]:
        start = time.perf_counter()
        found = [self.detector(image) for image in images]
        self.busy += time.perf_counter() - start
        self.calls += 1
        self.items += len(images)
        return found

    def stats(self) -> ActorStats:
        return ActorStats(_node(), self.busy, self.calls, self.items)


class EnhancerActor:
    """DIC in its own process, batching the faces of concurrent requests into one forward pass (async actor: the
    event loop gathers requests while the network runs in a worker thread)."""

    def __init__(self, cfg: RunConfig, seed: str, threads: int, max_wait_ms: float) -> None:
        import torch

        from pipeline.enhance import load_enhancer

        torch.set_num_threads(threads)
        self.enhancer, _ = load_enhancer(cfg, seed)
        self.max_batch = cfg.inference.max_batch
        self.max_wait = max_wait_ms / 1000
        self.queue: list[tuple[list[FaceCrop], asyncio.Future[list[EnhancedFace]]]] = []
        self.arrived: asyncio.Event | None = None
        self.network = ThreadPoolExecutor(1)
        self.busy, self.calls, self.items = 0.0, 0, 0

    async def enhance(self, crops: list[FaceCrop]) -> list[EnhancedFace]:
        if self.arrived is None:
            self.arrived = asyncio.Event()
            asyncio.get_running_loop().create_task(self._serve())
        answer: asyncio.Future[list[EnhancedFace]] = asyncio.get_running_loop().create_future()
        self.queue.append((crops, answer))
        self.arrived.set()
        return await answer

    def _waiting(self) -> int:
        return sum(len(crops) for crops, _ in self.queue)

    async def _serve(self) -> None:
        assert self.arrived is not None
        loop = asyncio.get_running_loop()
        while True:
            await self.arrived.wait()
            deadline = loop.time() + self.max_wait
            while self._waiting() < self.max_batch and loop.time() < deadline:
                self.arrived.clear()
                try:
                    await asyncio.wait_for(self.arrived.wait(), deadline - loop.time())
                except TimeoutError:
                    break
            taken, faces = [], 0
            while self.queue and (not taken or faces + len(self.queue[0][0]) <= self.max_batch):
                taken.append(self.queue.pop(0))
                faces += len(taken[-1][0])
            if not self.queue:
                self.arrived.clear()
            await self._run(taken)

    async def _run(self, taken: list[tuple[list[FaceCrop], asyncio.Future[list[EnhancedFace]]]]) -> None:
        crops = [c for request, _ in taken for c in request]
        start = time.perf_counter()
        try:
            faces = await asyncio.get_running_loop().run_in_executor(self.network, self.enhancer, crops)
        except Exception as exc:  # noqa: BLE001 -- handed to every caller of the batch
            for _, answer in taken:
                answer.set_exception(exc)
            return
        self.busy += time.perf_counter() - start
        self.calls += 1
        self.items += len(crops)
        offset = 0
        for request, answer in taken:
            answer.set_result(faces[offset : offset + len(request)])
            offset += len(request)

    async def stats(self) -> ActorStats:
        return ActorStats(_node(), self.busy, self.calls, self.items)


class ActorPool:
    """Actors of one kind; a call goes to the actor with the fewest calls outstanding. Thread-safe."""

    def __init__(self, name: str, actors: list[Any], method: str) -> None:
        self.name, self.actors, self.method = name, actors, method
        self.outstanding = [0] * len(actors)
        self.retries = 0
        self._lock = threading.Lock()

    def call(self, *args: Any) -> RayPending[Any]:
        return RayPending(self, args)

    def send(self, args: tuple[Any, ...]) -> tuple[int, Any]:
        with self._lock:
            i = min(range(len(self.actors)), key=self.outstanding.__getitem__)
            self.outstanding[i] += 1
        return i, getattr(self.actors[i], self.method).remote(*args)

    def done(self, i: int, retried: bool) -> None:
        with self._lock:
            self.outstanding[i] -= 1
            self.retries += retried

    def queued(self) -> int:
        return sum(self.outstanding)

    def stats(self) -> list[ActorStats]:
        import ray

        return ray.get([actor.stats.remote() for actor in self.actors], timeout=PLACEMENT_TIMEOUT)


class RayPending(Generic[T]):
    """A call in flight on a pool; ``result()`` waits for it and sends it again if its actor died."""

    def __init__(self, pool: ActorPool, args: tuple[Any, ...]) -> None:
        self.pool, self.args = pool, args
        self.actor, self.ref = pool.send(args)

    def result(self) -> T:
        import ray
        from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError

        for attempt in range(RETRIES + 1):
            try:
                value = ray.get(self.ref)
            except (RayActorError, ActorDiedError, ActorUnavailableError) as exc:
                self.pool.done(self.actor, retried=True)
                if attempt == RETRIES:
                    raise DicfaceError(f"{self.pool.name} actor lost {RETRIES + 1} times; giving up ({exc})") from exc
                self.actor, self.ref = self.pool.send(self.args)
                continue
            self.pool.done(self.actor, retried=False)
            return value
        raise AssertionError("unreachable")


class RayServices:
    """``Services`` on the pools: detection and DIC results come back as ``RayPending``."""

    def __init__(self, detect: ActorPool, enhance: ActorPool | None, lookahead: int) -> None:
        self.detect_pool, self.enhance_pool, self.lookahead = detect, enhance, lookahead

    def detect(self, images: list[np.ndarray]) -> RayPending[list[list[Detection]]]:
        return self.detect_pool.call(images)

    def enhance(self, crops: list[FaceCrop]) -> RayPending[list[EnhancedFace]]:
        assert self.enhance_pool is not None, "enhance() needs a DIC pool"
        return self.enhance_pool.call(crops)


@dataclass(frozen=True)
class PoolUsage:
    """A pool's work over a run: busy % of its actors' time, calls, items, retries and the nodes it ran on."""

    actors: int
    busy_percent: float
    busy_seconds: float  # summed over the actors
    calls: int
    items: int
    retries: int
    nodes: list[str]


class RayRunner(StreamRunner):
    """Same interface as ``LocalRunner``; ``run`` may be called from several threads at once (one per stream), all
    sharing the pools. ``close()`` (or ``with``) ends the actors."""

    def __init__(
        self,
        plan: DetectPlan,
        detector: DetectorSpec,
        track_cfg: TrackConfig,
        aligner: Aligner,
        dic: tuple[RunConfig, str] | None,
        blender: Blender,
        options: RunOptions = RunOptions(),
        ray_options: RayOptions = RayOptions(),
    ) -> None:
        import ray

        from models.distributed import connect

        connect(ray_options.address, ray_options.object_store_mb)
        self.ray_options = ray_options
        threads = max(1, int(ray_options.cpus_per_actor))
        restart = {"max_restarts": ACTOR_RESTARTS, "max_task_retries": 0}
        detect_cls = ray.remote(DetectorActor).options(
            num_cpus=ray_options.cpus_per_actor, resources=ray_options.detect_resources, **restart)
        self.detect_pool = ActorPool("detection", [detect_cls.remote(detector, threads)
                                                   for _ in range(ray_options.workers)], "detect")
        self.enhance_pool = None
        if dic is not None:
            dic_cls = ray.remote(EnhancerActor).options(
                num_cpus=ray_options.cpus_per_actor, num_gpus=ray_options.gpus_per_actor,
                resources=ray_options.dic_resources, max_concurrency=1000, **restart)
            cfg, seed = dic
            self.enhance_pool = ActorPool("DIC", [dic_cls.remote(cfg, seed, threads, ray_options.max_wait_ms)
                                                  for _ in range(ray_options.workers)], "enhance")
        super().__init__(Sequencer(plan, track_cfg, aligner, dic is not None, blender, options),
                         RayServices(self.detect_pool, self.enhance_pool, ray_options.lookahead))
        self._baseline = self._stats()
        self._started = time.perf_counter()

    def pools(self) -> dict[str, ActorPool]:
        return {"detect": self.detect_pool} | ({"enhance": self.enhance_pool} if self.enhance_pool else {})

    def _stats(self) -> dict[str, list[ActorStats]]:
        import ray
        from ray.exceptions import GetTimeoutError

        try:
            return {name: pool.stats() for name, pool in self.pools().items()}
        except GetTimeoutError as exc:
            need = self.ray_options.cpus_per_actor * sum(len(p.actors) for p in self.pools().values())
            have = ray.cluster_resources().get("CPU", 0)
            raise DicfaceError(f"the actors could not be placed within {PLACEMENT_TIMEOUT:g} s: the pools ask for "
                               f"{need:g} CPUs (and any GPUs/resources named), the cluster has {have:g}; lower "
                               f"--workers or --cpus-per-actor") from exc
        except Exception as exc:  # noqa: BLE001 -- Ray wraps the actor's start-up error
            raise DicfaceError(f"the Ray actors could not start ({exc})") from exc

    def queue_line(self) -> str:
        """Calls waiting or running in each pool, e.g. ``detect 2 | enhance 1``."""
        return " | ".join(f"{name} {pool.queued()}" for name, pool in self.pools().items())

    def usage(self) -> dict[str, PoolUsage]:
        """Each pool's work since the runner started (busy % of the actors' wall time)."""
        wall = time.perf_counter() - self._started
        usage = {}
        for name, stats in self._stats().items():
            before = self._baseline[name]
            busy = sum(s.busy - b.busy for s, b in zip(stats, before, strict=True))
            pool = self.pools()[name]
            usage[name] = PoolUsage(
                actors=len(stats), busy_percent=round(100 * busy / (wall * len(stats)), 1),
                busy_seconds=round(busy, 3),
                calls=sum(s.calls - b.calls for s, b in zip(stats, before, strict=True)),
                items=sum(s.items - b.items for s, b in zip(stats, before, strict=True)),
                retries=pool.retries, nodes=sorted({s.node for s in stats}))
        return usage

    def close(self) -> None:
        import ray

        for pool in self.pools().values():
            for actor in pool.actors:
                ray.kill(actor)

    def __enter__(self) -> RayRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def default_workers() -> int:
    """Actors per pool on this machine when none is asked for: one per two cores (each pool has its own)."""
    return max(1, (os.cpu_count() or 2) // 2)

