"""dicface's video side, one module per stage or concern (each a plain object or function, tested alone).

- In and out: ``source`` (decode files, URLs, image folders), ``sink`` (encode, atomically), ``colour`` (colour
  tags, HDR, deep samples), ``live`` (camera streams, segment files), ``segments`` (a long file cut into parts).
- Stages, in a frame's order: ``detect/`` (detectors, where to search, the change gate), ``cuts`` (scene cuts),
  ``track`` (Kalman tracks of boxes and landmarks), ``align`` (DIC crops and the size policy), ``frame_context``
  (earlier crops for the multi-frame members), ``enhance`` (DIC over crops, the weights loader), ``fusion``
  (temporal fusion of a track's SR faces), ``blend`` (pasting faces back).
- Running them: ``runtime/`` (what a run is, its runner, the per-stream sequencer, in-process and Ray services),
  ``job`` (a video, a long video in parts, a job of many), ``report`` (what a run reports), ``tracks_file``.
- Measuring: ``temporal`` and ``eval_video`` (stability without a truth), ``quality`` (against a truth),
  ``examples`` (generated clips of real faces), ``bench`` (the benchmarks), ``demo`` (the bundled example).
- ``cli/``: the ``dicface`` command (parse, configure, plan, run, print).
"""
