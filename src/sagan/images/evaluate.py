"""Image metrics: what to compute, with which feature network, against which real data.

Metric names and what they report (``values`` keys in parentheses where they differ):

* InceptionV3 (paper-comparable; needs ``torch-sagan[inception]`` and the weights file):
  ``fid``, ``kid`` (``kid``, ``kid_std``), ``is`` (``is``, ``is_std``), ``pr``
  (``precision``, ``recall``; Kynkäänniemi et al., k = 3).
* The shipped digit classifier (offline; 1-channel generators): ``fd_digits``, ``kid_digits``,
  ``is_digits`` (at most 10), ``pr_digits`` (``precision_digits``, ``recall_digits``),
  ``coverage`` (share of the 10 classes receiving >= 1% of predictions) and ``accuracy``
  (class-conditional 10-class generators: how often the class asked for is recognised).
* A fixed random CNN (offline; any data): ``fd_random``.
* The long-range data set's exact check (generators trained on ``longrange``):
  ``constraint`` (``constraint``, ``wellformed``).

Real-data features are cached under ``cache_dir()/metric-features`` keyed by (data set
fingerprint, feature network, resolution, sample count).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from sagan.errors import SaganError
from sagan.images.data import ImageDataset, TensorImageDataset, cache_dir, load_dataset
from sagan.images.data.longrange import check_longrange
from sagan.images.features import (
    DigitFeatures,
    FeatureNet,
    InceptionFeatures,
    RandomFeatures,
    inception_available,
)
from sagan.metrics import (
    frechet_distance,
    gaussian_stats,
    inception_score,
    kernel_inception_distance,
    precision_recall,
)

__all__ = [
    "METRICS",
    "PRIMARY_METRICS",
    "EvalResult",
    "Sampler",
    "check_metrics",
    "evaluate",
    "real_features",
]

METRICS = (
    "fid",
    "kid",
    "is",
    "pr",
    "fd_digits",
    "kid_digits",
    "is_digits",
    "pr_digits",
    "coverage",
    "accuracy",
    "fd_random",
    "constraint",
)
# lower is better; the first one computed is what --eval-every keeps the best checkpoint by
PRIMARY_METRICS = ("fid", "fd_digits", "fd_random")

_NET_OF = {
    "fid": "inception",
    "kid": "inception",
    "is": "inception",
    "pr": "inception",
    "fd_digits": "digits",
    "kid_digits": "digits",
    "is_digits": "digits",
    "pr_digits": "digits",
    "coverage": "digits",
    "accuracy": "digits",
    "fd_random": "random",
    "constraint": None,
}
_NEEDS_REAL = {"fid", "kid", "pr", "fd_digits", "kid_digits", "pr_digits", "fd_random"}


class Sampler(Protocol):
    """What the metrics need of a generator (a :class:`LoadedGenerator` fits)."""

    num_classes: int
    channels: int
    resolution: int

    def sample(
        self,
        n: int,
        labels: Sequence[int] | torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor: ...  # (n, C, R, R) in [0, 1]


@dataclass
class EvalResult:
    """``values``: metric name -> value; ``skipped``: metric -> why it could not run here."""

    values: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def skipped_line(self) -> str:
        """One line naming the skipped metrics with their reasons ('' when none)."""
        by_reason: dict[str, list[str]] = {}
        for name, reason in self.skipped.items():
            by_reason.setdefault(reason, []).append(name)
        parts = [f"{', '.join(names)} ({reason})" for reason, names in by_reason.items()]
        return f"skipped {'; '.join(parts)}" if parts else ""


def _why_not(name: str, gen: Sampler, real: str | None) -> str | None:
    """Why ``name`` cannot run for ``gen`` here, or None when it can."""
    net = _NET_OF[name]
    if net == "inception":
        return inception_available()
    if net == "digits" and gen.channels != 1:
        return "the digit classifier needs 1-channel (digit) images"
    if name == "accuracy" and gen.num_classes != 10:
        return "needs a generator conditioned on the 10 digit classes"
    if name == "constraint" and (real or "").strip().lower() != "longrange":
        return "only for generators trained on --data longrange"
    if name in _NEEDS_REAL and not real:
        return "no real data known for this generator; pass --real DATASET"
    return None


def check_metrics(gen: Sampler, metrics: Sequence[str], real: str | None) -> list[str]:
    """The cleaned metric names, or :class:`SaganError` naming the first that cannot run for
    ``gen`` (trained on ``real``) here and why. Cheap: builds no network."""
    wanted = [m.strip().lower() for m in metrics if m.strip()]
    for name in wanted:
        if name not in METRICS:
            raise SaganError(f"unknown metric {name!r}; choose from {', '.join(METRICS)}")
        why = _why_not(name, gen, real)
        if why is not None:
            raise SaganError(f"cannot compute {name}: {why}")
    return wanted


def real_features(
    dataset: ImageDataset,
    net: FeatureNet,
    n: int,
    *,
    batch: int = 250,
    cache: Path | None = None,
) -> dict[str, np.ndarray]:
    """Features of ``n`` real images (a fixed random subset, or all when fewer), cached.

    The cache file is keyed by (data set fingerprint, ``net.key``, resolution, n); a damaged
    file is recomputed. Returns ``{"features": (n, D) float32, ...}``.
    """
    n = min(n, len(dataset))
    folder = (cache or cache_dir()) / "metric-features"
    key = f"{dataset.name}-{dataset.fingerprint()}-{net.key}-r{dataset.resolution}-n{n}"
    path = folder / f"{key}.npz"
    try:
        with np.load(path) as f:
            return {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError):
        pass  # absent or damaged: compute
    rng = np.random.Generator(np.random.PCG64(0))
    idx = np.sort(rng.permutation(len(dataset))[:n])
    outs: dict[str, list[torch.Tensor]] = {}
    for start in range(0, n, batch):
        chunk = torch.as_tensor(idx[start : start + batch])
        if isinstance(dataset, TensorImageDataset):
            images = dataset.batch(chunk)[0]
        else:
            images = torch.stack([dataset[int(i)][0] for i in chunk])
        for k, v in net(images.float() / 255).items():  # (B, C, R, R) in [0, 1]
            outs.setdefault(k, []).append(v)
    arrays = {k: torch.cat(v).numpy().astype(np.float32) for k, v in outs.items()}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{key}.tmp.npz"
        np.savez(tmp, **arrays)
        tmp.replace(path)
    except OSError as exc:
        print(f"warning: cannot cache real features in {folder}: {exc}", file=sys.stderr)
    return arrays


def _fake_outputs(
    gen: Sampler,
    nets: dict[str, FeatureNet],
    n: int,
    batch: int,
    seed: int,
    want_images: bool,
) -> tuple[dict[str, dict[str, np.ndarray]], torch.Tensor | None, np.ndarray | None]:
    """Run every net on ``n`` generated images: ``{net: {output: (n, D)}}``, the asked labels
    (conditional generators: classes in equal numbers) and the longrange verdicts."""
    g = torch.Generator().manual_seed(seed)
    outs: dict[str, dict[str, list[torch.Tensor]]] = {k: {} for k in nets}
    asked, checks = [], []
    for start in range(0, n, batch):
        k = min(batch, n - start)
        labels = (torch.arange(start, start + k) % gen.num_classes) if gen.num_classes else None
        x = gen.sample(k, labels=labels, generator=g).float().cpu()  # (k, C, R, R) in [0, 1]
        for name, net in nets.items():
            for out, v in net(x).items():
                outs[name].setdefault(out, []).append(v)
        if labels is not None:
            asked.append(labels)
        if want_images:
            c = check_longrange(x)
            checks.append(np.stack([c.wellformed, c.satisfied], axis=1))  # (k, 2)
    arrays = {
        name: {o: torch.cat(v).double().numpy() for o, v in d.items()} for name, d in outs.items()
    }
    return (
        arrays,
        (torch.cat(asked) if asked else None),
        (np.concatenate(checks) if checks else None),
    )


@torch.no_grad()
def evaluate(
    gen: Sampler,
    *,
    metrics: Sequence[str] | None = None,
    real: str | ImageDataset | None = None,
    n: int = 5000,
    n_real: int | None = None,
    batch: int = 250,
    seed: int = 0,
    device: torch.device | str = "cpu",
    inception_weights: str | Path | None = None,
    cache: Path | None = None,
    kid_subset_size: int = 1000,
) -> EvalResult:
    """Compute ``metrics`` on ``n`` images of ``gen`` against the data set ``real``.

    ``metrics=None`` computes every metric that can run for this generator here and lists the
    others in ``skipped``; naming a metric that cannot run raises :class:`SaganError` with the
    reason. ``real``: a data set name/folder (default: the one ``gen`` was trained on,
    ``gen.data``) or an :class:`ImageDataset`. ``n_real``: real images (default ``n``).
    """
    if n < 2:
        raise SaganError(f"--n must be >= 2 to estimate statistics, got {n}")
    if n_real is not None and n_real < 2:
        raise SaganError(f"--n-real must be >= 2 to estimate statistics, got {n_real}")
    real = real if real is not None else getattr(gen, "data", None)
    real_name = real.name if isinstance(real, ImageDataset) else real
    result = EvalResult()
    if metrics is None:
        wanted = []
        for name in METRICS:
            why = _why_not(name, gen, real_name)
            if why is None:
                wanted.append(name)
            else:
                result.skipped[name] = why
    else:
        wanted = check_metrics(gen, metrics, real_name)
    knn = [m for m in wanted if m in ("pr", "pr_digits")]  # k = 3 nearest neighbours
    if knn and min(n, n if n_real is None else n_real) < 4:
        raise SaganError(
            f"{knn[0]} compares each image with its 3 nearest neighbours: give --n and "
            "--n-real of at least 4"
        )
    if not wanted:
        return result

    builders: dict[str, Callable[[], FeatureNet]] = {
        "inception": lambda: InceptionFeatures(device, inception_weights),
        "digits": lambda: DigitFeatures(device),
        "random": lambda: RandomFeatures(device),
    }
    nets: dict[str, FeatureNet] = {}
    for net_name in sorted({_NET_OF[m] for m in wanted} - {None}):  # type: ignore[type-var]
        try:
            nets[net_name] = builders[net_name]()
        except SaganError as exc:  # e.g. no Inception weights offline
            users = [m for m in wanted if _NET_OF[m] == net_name]
            if metrics is not None:
                raise SaganError(f"cannot compute {users[0]}: {exc}") from None
            result.skipped.update(dict.fromkeys(users, str(exc)))
            wanted = [m for m in wanted if m not in users]
    if not wanted:
        return result
    fake, asked, checks = _fake_outputs(gen, nets, n, batch, seed, "constraint" in wanted)

    reals: dict[str, dict[str, np.ndarray]] = {}
    if any(m in _NEEDS_REAL for m in wanted):
        dataset = (
            real
            if isinstance(real, ImageDataset)
            else load_dataset(str(real), gen.resolution, conditional=False)
        )
        if dataset.resolution != gen.resolution:
            raise SaganError(
                f"real data is {dataset.resolution} px, the generator {gen.resolution} px"
            )
        for name, net in nets.items():
            if any(_NET_OF[m] == name and m in _NEEDS_REAL for m in wanted):
                reals[name] = real_features(dataset, net, n_real or n, batch=batch, cache=cache)

    v = result.values
    for name in wanted:
        net = _NET_OF[name]
        suffix = "" if net == "inception" else "_digits"
        if name in ("fid", "fd_digits", "fd_random"):
            f, r = fake[net]["features"], reals[net]["features"].astype(np.float64)
            v[name] = frechet_distance(*gaussian_stats(f), *gaussian_stats(r))
        elif name in ("kid", "kid_digits"):
            # at most half of each set, so that the subsets differ and the std means something
            size = max(2, min(kid_subset_size, n // 2, len(reals[net]["features"]) // 2))
            mean, std = kernel_inception_distance(
                reals[net]["features"], fake[net]["features"], subset_size=size, seed=seed
            )
            v[name], v[f"{name}_std"] = mean, std
        elif name in ("is", "is_digits"):
            logits = torch.as_tensor(fake[net]["logits"])
            if net == "digits":  # a 10-class softmax: one split, as in the classifier IS
                p = torch.softmax(logits, dim=1)
                marginal = p.mean(dim=0, keepdim=True)
                kl = (p * (torch.log(p + 1e-12) - torch.log(marginal + 1e-12))).sum(dim=1)
                v[name] = float(torch.exp(kl.mean()))
            else:
                v[name], v[f"{name}_std"] = inception_score(logits, splits=10, seed=seed)
        elif name in ("pr", "pr_digits"):
            p, r = precision_recall(reals[net]["features"], fake[net]["features"], k=3)
            v[f"precision{suffix}"], v[f"recall{suffix}"] = p, r
        elif name == "coverage":
            pred = torch.as_tensor(fake["digits"]["logits"]).argmax(dim=1)
            counts = torch.bincount(pred, minlength=10).double()
            v[name] = float((counts >= 0.01 * n).double().mean())
        elif name == "accuracy":
            assert asked is not None
            pred = torch.as_tensor(fake["digits"]["logits"]).argmax(dim=1)
            v[name] = float((pred == asked).double().mean())
        elif name == "constraint":
            assert checks is not None
            v["constraint"] = float(checks[:, 1].mean())
            v["wellformed"] = float(checks[:, 0].mean())
    return result
