"""Index sets on mediapipe's 478-point face mesh (468 + 10 iris points) and its triangles.

"Left" and "right" are the subject's: the subject's left eye is on the image's right.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

N_MESH = 468
N_POINTS = 478

# Lip contours, ordered from the image-left mouth corner to the image-right one.
LIP_OUTER_UPPER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
LIP_OUTER_LOWER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
LIP_INNER_UPPER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LIP_INNER_LOWER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
MOUTH_CORNERS = (61, 291)  # outer corners, image-left then image-right

# Eyelid contours, ordered from the image-left corner to the image-right corner.
RIGHT_EYE_UPPER = (33, 246, 161, 160, 159, 158, 157, 173, 133)
RIGHT_EYE_LOWER = (33, 7, 163, 144, 145, 153, 154, 155, 133)
LEFT_EYE_UPPER = (362, 398, 384, 385, 386, 387, 388, 466, 263)
LEFT_EYE_LOWER = (362, 382, 381, 380, 374, 373, 390, 249, 263)

# Iris: centre then four ring points (refine_landmarks=True).
RIGHT_IRIS = (468, 469, 470, 471, 472)
LEFT_IRIS = (473, 474, 475, 476, 477)

# Brows, from the image-left end to the image-right end (upper and lower edges).
RIGHT_BROW_UPPER = (70, 63, 105, 66, 107)
RIGHT_BROW_LOWER = (46, 53, 52, 65, 55)
LEFT_BROW_UPPER = (336, 296, 334, 293, 300)
LEFT_BROW_LOWER = (285, 295, 282, 283, 276)

# The face outline as a closed loop, clockwise in the image starting at the forehead top.
FACE_OVAL = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400,
    377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)  # fmt: skip

NOSE_TIP = 1
CHIN = 152
FOREHEAD = 10
CHEEK_RIGHT = 234  # image-left extreme of the face
CHEEK_LEFT = 454  # image-right extreme of the face
RIGHT_EYE_OUTER, RIGHT_EYE_INNER = 33, 133
LEFT_EYE_OUTER, LEFT_EYE_INNER = 263, 362


@lru_cache(maxsize=1)
def triangles() -> np.ndarray:
    """The face-mesh triangles (K, 3) int32, rebuilt from mediapipe's tessellation edges.

    The tessellation ships as edges only; its faces are the edge triangles (3-cliques). The
    eye and mouth openings are holes in this mesh, which the renderer relies on.
    """
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_TESSELATION

    adj: dict[int, set[int]] = {}
    for a, b in FACEMESH_TESSELATION:
        adj.setdefault(a, set()).add(b)
        adj.setdefault(b, set()).add(a)
    tris = {tuple(sorted((a, b, c))) for a, b in FACEMESH_TESSELATION for c in adj[a] & adj[b]}
    return np.array(sorted(tris), dtype=np.int32)
