"""The Ray runtime: each stream's ``Sequencer`` runs in this process (one thread per stream), detection and DIC run
in Ray actor pools shared by all streams of a job, on this machine or across a cluster.

- Detection actors take one frame's images (the whole frame, or the regions around its tracked faces) per call.
- DIC actors batch across frames and streams: requests that arrive within ``max_wait_ms`` of each other are run
  as one forward pass of up to ``max_batch`` faces, then split back to their callers.
- Back-pressure: a stream has at most ``lookahead`` decoded frames and two DIC windows in flight, so memory does
  not grow with the length of a video.
- Faults: actors are restarted by Ray when their process dies (``ACTOR_RESTARTS`` times each); a call lost with
  its actor waits for the restart and is sent again (to the restarted actor or another one of the pool), counted
  as a retry, so no frame is lost or written twice. It gives up only when Ray reports every actor of the pool dead
  for good (its restarts spent) or an actor stays away longer than ``RESTART_TIMEOUT``. The pools' figures (calls,
  items, busy seconds) are summed by this process from the answers, so an actor's restart does not reset them.

Without an address an embedded local Ray is started, sized to this machine, with a small object store.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, TypeVar

from dicface.configs.model import DICConfig
from dicface.configs.schema import RunConfig
from dicface.configs.video import DetectConfig
from dicface.models.errors import DicfaceError
from dicface.models.extras import require
from dicface.pipeline.detect.regions import DetectRequest
from dicface.pipeline.detect.spec import build_detector
from dicface.pipeline.report import PoolUsage
from dicface.pipeline.runtime.plan import RunMode, default_workers
from dicface.pipeline.types import Detection, EnhancedFace, FaceCrop

logger = logging.getLogger(__name__)

T = TypeVar("T")
ACTOR_RESTARTS = 3  # times Ray restarts a dead actor process
RESTART_TIMEOUT = 120.0  # seconds a lost call waits for its actor (or another of its pool) to come back
PLACEMENT_TIMEOUT = 120.0  # seconds for the pools' actors to start (load their models) before giving up
LOOKAHEAD = 16  # frames a stream decodes ahead of its tracker, so that detection calls overlap
OBJECT_STORE_MB = 256  # the embedded local Ray's object store (frames and crops in flight only)


def _node() -> str:
    import ray

    return ray.get_runtime_context().get_node_id()


def _actor_state(actor: Any) -> str:
    """What Ray's control store says of an actor: ALIVE, RESTARTING, DEAD (restarts spent) ... or UNKNOWN."""
    from ray._private import state  # the GCS actor table; the public state API needs the dashboard

    try:
        return str(state.actors(actor_id=actor._actor_id.hex())["State"])
    except Exception:  # noqa: BLE001 -- a debugging API: no answer is not an answer either way
        return "UNKNOWN"


class DetectorActor:
    """A detector in its own process: one call per frame (its whole image, or its face regions)."""

    def __init__(self, cfg: DetectConfig, landmarks: bool, threads: int) -> None:
        import cv2

        cv2.setNumThreads(threads)
        self.detector = build_detector(cfg, landmarks)

    def detect(self, request: DetectRequest) -> tuple[list[list[Detection]], float]:
        """Each image's detections, and the seconds spent."""
        start = time.perf_counter()
        found = request.search(self.detector)
        return found, time.perf_counter() - start

    def node(self) -> str:
        return _node()


class EnhancerActor:
    """DIC in its own process, batching the faces of concurrent requests into one forward pass (async actor: the
    event loop gathers requests while the network runs in a worker thread)."""

    def __init__(self, cfg: RunConfig, threads: int) -> None:
        import torch

        from dicface.pipeline.enhance import load_enhancer

        torch.set_num_threads(threads)
        self.enhancer, _ = load_enhancer(cfg)
        self.max_batch = cfg.inference.max_batch
        self.max_wait = cfg.runtime.max_wait_ms / 1000
        self.queue: list[tuple[list[FaceCrop], asyncio.Future[tuple[list[EnhancedFace], float]]]] = []
        self.arrived: asyncio.Event | None = None
        self.network = ThreadPoolExecutor(1)

    async def enhance(self, crops: list[FaceCrop]) -> tuple[list[EnhancedFace], float]:
        """The faces, and this request's share (by faces) of its batch's seconds."""
        if self.arrived is None:
            self.arrived = asyncio.Event()
            asyncio.get_running_loop().create_task(self._serve())
        answer: asyncio.Future[tuple[list[EnhancedFace], float]] = asyncio.get_running_loop().create_future()
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

    async def _run(self, taken: list[tuple[list[FaceCrop], asyncio.Future[tuple[list[EnhancedFace], float]]]]
                   ) -> None:
        crops = [c for request, _ in taken for c in request]
        start = time.perf_counter()
        try:
            faces = await asyncio.get_running_loop().run_in_executor(self.network, self.enhancer, crops)
        except Exception as exc:  # noqa: BLE001 -- handed to every caller of the batch
            for _, answer in taken:
                answer.set_exception(exc)
            return
        busy = time.perf_counter() - start
        offset = 0
        for request, answer in taken:
            answer.set_result((faces[offset : offset + len(request)], busy * len(request) / max(len(crops), 1)))
            offset += len(request)

    async def node(self) -> str:
        return _node()


class ActorPool:
    """Actors of one kind; a call goes to the live actor with the fewest calls outstanding. Thread-safe.

    ``calls``, ``items`` and ``busy`` sum the answered calls (their first argument's length, the actor's seconds).
    """

    def __init__(self, name: str, actors: list[Any], method: str) -> None:
        self.name, self.actors, self.method = name, actors, method
        self.outstanding = [0] * len(actors)
        self.dead: set[int] = set()  # actors Ray will not restart again
        self.retries, self.calls, self.items, self.busy = 0, 0, 0, 0.0
        self._lock = threading.Lock()

    def call(self, *args: Any) -> RayPending[Any]:
        return RayPending(self, args)

    def send(self, args: tuple[Any, ...]) -> tuple[int, Any]:
        with self._lock:
            live = [i for i in range(len(self.actors)) if i not in self.dead]
            if not live:
                raise DicfaceError(f"every {self.name} actor died for good (Ray restarted each of them "
                                   f"{ACTOR_RESTARTS} times); see the actors' log lines above")
            i = min(live, key=self.outstanding.__getitem__)
            self.outstanding[i] += 1
        return i, getattr(self.actors[i], self.method).remote(*args)

    def done(self, i: int, retried: bool) -> None:
        with self._lock:
            self.outstanding[i] -= 1
            self.retries += retried

    def answered(self, items: int, busy: float) -> None:
        with self._lock:
            self.calls += 1
            self.items += items
            self.busy += busy

    def lost(self, i: int) -> None:
        """An actor's call was lost: it is out of the pool if Ray says it is dead for good."""
        if _actor_state(self.actors[i]) == "DEAD":
            with self._lock:
                self.dead.add(i)

    def queued(self) -> int:
        return sum(self.outstanding)

    def nodes(self) -> list[str]:
        """The Ray nodes of the live actors (waits until they have started)."""
        import ray

        live = [a for i, a in enumerate(self.actors) if i not in self.dead]
        return ray.get([actor.node.remote() for actor in live], timeout=PLACEMENT_TIMEOUT)


class RayPending(Generic[T]):
    """A call in flight on a pool; ``result()`` waits for it, and sends it again while its actor restarts."""

    def __init__(self, pool: ActorPool, args: tuple[Any, ...]) -> None:
        self.pool, self.args = pool, args
        self.actor, self.ref = pool.send(args)

    def result(self) -> T:
        import ray
        from ray.exceptions import RayActorError

        deadline, wait = None, 0.1
        while True:
            try:
                value, busy = ray.get(self.ref)
            except RayActorError as exc:  # died mid-call, restarting (ActorUnavailableError) or dead for good
                self.pool.done(self.actor, retried=True)
                self.pool.lost(self.actor)
                deadline = deadline or time.monotonic() + RESTART_TIMEOUT
                if time.monotonic() > deadline:
                    raise DicfaceError(f"a {self.pool.name} actor did not come back within {RESTART_TIMEOUT:g} s "
                                       f"({str(exc).splitlines()[0]})") from exc
                logger.warning("a %s actor was lost (%s); sending its call again", self.pool.name,
                               str(exc).splitlines()[0])
                time.sleep(wait)  # a restart takes a moment: do not spend the wait in instant failures
                wait = min(2 * wait, 2.0)
                self.actor, self.ref = self.pool.send(self.args)
                continue
            self.pool.done(self.actor, retried=False)
            self.pool.answered(len(self.args[0]), busy)
            return value


class RayServices:
    """``Services`` on Ray actor pools, started from the run's configuration (``runtime`` section: address, workers,
    CPUs, GPUs and resources per actor); detection and DIC results come back as ``RayPending``. Calls may come from
    several threads at once (one per stream), all sharing the pools. ``close()`` ends the actors."""

    lookahead = LOOKAHEAD

    def __init__(self, cfg: RunConfig, mode: RunMode) -> None:
        from dicface.models.distributed import connect

        ray = require("ray", "ray", "the Ray runtime")
        r = cfg.runtime
        connect(r.address, OBJECT_STORE_MB)
        self.cpus_per_actor, workers = r.cpus_per_actor, r.workers or default_workers()
        threads = max(1, int(r.cpus_per_actor))
        restart = {"max_restarts": ACTOR_RESTARTS, "max_task_retries": 0}
        detect_cls = ray.remote(DetectorActor).options(
            num_cpus=r.cpus_per_actor, resources=r.detect_resources or {}, **restart)
        self.detect_pool = ActorPool("detection", [detect_cls.remote(cfg.detect, mode.needs_landmarks, threads)
                                                   for _ in range(workers)], "detect")
        self.enhance_pool, self.members = None, {}
        if mode.sr:
            dic_cls = ray.remote(EnhancerActor).options(
                num_cpus=r.cpus_per_actor, num_gpus=r.gpus_per_actor, resources=r.dic_resources or {},
                max_concurrency=1000, **restart)
            self.enhance_pool = ActorPool("DIC", [dic_cls.remote(cfg, threads) for _ in range(workers)], "enhance")
            self.members = member_configs(cfg)
        logger.info("Ray runtime: %d detection + %d DIC actors%s", workers, workers if mode.sr else 0,
                    f" on {r.address}" if r.address else "")
        self._nodes()  # waits for the actors to start
        self._started = time.perf_counter()

    def detect(self, request: DetectRequest) -> RayPending[list[list[Detection]]]:
        return self.detect_pool.call(request)

    def enhance(self, crops: list[FaceCrop]) -> RayPending[list[EnhancedFace]]:
        assert self.enhance_pool is not None, "enhance() needs a DIC pool"
        return self.enhance_pool.call(crops)

    def pools(self) -> dict[str, ActorPool]:
        return {"detect": self.detect_pool} | ({"enhance": self.enhance_pool} if self.enhance_pool else {})

    def _nodes(self) -> dict[str, list[str]]:
        import ray
        from ray.exceptions import GetTimeoutError

        try:
            return {name: pool.nodes() for name, pool in self.pools().items()}
        except GetTimeoutError as exc:
            need = self.cpus_per_actor * sum(len(p.actors) for p in self.pools().values())
            have = ray.cluster_resources().get("CPU", 0)
            raise DicfaceError(f"the actors could not be placed within {PLACEMENT_TIMEOUT:g} s: the pools ask for "
                               f"{need:g} CPUs (and any GPUs/resources named), the cluster has {have:g}; lower "
                               f"--workers or --cpus-per-actor") from exc
        except Exception as exc:  # Ray wraps the actor's start-up error
            raise DicfaceError(f"the Ray actors could not start ({exc})") from exc

    def queue_line(self) -> str:
        """Calls waiting or running in each pool, e.g. ``detect 2 | enhance 1``."""
        return " | ".join(f"{name} {pool.queued()}" for name, pool in self.pools().items())

    def usage(self) -> dict[str, PoolUsage]:
        """Each pool's work since the pools started (busy % of the actors' wall time); calls and items are the
        requests answered and their images or faces."""
        wall = time.perf_counter() - self._started
        usage = {}
        for name, nodes in self._nodes().items():
            pool = self.pools()[name]
            usage[name] = PoolUsage(
                actors=len(pool.actors), busy_percent=round(100 * pool.busy / (wall * len(pool.actors)), 1),
                busy_seconds=round(pool.busy, 3), calls=pool.calls, items=pool.items, retries=pool.retries,
                nodes=sorted(set(nodes)))
        return usage

    def close(self) -> None:
        import ray

        for pool in self.pools().values():
            for actor in pool.actors:
                ray.kill(actor)


def member_configs(cfg: RunConfig) -> dict[int, DICConfig]:
    """The configuration of each DIC member of a run, by input size (read off cards or shapes; no model is
    built)."""
    from dicface.models.registry import family

    return {r.config.input_size: r.config
            for r in family(cfg.model.weights, cfg.model.scale, upscale=cfg.enhance.upscale)}
