"""dicface's configurations as frozen dataclasses that import nothing heavy: ``schema`` (``RunConfig``, the whole of
a run, read from YAML and flags, checked by type and range with ``check``), ``video`` (the video stages' sections),
``model`` (the network, inference options, training runs). ``default.yaml`` lists every key of a run at its
default; ``train_*.yaml`` are the shipped members' training stages."""
