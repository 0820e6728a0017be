"""Face detectors behind one interface: ``detector(image) -> list[Detection]`` on (H, W, 3) uint8 RGB images."""
