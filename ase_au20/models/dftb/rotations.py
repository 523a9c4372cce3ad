"""Slater–Koster rules: two-centre integrals (σ, π, δ) rotated into 9×9 s, p, d blocks.

Orbitals are real and ordered s, pₓ, p_y, p_z, d_xy, d_yz, d_zx, d_x²−y², d_z². Each d
orbital is a traceless quadratic form rᵀDr, so every Slater–Koster entry is a projection
onto the bond direction u: σ parts are uᵀa (p) and uᵀDu (d), π parts come from Du, and the
δ part is what is left of the orbital overlap. These tensor forms reproduce Slater and
Koster's table (Phys. Rev. 94, 1498 (1954)) for every bond direction, and they are
polynomials in u, so their derivatives are exact. Blocks are <row atom | column atom> with
u pointing from the row atom to the column atom, as the ``.skf`` integrals are defined.
"""

from __future__ import annotations

import numpy as np

N_ORBITALS = 9
_S, _P, _D = slice(0, 1), slice(1, 4), slice(4, 9)
_R3 = np.sqrt(3.0)
_D_FORMS = np.zeros((5, 3, 3))  # the quadratic forms D_k of the five d orbitals
_D_FORMS[0][0, 1] = _D_FORMS[0][1, 0] = _R3 / 2  # xy
_D_FORMS[1][1, 2] = _D_FORMS[1][2, 1] = _R3 / 2  # yz
_D_FORMS[2][2, 0] = _D_FORMS[2][0, 2] = _R3 / 2  # zx
_D_FORMS[3] = np.diag([_R3 / 2, -_R3 / 2, 0.0])  # x² − y²
_D_FORMS[4] = np.diag([-0.5, -0.5, 1.0])  # 3z² − r², as (3z² − r²)/2
_EYE3 = np.eye(3)
_EYE5 = np.eye(5)
# the ten ``.skf`` integral columns, in file order
DD_SIGMA, DD_PI, DD_DELTA, PD_SIGMA, PD_PI, PP_SIGMA, PP_PI, SD_SIGMA, SP_SIGMA, SS_SIGMA = range(
    10
)


class BondDirections:
    """The direction-only quantities of many bonds (unit vectors u, pairs × 3), computed
    once and shared by the H and S blocks and their gradients."""

    def __init__(self, u: np.ndarray) -> None:
        self.u = u
        self.d_u = np.einsum("kij,pj->pki", _D_FORMS, u)  # D_k u
        self.d_sigma = np.einsum("pki,pi->pk", self.d_u, u)  # uᵀ D_k u
        self.sigma_sigma = self.d_sigma[:, :, None] * self.d_sigma[:, None, :]
        self.pi_dd = (4.0 / 3.0) * (
            np.einsum("pki,pli->pkl", self.d_u, self.d_u) - self.sigma_sigma
        )
        self.pd_sigma = u[:, :, None] * self.d_sigma[:, None, :]
        self.pd_pi = (2.0 / _R3) * (np.swapaxes(self.d_u, 1, 2) - self.pd_sigma)
        self.uu = u[:, :, None] * u[:, None, :]

    def blocks(self, v: np.ndarray) -> np.ndarray:
        """The (pairs, 9, 9) blocks of one matrix (H or S) from its ten integrals (pairs, 10)
        in the ``.skf`` column order."""
        w = v[:, :, None, None]
        out = np.empty((len(v), N_ORBITALS, N_ORBITALS))
        out[:, 0, 0] = v[:, SS_SIGMA]
        _place(out, _S, _P, v[:, SP_SIGMA, None, None] * self.u[:, None, :], -1)
        _place(out, _S, _D, v[:, SD_SIGMA, None, None] * self.d_sigma[:, None, :], +1)
        pp = w[:, PP_SIGMA] * self.uu + w[:, PP_PI] * (_EYE3 - self.uu)
        out[:, _P, _P] = pp
        _place(out, _P, _D, w[:, PD_SIGMA] * self.pd_sigma + w[:, PD_PI] * self.pd_pi, -1)
        delta = _EYE5 - self.sigma_sigma - self.pi_dd
        out[:, _D, _D] = (
            w[:, DD_SIGMA] * self.sigma_sigma + w[:, DD_PI] * self.pi_dd + w[:, DD_DELTA] * delta
        )
        return out

    def contract(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For pair blocks ``x`` (pairs, m, 9, 9) of m matrices (e.g. ρ and W): τ (pairs, m,
        10), the overlap <x, T_c> with each integral's direction factor T_c, and γ (pairs,
        m, 10, 3), its gradient in u (a free vector), so that Σ x ∂(Σ_c V_c T_c)/∂u = γ·V.

        A block and its mirror (the same integral seen from the other atom) are folded
        together first, so no (pairs, 9, 9, 3) array is ever formed."""
        u, d_u, d_sigma = self.u, self.d_u, self.d_sigma
        n, m = x.shape[:2]
        tau = np.empty((n, m, 10))
        gamma = np.zeros((n, m, 10, 3))
        d_sigma_grad = 2.0 * d_u  # ∂(uᵀD_k u)/∂u, (pairs, 5, 3)

        tau[:, :, SS_SIGMA] = x[:, :, 0, 0]
        sp = x[:, :, 0, _P] - x[:, :, _P, 0]  # odd: the mirror enters with −1
        tau[:, :, SP_SIGMA] = np.einsum("pmj,pj->pm", sp, u)
        gamma[:, :, SP_SIGMA] = sp
        sd = x[:, :, 0, _D] + x[:, :, _D, 0]
        tau[:, :, SD_SIGMA] = np.einsum("pmk,pk->pm", sd, d_sigma)
        gamma[:, :, SD_SIGMA] = np.einsum("pmk,pky->pmy", sd, d_sigma_grad)

        pp = x[:, :, _P, _P]
        pp_u = np.einsum("pmij,pj->pmi", pp + np.swapaxes(pp, 2, 3), u)  # ∂(uᵀ pp u)/∂u
        tau[:, :, PP_SIGMA] = 0.5 * np.einsum("pmi,pi->pm", pp_u, u)
        tau[:, :, PP_PI] = np.trace(pp, axis1=2, axis2=3) - tau[:, :, PP_SIGMA]
        gamma[:, :, PP_SIGMA], gamma[:, :, PP_PI] = pp_u, -pp_u

        pd = x[:, :, _P, _D] - np.swapaxes(x[:, :, _D, _P], 2, 3)
        tau[:, :, PD_SIGMA] = np.einsum("pmik,pik->pm", pd, self.pd_sigma)
        tau[:, :, PD_PI] = np.einsum("pmik,pik->pm", pd, self.pd_pi)
        # ∂(u_i uᵀD_k u)/∂u_y = δ_iy uᵀD_k u + u_i 2(D_k u)_y
        pd_along_u = np.einsum("pmik,pi->pmk", pd, u)
        sigma_grad = np.einsum("pmyk,pk->pmy", pd, d_sigma) + np.einsum(
            "pmk,pky->pmy", pd_along_u, d_sigma_grad
        )
        gamma[:, :, PD_SIGMA] = sigma_grad
        # π factor (2/√3)((D_k u)_i − u_i uᵀD_k u): ∂(D_k u)_i/∂u_y = D_k[i, y]
        d_forms_iky = np.transpose(_D_FORMS, (1, 0, 2)).reshape(15, 3)  # D_k[i, y] by (i, k)
        gamma[:, :, PD_PI] = (2.0 / _R3) * (pd.reshape(n, m, 15) @ d_forms_iky - sigma_grad)

        dd = x[:, :, _D, _D]
        dd_sym = dd + np.swapaxes(dd, 2, 3)
        sigma_weight = np.einsum("pmkl,pl->pmk", dd_sym, d_sigma)  # ∂<dd, σσ>/∂(uᵀD_k u)
        tau[:, :, DD_SIGMA] = np.einsum("pmkl,pkl->pm", dd, self.sigma_sigma)
        tau[:, :, DD_PI] = np.einsum("pmkl,pkl->pm", dd, self.pi_dd)
        tau[:, :, DD_DELTA] = (
            np.trace(dd, axis1=2, axis2=3) - tau[:, :, DD_SIGMA] - tau[:, :, DD_PI]
        )
        ss_grad = np.einsum("pmk,pky->pmy", sigma_weight, d_sigma_grad)
        # π factor (4/3)(Σ_i (D_k u)_i (D_l u)_i − σσ)
        g_grad = np.einsum("pmkl,pli->pmki", dd_sym, d_u).reshape(n, m, 15) @ _D_FORMS.reshape(
            15, 3
        )
        pi_grad = (4.0 / 3.0) * (g_grad - ss_grad)
        gamma[:, :, DD_SIGMA], gamma[:, :, DD_PI] = ss_grad, pi_grad
        gamma[:, :, DD_DELTA] = -ss_grad - pi_grad
        return tau, gamma


def _place(out: np.ndarray, rows: slice, cols: slice, values: np.ndarray, mirror: int) -> None:
    """Write ``values`` as the (rows, cols) part of ``out`` and its mirror image (cols,
    rows): the same integral seen from the other atom, which reverses u and so multiplies
    an odd-parity (l₁ + l₂ odd) entry by −1 (``mirror``)."""
    out[:, rows, cols] = values
    out[:, cols, rows] = mirror * np.swapaxes(values, 1, 2)
