"""Δ-learning on GFN1-xTB: E = E_GFN1(x) + KRR_Δ(x), with a cache of the baseline."""
