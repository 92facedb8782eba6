"""The floor of a method: the bare operations it must do, their FLOPs and their time.

Each candidate declares the operations its algorithm cannot avoid as a list
of :class:`Op` (matrix products for the Newton–Schulz family; QR, Cholesky,
triangular solves, inverses or an SVD, with their products, for the accurate
methods).  :class:`FloorTimer` times each distinct operation once per backend
and dtype, on freshly generated operands of the same shape, in the same run,
and a candidate's floor is the sum over its list.  Elementwise work
(normalisation, scaling, the polynomial's additions) is not in the floor: it
is what ``time/floor`` measures, with dispatch and copies.

Operation shapes are for the orientation the method works in: wide ``k × N``
(``k ≤ N``) for the Newton–Schulz family, tall ``m × n`` (``m ≥ n``) for the
accurate methods.  The rows of :func:`polarlinalg.inv_root` are square:
``"eigh"`` is one symmetric eigendecomposition and the product
``(V diag) Vᴴ``; ``"newton"`` the products of the coupled iteration's steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "FloorProgram",
    "Op",
    "accurate_ops",
    "flops",
    "gram_newton_schulz_ops",
    "inv_root_ops",
    "newton_schulz_ops",
    "svd_polar_ops",
]


class Op(NamedTuple):
    """One operation on a stack of ``batch`` matrices.

    ``kind`` and ``dims``: ``"matmul"`` ``(m, k, n)`` is ``(m×k)(k×n)``;
    ``"qr"`` ``(m, n)`` is a reduced QR with ``Q`` formed; ``"qr_r"``
    ``(m, n)`` computes ``R`` alone; ``"cholesky"``
    ``(n,)``; ``"trsm"`` ``(n, r)`` is a triangular ``n × n`` solve with ``r``
    right-hand sides; ``"inv"`` ``(n,)``; ``"svd"`` ``(m, n)`` is a thin SVD
    with vectors (``m ≥ n``); ``"eigh"`` ``(n,)`` a symmetric
    eigendecomposition with vectors (timed in float32 for half precision,
    as :func:`polarlinalg.inv_root` computes it).
    """

    kind: str
    batch: int
    dims: tuple[int, ...]


def flops(op: Op) -> float:
    """Return the (real) floating-point operation count of ``op``."""
    b = op.batch
    if op.kind == "matmul":
        m, k, n = op.dims
        return 2.0 * b * m * k * n
    if op.kind == "qr":  # Householder R, then Q formed explicitly
        m, n = op.dims
        return 4.0 * b * n * n * (m - n / 3.0)
    if op.kind == "qr_r":  # Householder R only
        m, n = op.dims
        return 2.0 * b * n * n * (m - n / 3.0)
    if op.kind == "cholesky":
        (n,) = op.dims
        return b * n**3 / 3.0
    if op.kind == "trsm":
        n, r = op.dims
        return 1.0 * b * n * n * r
    if op.kind == "inv":
        (n,) = op.dims
        return 2.0 * b * n**3
    if op.kind == "svd":  # thin R-SVD with both factors (Golub & Van Loan, table 8.6.1)
        m, n = op.dims
        return b * (6.0 * m * n * n + 20.0 * n**3)
    if op.kind == "eigh":  # symmetric QR algorithm with vectors (Golub & Van Loan, §8.3)
        (n,) = op.dims
        return 9.0 * b * n**3
    raise ValueError(f"unknown operation kind {op.kind!r}")


def newton_schulz_ops(batch: int, k: int, n: int, rows: Sequence[Sequence[float]]) -> list[Op]:
    """Products of plain quintic Newton–Schulz steps on a wide ``k × n`` stack.

    ``G = XXᴴ``, ``G²`` (quintic rows only) and ``(bG + cG²)X`` per row.
    """
    k, n = min(k, n), max(k, n)
    out = []
    for row in rows:
        out.append(Op("matmul", batch, (k, n, k)))
        if row[2] != 0.0:
            out.append(Op("matmul", batch, (k, k, k)))
        out.append(Op("matmul", batch, (k, k, n)))
    return out


def gram_newton_schulz_ops(batch: int, k: int, n: int, blocks: Sequence[Sequence[Any]]) -> list[Op]:
    """Products of Gram Newton–Schulz: per restart block ``R = XXᴴ``, small products, ``QX``."""
    k, n = min(k, n), max(k, n)
    out = []
    small = Op("matmul", batch, (k, k, k))
    for block in blocks:
        out.append(Op("matmul", batch, (k, n, k)))
        for i, row in enumerate(block):
            if row[2] != 0.0:
                out.append(small)  # R²
            if i > 0:
                out.append(small)  # z Q
            if i + 1 < len(block):
                out.extend([small, small])  # z R, (pR) z
        out.append(Op("matmul", batch, (k, k, n)))
    return out


def _tall(m: int, n: int) -> tuple[int, int]:
    return max(m, n), min(m, n)


def svd_polar_ops(batch: int, m: int, n: int, with_h: bool = True) -> list[Op]:
    """Thin SVD, ``U = PQᴴ`` and (``with_h``) ``H = QΣQᴴ``."""
    m, n = _tall(m, n)
    out = [Op("svd", batch, (m, n)), Op("matmul", batch, (m, n, n))]
    if with_h:
        out.append(Op("matmul", batch, (n, n, n)))
    return out


def accurate_ops(
    batch: int,
    m: int,
    n: int,
    *,
    estimate: bool,
    steps: Sequence[tuple[str, int]],
    finishing: int,
    with_h: bool = True,
) -> list[Op]:
    """Operations of a QR/Cholesky-based iteration on a tall ``m × n`` stack.

    Parameters
    ----------
    estimate : bool
        One R-only QR of ``X₀`` for the eager bound on ``σ_min``.
    steps : sequence of (form, shifts)
        Per iteration its form, ``"qr"`` (QR of the stacked ``(m+n) × n``
        matrix and ``Q₁Q₂ᴴ`` per shift), ``"cholesky"`` (``XᴴX`` once, then a
        Cholesky factorization and two triangular solves per shift),
        ``"inverse"`` (``n × n`` inverses).  A step that uses both forms
        (ZOLO-PD with small and large shifts) is given as two entries.
    finishing : int
        Newton–Schulz steps (two products each), the final polish included.
    with_h : bool
        ``H = sym(Uᴴ A)``: one more product.
    """
    m, n = _tall(m, n)
    out = []
    if estimate:
        out.append(Op("qr_r", batch, (m, n)))
    for form, shifts in steps:
        if form == "qr":
            out.extend([Op("qr", batch, (m + n, n)), Op("matmul", batch, (m, n, n))] * shifts)
        elif form == "cholesky":
            out.append(Op("matmul", batch, (n, m, n)))
            out.extend([Op("cholesky", batch, (n,)), *[Op("trsm", batch, (n, m))] * 2] * shifts)
        elif form == "inverse":
            out.extend([Op("inv", batch, (n,))] * shifts)
        else:
            raise ValueError(f"unknown step form {form!r}")
    out.extend([Op("matmul", batch, (n, m, n)), Op("matmul", batch, (m, n, n))] * finishing)
    if with_h:
        out.append(Op("matmul", batch, (n, m, n)))
    return out


def inv_root_ops(batch: int, n: int, method: str, p: int, iterations: int) -> list[Op]:
    """Operations of :func:`polarlinalg.inv_root` on ``batch`` ``n × n`` matrices.

    ``"eigh"``: the eigendecomposition and one product; ``"newton"``: per
    step ``X T``, ``Tᵖ`` by repeated squaring and ``Tᵖ M``
    (``⌊log₂ p⌋ + popcount(p) + 1`` products) for ``iterations`` steps.
    """
    square = Op("matmul", batch, (n, n, n))
    if method == "eigh":
        return [Op("eigh", batch, (n,)), square]
    per_step = p.bit_length() - 1 + bin(p).count("1") + 1
    return [square] * (per_step * iterations)


def _operands(op: Op, rng: np.random.Generator) -> list[np.ndarray]:
    def stack(*shape: int) -> np.ndarray:
        a = rng.standard_normal((op.batch, *shape)) / math.sqrt(shape[-1])
        return a[0] if op.batch == 1 else a

    if op.kind == "matmul":
        m, k, n = op.dims
        return [stack(m, k), stack(k, n)]
    if op.kind in ("qr", "qr_r", "svd"):
        return [stack(*op.dims)]
    if op.kind in ("cholesky", "inv", "eigh"):
        (n,) = op.dims
        a = stack(n, n)
        return [a @ np.swapaxes(a, -1, -2) + np.eye(n)]  # well-conditioned SPD
    if op.kind == "trsm":
        n, r = op.dims
        t = np.tril(stack(n, n)) + 2.0 * np.eye(n)
        return [t, stack(n, r)]
    raise ValueError(f"unknown operation kind {op.kind!r}")


class FloorProgram:
    """Builds the floor of a list of :class:`Op` as one callable, on one backend and dtype.

    The callable runs the operations one after another, each on operands
    generated once per distinct operation (freshly, not the candidate's
    input) and kept as long as the instance (the runner makes one per
    case).  On JAX the whole list is one ``jax.jit`` program, as the jitted
    candidates are, so the floor pays no per-operation dispatch; each
    operation's first operand gets the previous result's first element times
    zero added, so XLA can neither merge repeated identical operations
    (common-subexpression elimination would leave one of fifteen equal
    products; ``optimization_barrier`` does not stop it on CPU) nor run them
    out of order.  That costs one elementwise pass over the operand, ``O(mk)``
    beside the product's ``O(mkn)``.  Eagerly (NumPy, PyTorch, CuPy) it is a
    Python loop, dispatch included, as the candidates pay it.

    The runner times the program in the same interleaved rounds as the
    candidate (:func:`polarlinalg.bench.timing.measure_interleaved`), so both
    see the same machine state.

    Parameters
    ----------
    backend : polarlinalg.backends.Backend
    dtype : str
    """

    def __init__(self, backend: Any, dtype: str) -> None:
        self.backend = backend
        self.dtype = dtype
        self._operands: dict[Op, tuple[Any, ...]] = {}
        self._programs: dict[tuple[Op, ...], Callable[[Any], Any]] = {}
        self._jax = backend.name.startswith("jax")

    def operands(self, op: Op) -> tuple[Any, ...]:
        """Return the operands of ``op`` on the backend (generated on first request)."""
        if op not in self._operands:
            rng = np.random.default_rng(len(self._operands))
            self._operands[op] = tuple(
                self.backend.asarray(a, self.dtype) for a in _operands(op, rng)
            )
        return self._operands[op]

    def program(self, ops: Sequence[Op]) -> Callable[[Any], Any]:
        """Return a callable that runs ``ops`` in order (its one argument is ignored)."""
        key = tuple(ops)
        if not key:
            raise ValueError("a floor needs at least one operation")
        if key not in self._programs:
            distinct = list(dict.fromkeys(key))
            where = [distinct.index(op) for op in key]
            fns = [_function(self.backend.xp, op.kind) for op in distinct]
            args = tuple(self.operands(op) for op in distinct)
            self._programs[key] = (
                _jax_program(fns, where, args) if self._jax else _eager_program(fns, where, args)
            )
        return self._programs[key]

    @staticmethod
    def flops(ops: Sequence[Op]) -> float:
        """Return the summed FLOP count of ``ops``."""
        return sum(flops(op) for op in ops)


def _function(xp: Any, kind: str) -> Callable[[tuple[Any, ...]], Any]:
    if kind == "matmul":
        return lambda ab: ab[0] @ ab[1]
    if kind == "qr":
        return lambda a: xp.linalg.qr(a[0])
    if kind == "qr_r":
        from polarlinalg._compat import qr_r

        return lambda a: qr_r(xp, a[0])
    if kind == "cholesky":
        return lambda a: xp.linalg.cholesky(a[0])
    if kind == "inv":
        return lambda a: xp.linalg.inv(a[0])
    if kind == "svd":
        return lambda a: xp.linalg.svd(a[0], full_matrices=False)
    if kind == "eigh":
        from polarlinalg._dtypes import at_least_float32

        def eigh(a: tuple[Any, ...]) -> Any:
            # as inv_root: no framework has a half-precision eigh, float32 it is
            wide = at_least_float32(xp, a[0].dtype)
            return xp.linalg.eigh(a[0] if a[0].dtype == wide else xp.astype(a[0], wide))

        return eigh
    if kind == "trsm":
        from polarlinalg._compat import solve_triangular

        return lambda tb: solve_triangular(xp, tb[0], tb[1], lower=True)
    raise ValueError(f"unknown operation kind {kind!r}")


def _eager_program(
    fns: Sequence[Callable[[Any], Any]], where: Sequence[int], args: tuple[Any, ...]
) -> Callable[[Any], Any]:
    def run(_: Any) -> Any:
        out = None
        for i in where:
            out = fns[i](args[i])
        return out

    return run


def _jax_body(fns: Sequence[Callable[[Any], Any]], where: Sequence[int]) -> Callable[[Any], Any]:
    """Return the traced floor: ``fns[i]`` for ``i`` in ``where``, each after the last result."""
    import jax

    def body(operands: tuple[Any, ...]) -> Any:
        out = None
        for i in where:
            x = operands[i]
            if out is not None:  # depend on the previous result: no merging, no reordering
                zero = jax.tree_util.tree_leaves(out)[0].reshape(-1)[0] * 0
                x = (x[0] + zero.astype(x[0].dtype), *x[1:])
            out = fns[i](x)
        return out

    return body


def _jax_program(
    fns: Sequence[Callable[[Any], Any]], where: Sequence[int], args: tuple[Any, ...]
) -> Callable[[Any], Any]:
    import jax

    compiled = jax.jit(_jax_body(fns, where))
    return lambda _: compiled(args)
