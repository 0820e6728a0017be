"""dicface learning side: the DIC network, weights, face preprocessing, metrics (no video, no Ray)."""
