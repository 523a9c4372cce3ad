"""The two geometric conventions every verb shares: what a bond is and when two structures
are one isomer. Defined here once; `db build`, `analyze`, `search`, `select`, the domain
check and the exports import them.
"""

BOND_CUTOFF = (
    3.03  # Å, first minimum of the mean g(r) over the 899 DFTB1 isomers (tests recompute it)
)

# Å, largest difference between two sorted pair-distance lists that still counts as one
# isomer: the point-group tolerance of the analysis. In the data it merges the DFTB1 copies
# of one minimum (ΔE ≤ 61 meV within a group; the Td copies 350/351 are 0.041 Å apart,
# D6h 638 is 0.051 Å from the 316 group), never two isomers farther apart in energy.
DUPLICATE_TOLERANCE = 0.1
