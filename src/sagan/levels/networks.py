"""CESAGAN's generator and discriminator (Torrado et al., CoG 2020), on one-hot tile maps.

Both networks work on an ``S x S`` canvas (16 for Zelda, see :mod:`sagan.levels.encoding`);
every layer is spectrally normalised, as in SAGAN.

Generator ``(z (B, z_dim), c (B, 8)) -> (B, 8, S, S)`` tile probabilities (softmax over tiles):

    z -> 4x4 transposed conv -> (B, 4ch, 4, 4) -> [BN, ReLU, 4x4 stride-2 transposed conv]
      ... -> (B, ch, S, S) -> BN, ReLU -> self-attention
      -> concat a fully connected embedding of c, broadcast over the map (B, ch + e, S, S)
      -> 1x1 transposed conv -> (B, 8, S, S) -> softmax over tiles
      (in training: one-hot of the arg-max forward, softmax gradient backward)

Discriminator ``(x (B, 8, S, S), c (B, 8)) -> (B,)`` scores:

    x -> 1x1 conv -> (B, ch, S, S) -> LeakyReLU -> self-attention
      -> concat the embedding of c -> 1x1 conv -> (B, ch, S, S)
      -> [4x4 stride-2 conv, LeakyReLU] ... -> (B, 4ch, 4, 4) -> linear -> score

as the paper describes: 1x1 convolutions in D, 1x1 transposed convolutions in G, and the
condition's embedding concatenated with the self-attention feature map in both. With
``condition_norm`` (our addition), G's BatchNorms also take their gain and bias from the
condition, as SAGAN's class-conditional BatchNorm does from a label, so that every layer of G,
not only the last, can act on the counts asked for. With ``condition_places`` (ours), the
avatar, key and door cells the condition asks for reach G as three maps added to its last
features (before attention) and concatenated at its output, and D as three more input
channels; with ``fixed_places`` (ours) G puts the three tiles on exactly those cells
(:func:`fix_places`); with ``fixed_enemies`` (ours) G's one-hot output holds exactly the
enemy total the condition asks for (:func:`exact_enemies`). Switching off
``attention`` and ``conditional`` gives the plain DCGAN-style level GAN of MarioGAN/DagstuhlGAN
(same convolutional stack); ``attention`` alone is SAGAN without conditioning.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

from sagan.levels.conditions import PLACED, place_maps
from sagan.levels.config import PLACE_DIM, ModelConfig
from sagan.levels.encoding import NUM_TILES
from sagan.levels.tiles import ENEMIES, WALL
from sagan.nn import (
    SelfAttention2d,
    VectorConditionalBatchNorm2d,
    sn_conv2d,
    sn_conv_transpose2d,
    sn_linear,
)

__all__ = [
    "LevelDiscriminator",
    "LevelGenerator",
    "doublings",
    "exact_enemies",
    "fix_places",
    "minibatch_std",
    "straight_through",
]


def doublings(canvas: int) -> int:
    """Stride-2 layers between 4x4 and the canvas (2 for 16x16)."""
    return int(math.log2(canvas)) - 2


def _condition_features(cfg: ModelConfig, c: torch.Tensor) -> torch.Tensor:
    """What the condition embedding sees: the tile shares as in the paper, or with
    ``condition_counts`` log(1 + count) (and log(1 + moves) for ``condition_length``, whose
    entry is stored as moves / area like a share). Spectral norm keeps the embedding 1-Lipschitz, so
    one enemy more, a share difference of 1/117, moves it by at most 1/117: too little for G
    to act on; in log counts, one enemy more (2 -> 3) is 0.29."""
    if not cfg.condition_counts:
        return c
    assert cfg.height is not None and cfg.width is not None
    k = cfg.condition_dim - (PLACE_DIM if cfg.condition_places else 0)  # counts (and length)
    counted = torch.log1p(c[:, :k] * (cfg.height * cfg.width))
    return torch.cat([counted, c[:, k:]], dim=1)  # placements stay in (0, 1)


def _place_maps(cfg: ModelConfig, c: torch.Tensor) -> torch.Tensor:
    """The condition's avatar, key and door cells as maps ``(B, 3, S, S)`` (its last
    ``PLACE_DIM`` entries, :func:`~sagan.levels.conditions.place_maps`)."""
    assert cfg.height is not None and cfg.width is not None
    return place_maps(c[:, -PLACE_DIM:], cfg.height, cfg.width, cfg.canvas)


def straight_through(probs: torch.Tensor) -> torch.Tensor:
    """Tile probabilities ``(B, T, S, S)`` -> exactly one-hot tiles forward (the most likely
    tile per cell), the probabilities' gradients backward (straight-through, our choice: the
    paper feeds D the soft outputs)."""
    index = probs.argmax(dim=1, keepdim=True)  # (B, 1, S, S)
    onehot = torch.zeros_like(probs).scatter_(1, index, 1.0)  # (B, T, S, S)
    return onehot + (probs - probs.detach())  # exactly one-hot: x - x == 0


def fix_places(logits: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    """Tile logits ``(B, 8, S, S)`` and the asked cells of the avatar, key and door ``maps``
    ``(B, 3, S, S)`` (one-hot, all zero for a tile not asked for) -> tile probabilities with
    each of the three exactly on its cell (a constant one-hot there: no gradient) and nowhere
    else (its logit masked out on every other cell), a softmax over the other tiles elsewhere
    (``model.fixed_places``, ours). The asked cells must be distinct."""
    placed = list(PLACED)
    allowed = torch.ones_like(logits, dtype=torch.bool)  # (B, 8, S, S)
    allowed[:, placed] = maps > 0
    probs = torch.softmax(logits.masked_fill(~allowed, float("-inf")), dim=1)
    fixed = torch.zeros_like(probs)
    fixed[:, placed] = maps.to(probs.dtype)
    asked = maps.sum(dim=1, keepdim=True) > 0  # (B, 1, S, S)
    return torch.where(asked, fixed, probs)


def exact_enemies(probs: torch.Tensor, total: torch.Tensor, free: torch.Tensor) -> torch.Tensor:
    """Tile probabilities ``(B, 8, S, S)`` -> one-hot tiles forward with exactly ``total``
    ``(B,)`` enemies (of any kind; fewer only where ``free`` has fewer cells), the
    probabilities' gradients backward (straight-through), ``model.fixed_enemies`` (ours).

    A cell's score is log p(its most likely enemy) - log p(its most likely other tile), as in
    :func:`~sagan.levels.train.rank_loss`; the ``total`` cells of ``free`` ``(B, S, S)`` (bool:
    where an enemy may stand) with the highest scores become their most likely enemy, every
    other cell its most likely other tile. Where G's arg-max already has ``total`` enemies
    this is the plain arg-max; otherwise the cells nearest the decision flip. Which cells hold
    enemies stays G's to learn: D's gradient reaches their scores through the probabilities.
    """
    enemies = list(ENEMIES)
    others = [t for t in range(probs.shape[1]) if t not in enemies]
    logp = probs.detach().float().clamp_min(1e-6).log()  # (B, T, S, S)
    best_enemy = logp[:, enemies].max(dim=1)  # values, indices (B, S, S)
    best_other = logp[:, others].max(dim=1)
    score = (best_enemy.values - best_other.values).masked_fill(~free, float("-inf"))
    rank = score.flatten(1).argsort(dim=1, descending=True).argsort(dim=1)  # (B, S * S)
    k = torch.minimum(total.to(rank.dtype), free.flatten(1).sum(1))  # (B,)
    chosen = (rank < k[:, None]).view_as(free)  # (B, S, S)
    enemy_index = torch.tensor(enemies, device=probs.device)[best_enemy.indices]
    other_index = torch.tensor(others, device=probs.device)[best_other.indices]
    index = torch.where(chosen, enemy_index, other_index)[:, None]  # (B, 1, S, S)
    onehot = torch.zeros_like(probs).scatter_(1, index, 1.0)
    return onehot + (probs - probs.detach())


def minibatch_std(h: torch.Tensor, group: int) -> torch.Tensor:
    """``h`` (B, C, H, W) -> (B, C + 1, H, W): one more map holding, for each sample, the
    standard deviation of the features over its group of ``group`` consecutive samples
    (averaged over features and positions). B must divide by ``group`` (or be smaller: one
    group), so a batch of reals followed by as many fakes never mixes the two when each half
    divides by it."""
    b, c, height, width = h.shape
    g = min(group, b)
    if b % g:
        raise ValueError(f"minibatch_std: batch {b} does not divide into groups of {g}")
    y = h.float().reshape(b // g, g, c, height, width)
    std = (y.var(dim=1, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # (B/g,)
    feature = std.repeat_interleave(g)[:, None, None, None].expand(b, 1, height, width)
    return torch.cat([h, feature.to(h.dtype)], dim=1)


class _Condition(nn.Module):
    """A fully connected embedding of the condition's features (:func:`_condition_features`),
    broadcast over a feature map."""

    def __init__(self, features: int, embed: int) -> None:
        super().__init__()
        self.fc = sn_linear(features, embed)

    def forward(self, h: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        e = torch.relu(self.fc(features))  # (B, embed)
        e = e[:, :, None, None].expand(-1, -1, h.shape[2], h.shape[3])  # (B, embed, H, W)
        return torch.cat([h, e], dim=1)  # (B, C + embed, H, W)


class LevelGenerator(nn.Module):
    """``(z, c) -> (B, 8, S, S)`` softmax tile probabilities."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        canvas = cfg.canvas
        n = doublings(canvas)
        widths = [cfg.ch * 2 ** (n - i) for i in range(n + 1)]  # e.g. 4ch, 2ch, ch
        z_in = cfg.z_dim + (cfg.embed if cfg.condition_input else 0)
        self.condition_in = sn_linear(cfg.condition_dim, cfg.embed) if cfg.condition_input else None
        layers: list[nn.Module] = [sn_conv_transpose2d(z_in, widths[0], 4)]
        for w_in, w_out in itertools.pairwise(widths):
            layers += [self._norm(w_in), nn.ReLU(), sn_conv_transpose2d(w_in, w_out, 4, 2, 1)]
        layers += [self._norm(cfg.ch), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.attention = nn.ModuleDict(
            {f"{canvas}": SelfAttention2d(cfg.ch)} if cfg.attention else {}
        )
        self.condition = _Condition(cfg.condition_dim, cfg.embed) if cfg.conditional else None
        places = len(PLACED) if cfg.condition_places else 0
        # condition_places: the cell maps are added to the features before attention (so the
        # whole level can be laid out around them) and concatenated at the output
        self.places_in = sn_conv2d(places, cfg.ch, 1) if places else None
        width = cfg.ch + (cfg.embed if cfg.conditional else 0) + places
        self.out = sn_conv_transpose2d(width, NUM_TILES, 1)
        # wall_border: True on every canvas cell outside the level's inside (its border
        # rows and columns and the padding), which G then always makes wall; a plain
        # attribute, not a buffer: not saved, not synchronised by DDP
        self.frame: torch.Tensor | None = None
        if cfg.wall_border:
            assert cfg.height is not None and cfg.width is not None
            self.frame = torch.ones(canvas, canvas, dtype=torch.bool)  # (S, S)
            self.frame[1 : cfg.height - 1, 1 : cfg.width - 1] = False

    def _norm(self, width: int) -> nn.Module:
        if self.cfg.condition_norm:
            return VectorConditionalBatchNorm2d(width, self.cfg.condition_dim)
        return nn.BatchNorm2d(width)

    def forward(
        self, z: torch.Tensor, c: torch.Tensor | None = None, *, hard: bool = False
    ) -> torch.Tensor:
        """``hard``: one-hot tiles forward, softmax gradients backward (straight-through), so
        that D sees generated levels exactly as they decode, as it sees real ones."""
        if self.cfg.conditional and c is None:
            raise ValueError("this generator is conditional: pass a condition vector")
        # (B, 8): what every entry point of the condition sees, computed once
        features = _condition_features(self.cfg, c) if self.cfg.conditional else None
        if self.condition_in is not None:
            assert features is not None
            e = torch.relu(self.condition_in(features))  # (B, embed)
            z = torch.cat([z, e], dim=1)  # (B, z_dim + embed)
        h = z[:, :, None, None]  # (B, z_in, 1, 1)
        for layer in self.body:  # -> (B, ch, S, S)
            if isinstance(layer, VectorConditionalBatchNorm2d):
                assert features is not None
                h = layer(h, features)
            else:
                h = layer(h)
        maps = None
        if self.places_in is not None:
            assert c is not None
            maps = _place_maps(self.cfg, c).to(h.dtype)  # (B, 3, S, S)
            h = h + self.places_in(maps)  # (B, ch, S, S)
        for attn in self.attention.values():
            h = attn(h)
        if self.condition is not None:
            assert features is not None
            h = self.condition(h, features)  # (B, ch + embed, S, S)
        if maps is not None:
            h = torch.cat([h, maps], dim=1)  # (B, ch + embed + 3, S, S)
        logits = self.out(h)  # (B, 8, S, S)
        if maps is not None and self.cfg.places_fixed:
            probs = fix_places(logits, maps)  # avatar, key, door on their cells, nowhere else
        else:
            probs = torch.softmax(logits, dim=1)  # (B, 8, S, S)
        if self.frame is not None:  # the border and padding: wall, with no gradient
            wall = torch.zeros_like(probs[:1, :, :1, :1])  # (1, 8, 1, 1)
            wall[:, WALL] = 1.0
            if self.frame.device != probs.device:  # moved once, not on every forward
                self.frame = self.frame.to(probs.device)
            probs = torch.where(self.frame, wall, probs)
        if hard and self.cfg.enemies_fixed:
            assert c is not None
            return exact_enemies(probs, self._enemy_total(c), self._enemy_cells(maps, probs))
        return straight_through(probs) if hard else probs

    def _enemy_total(self, c: torch.Tensor) -> torch.Tensor:
        """The enemy total ``(B,)`` the condition's shares ``c[:, :8]`` ask for."""
        m = self.cfg
        assert m.height is not None and m.width is not None
        return (c[:, list(ENEMIES)].sum(1) * (m.height * m.width)).round()

    def _enemy_cells(self, maps: torch.Tensor | None, probs: torch.Tensor) -> torch.Tensor:
        """``(B, S, S)`` bool: the level's cells an enemy may take (inside the wall border
        with ``wall_border``; not an asked avatar, key or door cell with ``places_fixed``)."""
        m = self.cfg
        assert m.height is not None and m.width is not None
        free = torch.zeros(m.canvas, m.canvas, dtype=torch.bool)
        free[: m.height, : m.width] = True
        if self.frame is not None:
            free &= ~self.frame.cpu()
        free = free.to(probs.device).expand(len(probs), -1, -1)
        if maps is not None and m.places_fixed:
            free = free & ~(maps.sum(dim=1) > 0)
        return free


class LevelDiscriminator(nn.Module):
    """``(x (B, tiles, S, S), c) -> (B,)`` realness scores (higher = more real)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        canvas = cfg.canvas
        places = len(PLACED) if cfg.condition_places else 0
        self.inp = sn_conv2d(NUM_TILES + places, cfg.ch, 1)  # condition_places: the cell maps too
        self.attention = nn.ModuleDict(
            {f"{canvas}": SelfAttention2d(cfg.ch)} if cfg.attention else {}
        )
        self.condition = _Condition(cfg.condition_dim, cfg.embed) if cfg.conditional else None
        width = cfg.ch + (cfg.embed if cfg.conditional else 0)
        self.mix = sn_conv2d(width, cfg.ch, 1)
        n = doublings(canvas)
        widths = [cfg.ch * 2**i for i in range(n + 1)]  # ch, 2ch, 4ch
        layers: list[nn.Module] = []
        for i, (w_in, w_out) in enumerate(itertools.pairwise(widths)):
            extra = int(i == 0 and cfg.minibatch_std > 0)  # the group-std feature map
            layers += [sn_conv2d(w_in + extra, w_out, 4, 2, 1), nn.LeakyReLU(0.2)]
        self.body = nn.Sequential(*layers)
        self.head = sn_linear(widths[-1] * 16, 1)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        if self.cfg.condition_places:
            if c is None:
                raise ValueError("this discriminator is conditional: pass a condition vector")
            x = torch.cat([x, _place_maps(self.cfg, c).to(x.dtype)], dim=1)  # (B, 8 + 3, S, S)
        h = nn.functional.leaky_relu(self.inp(x), 0.2)  # (B, ch, S, S)
        for attn in self.attention.values():
            h = attn(h)
        if self.condition is not None:
            if c is None:
                raise ValueError("this discriminator is conditional: pass a condition vector")
            h = self.condition(h, _condition_features(self.cfg, c))  # (B, ch + embed, S, S)
        h = nn.functional.leaky_relu(self.mix(h), 0.2)  # (B, ch, S, S)
        if self.cfg.minibatch_std:
            h = minibatch_std(h, self.cfg.minibatch_std)  # (B, ch + 1, S, S)
        h = self.body(h)  # (B, 4ch, 4, 4)
        return self.head(h.flatten(1)).squeeze(1)  # (B,)
