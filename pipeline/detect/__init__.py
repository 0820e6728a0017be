"""Face detection: the detectors behind one interface (``spec.FaceDetector``: (H, W, 3) uint8 RGB image ->
detections; ``spec.build_detector`` makes the one a ``DetectConfig`` names: ``yunet``, ``insightface``,
``dlib_backend``), what to search in each frame (``regions``: the whole frame on schedule, else the tracked faces'
regions) and where the picture changed (``gate``)."""
