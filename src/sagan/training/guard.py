"""Optimiser updates guarded against non-finite losses and gradients, without host syncs.

Each update computes its verdict ("the loss and every gradient are finite") as a tensor on the
device. Optimisers with a fused kernel (Adam, AdamW, SGD with ``fused=True``) take the verdict
as their ``found_inf`` input and skip the update on the device, the way
:class:`torch.amp.GradScaler` drives them; counts of skipped updates and of bad iterations in a
row also stay on the device. The host reads them only when the loop logs, saves or checks for
a rollback, so a small model on a GPU is never stalled by a per-step ``bool(isfinite(...))``.
Optimisers without a fused kernel (RMSprop) read the verdict before stepping: one sync per
update, free on the CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist

from sagan.training.distributed import DistInfo
from sagan.training.precision import Precision

__all__ = ["GuardCounts", "GuardedOptimizers"]


@dataclass(frozen=True)
class GuardCounts:
    """What the device-side counters said when last read."""

    skipped: int
    """Updates skipped over the whole run."""
    streak: int
    """Iterations in a row, up to now, with a skipped update."""
    worst_streak: int
    """The longest such streak since the previous read."""
    scaler_skipped: int = 0
    """float16 only: updates the gradient scaler skipped over the whole run because a scaled
    gradient overflowed (as it calibrates its scale). Not counted in ``skipped`` nor in the
    streak: they are the scaler's normal working, not a failing run."""


def _fused(opt: torch.optim.Optimizer) -> bool:
    return all(group.get("fused") for group in opt.param_groups)


def _grads_finite(opt: torch.optim.Optimizer, device: torch.device) -> torch.Tensor:
    """Whether every gradient of ``opt`` is finite: a bool tensor on ``device``."""
    grads = [p.grad for group in opt.param_groups for p in group["params"] if p.grad is not None]
    if not grads:
        return torch.ones((), dtype=torch.bool, device=device)
    return torch.isfinite(torch.stack(torch._foreach_norm(grads))).all().to(device)


class GuardedOptimizers:
    """The optimisers of a run by name (``"g"``, ``"d"``), with their gradient scalers and the
    device-side non-finite guard.

    Args:
        optimizers: name -> optimiser.
        precision: float16 adds a gradient scaler per optimiser (a pass-through otherwise).
        device: where the counters live (the parameters' device).
        dist: the process group; every rank takes the same verdict.
    """

    def __init__(
        self,
        optimizers: dict[str, torch.optim.Optimizer],
        precision: Precision,
        device: torch.device,
        dist_info: DistInfo | None = None,
    ) -> None:
        self.optimizers = optimizers
        self.scalers = {name: precision.scaler() for name in optimizers}
        self.dist = dist_info or DistInfo()
        self.device = device
        zero = torch.zeros((), dtype=torch.int64, device=device)
        self._skipped_base = 0
        self._skipped = zero.clone()  # skipped since the run (re)started here
        self._scaler_base = 0
        self._scaler_skipped = zero.clone()  # float16: skipped by the scaler, likewise
        self._streak = zero.clone()
        self._worst = zero.clone()
        self._bad = torch.zeros((), dtype=torch.bool, device=device)  # this iteration
        self._bad_updates = zero.clone()

    def update(self, name: str, loss: torch.Tensor) -> None:
        """Backward ``loss`` and step optimiser ``name``, unless the loss or a gradient is
        non-finite (on any rank): then the weights and the optimiser's state stay as they were.
        """
        opt, scaler = self.optimizers[name], self.scalers[name]
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        finite_loss = torch.isfinite(loss.detach())
        if scaler.is_enabled():  # float16: the scaler skips inf/nan gradients itself
            scaler.unscale_(opt)  # what step() would do; here to count the scaler's skips
            overflow = finite_loss & ~_grads_finite(opt, finite_loss.device)
            self._scaler_skipped += overflow
            scaler.step(opt)
            scaler.update()
            ok = finite_loss
        else:
            ok = finite_loss & _grads_finite(opt, finite_loss.device)
            if self.dist.enabled:  # every rank steps, or none: the weights stay identical
                flag = ok.to(torch.int32)
                dist.all_reduce(flag, op=dist.ReduceOp.MIN)
                ok = flag.bool()
            if _fused(opt):
                opt.found_inf = (~ok).to(torch.float32)  # type: ignore[attr-defined]
                opt.step()
            elif bool(ok):  # no fused kernel takes found_inf: read the verdict here
                opt.step()
        bad = ~ok
        self._bad |= bad
        self._bad_updates += bad

    def end_iteration(self) -> None:
        """Close an iteration: count its skipped updates and extend or end the streak."""
        self._skipped += self._bad_updates
        self._streak = (self._streak + 1) * self._bad
        self._worst = torch.maximum(self._worst, self._streak)
        self._bad_updates.zero_()
        self._bad = torch.zeros_like(self._bad)

    def read(self) -> GuardCounts:
        """The counters on the host (one device sync); starts a new worst-streak window."""
        counters = [self._skipped, self._streak, self._worst, self._scaler_skipped]
        skipped, streak, worst, scaler = torch.stack(counters).tolist()
        self._worst = self._streak.clone()
        return GuardCounts(self._skipped_base + skipped, streak, worst, self._scaler_base + scaler)

    @property
    def scaling(self) -> bool:
        """Whether a gradient scaler is on (float16), so that ``scaler_skipped`` means something."""
        return any(scaler.is_enabled() for scaler in self.scalers.values())

    def restore_skipped(self, skipped: int, scaler_skipped: int = 0) -> None:
        """Continue the run's counts of skipped updates (the guard's and, with float16, the
        scaler's) from a checkpoint."""
        self._skipped_base = skipped
        self._scaler_base = scaler_skipped

    def state_dict(self) -> dict[str, dict]:
        """Optimiser and (float16) scaler states: ``opt_NAME``, ``scaler_NAME``."""
        out: dict[str, dict] = {}
        for name, opt in self.optimizers.items():
            out[f"opt_{name}"] = opt.state_dict()
            out[f"scaler_{name}"] = self.scalers[name].state_dict()
        return out

    def load_state_dict(self, state: dict[str, dict]) -> None:
        """Load what :meth:`state_dict` wrote (scaler states only when saved with float16)."""
        for name, opt in self.optimizers.items():
            kernels = [{k: g.get(k) for k in ("fused", "foreach")} for g in opt.param_groups]
            opt.load_state_dict(state[f"opt_{name}"])
            # the kernel is this machine's choice, not optimisation state: a checkpoint saved
            # with another (an older run, another device) keeps this one's
            for group, kernel in zip(opt.param_groups, kernels, strict=True):
                group.update(kernel)
            scaler_state = state.get(f"scaler_{name}")
            if scaler_state and self.scalers[name].is_enabled():
                self.scalers[name].load_state_dict(scaler_state)
