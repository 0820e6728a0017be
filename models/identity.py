"""Is the output still the same person? dlib's 128-D face descriptor (a ResNet trained for face recognition; the
``face-recognition-models`` package's ``dlib_face_recognition_resnet_model_v1.dat``), computed on a 128-px face crop
placed by its 68 landmarks; the Euclidean distance between two descriptors is dlib's identity distance (same person
below ~0.6). An output's distance to the true face's descriptor, next to bicubic's, says whether super-resolution
moved the face towards or away from the person. Offline: the file ships in a PyPI package."""

from __future__ import annotations

import hashlib

import numpy as np

from dicface.models.dlib_files import find_dlib_file

NETWORK_FILE = "dlib_face_recognition_resnet_model_v1.dat"
TRUTHS_KEPT = 4096  # true faces' descriptors remembered (128 floats each)


class FaceIdentity:
    """Descriptors of face crops. Shape: (H, W, 3) uint8 RGB face and its (68, 2) landmarks in its pixels -> (128,)."""

    def __init__(self) -> None:
        import dlib

        self._dlib = dlib
        self._network = dlib.face_recognition_model_v1(str(find_dlib_file(NETWORK_FILE)))
        # the true faces' descriptors, by content: every method is compared with the same truth
        self._truths: dict[bytes, np.ndarray] = {}

    def descriptor(self, face: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        dlib = self._dlib
        height, width = face.shape[:2]
        points = [dlib.point(round(float(x)), round(float(y))) for x, y in landmarks]
        shape = dlib.full_object_detection(dlib.rectangle(0, 0, width - 1, height - 1), points)
        return np.asarray(self._network.compute_face_descriptor(np.ascontiguousarray(face), shape))

    def distance(self, face: np.ndarray, truth: np.ndarray, landmarks: np.ndarray) -> float:
        """Identity distance of ``face`` to ``truth`` (same size), both placed by the true face's ``landmarks``. The
        truth's descriptor is computed once for all the methods scored against it."""
        key = hashlib.blake2b(truth.tobytes() + np.asarray(landmarks, np.float32).tobytes(), digest_size=16).digest()
        if key not in self._truths:
            if len(self._truths) >= TRUTHS_KEPT:
                self._truths.clear()
            self._truths[key] = self.descriptor(truth, landmarks)
        return float(np.linalg.norm(self.descriptor(face, landmarks) - self._truths[key]))
