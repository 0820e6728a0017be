"""dicface's learning side (no video, no Ray in the network code): the DIC network (``dic``, ``blocks``,
``hourglass``, ``heatmaps``), face crops and their normalisation (``faces``), inference on torch or OpenVINO
(``inference``, ``openvino_net``), weights and their cards (``registry``, ``checkpoints``), training (``train``,
``data``, ``degrade``, ``gan``, ``distributed``), measures (``metrics``, ``identity``, ``evaluate``, ``bench``), and
what every side shares: errors, atomic outputs, progress bars, optional extras."""
