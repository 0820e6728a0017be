"""The in-process runtime: detection and DIC computed in this process, at once, in order."""

from __future__ import annotations

from dicface.configs.schema import RunConfig
from dicface.pipeline.detect.regions import DetectRequest
from dicface.pipeline.detect.spec import FaceDetector, build_detector
from dicface.pipeline.enhance import Enhancer, load_enhancer
from dicface.pipeline.report import PoolUsage
from dicface.pipeline.runtime.plan import RunMode
from dicface.pipeline.runtime.sequencer import Ready
from dicface.pipeline.types import Detection, EnhancedFace, FaceCrop


class LocalServices:
    """Detection and DIC computed at once, in this process. ``enhancer`` None: no DIC (``--sr none``)."""

    lookahead = 0

    def __init__(self, detector: FaceDetector, enhancer: Enhancer | None) -> None:
        self.detector, self.enhancer = detector, enhancer
        self.members = {} if enhancer is None else enhancer.configs

    @classmethod
    def load(cls, cfg: RunConfig, mode: RunMode) -> LocalServices:
        """The detector and (with ``mode.sr``) the DIC members ``cfg`` names."""
        return cls(build_detector(cfg.detect, mode.needs_landmarks), load_enhancer(cfg)[0] if mode.sr else None)

    def detect(self, request: DetectRequest) -> Ready[list[list[Detection]]]:
        return Ready(request.search(self.detector))

    def enhance(self, crops: list[FaceCrop]) -> Ready[list[EnhancedFace]]:
        assert self.enhancer is not None, "enhance() needs an Enhancer"
        return Ready(self.enhancer(crops))

    def usage(self) -> dict[str, PoolUsage]:
        return {}

    def queue_line(self) -> str:
        return ""

    def close(self) -> None:
        pass
