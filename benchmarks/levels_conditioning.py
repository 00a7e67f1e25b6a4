"""Does a CESAGAN follow the enemy counts it is asked for? A table for trained level runs.

For each run (a conditional level run folder or checkpoint) and each request of 0-5 enemies
(the other counts from random starting levels, as ``sagan levels eval``), generate ``--n``
levels with the EMA generator and print the mean number of enemies made and the share made
exactly as asked; then the correlation between asked and made over all requests. With
``--discriminator``, also how often the run's D scores a training level higher under its own
condition than under that of another training level asking for a different number of enemies
(does D check the counts at all?).

    python benchmarks/levels_conditioning.py runs/levels-4k/*/cesagan*-boot-s*
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from sagan.levels.encoding import tile_counts
from sagan.levels.evaluate import load_level_gan
from sagan.levels.tiles import ENEMIES
from sagan.levels.train import load_state
from sagan.training import load_source

ASKED = range(6)


def follows(run: Path, n: int) -> tuple[list[tuple[float, float]], float]:
    """Per request k: (mean enemies made, % exactly k); and corr(asked, made)."""
    gan = load_level_gan(run)
    rows, asked_all, made_all = [], [], []
    for k in ASKED:
        made, _ = gan.generate(n, {"enemies": k}, seed=100 + k)
        enemies = tile_counts(made)[:, list(ENEMIES)].sum(1)
        rows.append((float(enemies.mean()), 100.0 * float((enemies == k).mean())))
        asked_all += [k] * n
        made_all += enemies.tolist()
    return rows, float(np.corrcoef(asked_all, made_all)[0, 1])


@torch.no_grad()
def d_checks(run: Path, pairs: int = 2000) -> float:
    """% of (training level, other level's condition) pairs, enemies differing, where D scores
    the level higher under its own condition."""
    _, ckpt = load_source(run, kind="levels")
    state = load_state(ckpt)
    state.D.eval()
    g = torch.Generator().manual_seed(0)
    i = torch.randint(0, len(state.levels), (pairs,), generator=g)
    j = torch.randint(0, len(state.levels), (pairs,), generator=g)
    enemies = torch.from_numpy(tile_counts(state.levels)[:, list(ENEMIES)].sum(1))
    keep = enemies[i] != enemies[j]
    i, j = i[keep], j[keep]
    if not len(i):
        return float("nan")
    own = state.D(state.x[i], state.c[i])
    other = state.D(state.x[i], state.c[j])
    return 100.0 * float((own > other).float().mean())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", type=Path, help="conditional level run folders")
    p.add_argument("--n", type=int, default=1000, help="levels per request (1000)")
    p.add_argument("--discriminator", action="store_true", help="also test D (see above)")
    args = p.parse_args()
    head = "| run | " + " | ".join(f"asked {k}" for k in ASKED) + " | corr |"
    head += " D prefers own condition % |" if args.discriminator else ""
    print(head)
    print("|---" * (len(ASKED) + 2 + args.discriminator) + "|")
    for run in args.runs:
        rows, corr = follows(run, args.n)
        cells = [f"{mean:.2f} ({exact:.0f}%)" for mean, exact in rows]
        line = f"| {run.name} | " + " | ".join(cells) + f" | {corr:.2f} |"
        if args.discriminator:
            line += f" {d_checks(run):.0f} |"
        print(line, flush=True)
    print(f"\ncells: mean enemies made (made exactly as asked); {args.n} levels per request")


if __name__ == "__main__":
    main()
