"""The in-process runtime: one stream at a time, detection and DIC computed in this process, in order."""

from __future__ import annotations

from dicface.configs.video import TrackConfig
from dicface.pipeline.align import Aligner
from dicface.pipeline.blend import Blender
from dicface.pipeline.detect.regions import DetectRequest, ScheduledDetector
from dicface.pipeline.detect.spec import FaceDetector
from dicface.pipeline.enhance import Enhancer
from dicface.pipeline.runtime.sequencer import Ready, RunOptions, Sequencer, StreamRunner
from dicface.pipeline.types import Detection, EnhancedFace, FaceCrop


class LocalServices:
    """Detection and DIC computed at once, in this process."""

    lookahead = 0

    def __init__(self, detector: FaceDetector, enhancer: Enhancer | None) -> None:
        self.detector, self.enhancer = detector, enhancer

    def detect(self, request: DetectRequest) -> Ready[list[list[Detection]]]:
        return Ready(request.search(self.detector))

    def enhance(self, crops: list[FaceCrop]) -> Ready[list[EnhancedFace]]:
        assert self.enhancer is not None, "enhance() needs an Enhancer"
        return Ready(self.enhancer(crops))


class LocalRunner(StreamRunner):
    """Runs the stages on one stream in this process. ``enhancer=None`` passes frames through (``--sr none``)."""

    def __init__(
        self,
        detector: ScheduledDetector,
        track_cfg: TrackConfig,
        aligner: Aligner,
        enhancer: Enhancer | None,
        blender: Blender,
        options: RunOptions = RunOptions(),
    ) -> None:
        super().__init__(Sequencer(detector, track_cfg, aligner, enhancer is not None, blender, options),
                         LocalServices(detector.detector, enhancer))
