"""The Catmull-Rom spline that both SchNet paths (torch and NumPy) interpolate filters with.

Plain NumPy, so the NumPy path never imports torch.
"""

from __future__ import annotations

import numpy as np

# Rows are the coefficients of 1, u, u^2, u^3; columns the nodes k-1 .. k+2.
CATMULL_ROM = 0.5 * np.array(
    [[0.0, 2.0, 0.0, 0.0], [-1.0, 0.0, 1.0, 0.0], [2.0, -5.0, 4.0, -1.0], [-1.0, 3.0, -3.0, 1.0]]
)
# d/du of the weights: rows are the coefficients of 1, u, u^2 (u^3: none).
CATMULL_ROM_DERIVATIVE = np.stack(
    [CATMULL_ROM[1], 2.0 * CATMULL_ROM[2], 3.0 * CATMULL_ROM[3], np.zeros(4)]
)
