"""Configuration of a CESAGAN level run: model, data, training and bootstrapping.

Precedence as for images: these defaults < ``--config`` YAML < flags. The resolved config (with
the data-derived level size filled in) is written to the run folder before step 0 and stored
in every checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sagan.config import check_positive, check_range, from_dict_with_preset, merge, to_dict
from sagan.errors import SaganError
from sagan.training.config import EngineConfig

PLACE_DIM = 6
"""Condition entries of ``condition_places``: (row, column) of the avatar, the key and the door."""

__all__ = [
    "CONDITION_ADDITIONS",
    "PLACE_DIM",
    "PRESETS",
    "VARIANTS",
    "BootstrapConfig",
    "LevelRunConfig",
    "ModelConfig",
    "TrainConfig",
    "upgrade_config",
]

VARIANTS = {
    "dcgan": (False, False),
    "sagan": (True, False),
    "cesagan": (True, True),
}
"""``--variant`` -> (self-attention, conditioning): the paper's model and its two baselines."""


CONDITION_ADDITIONS = (
    "condition_counts",
    "condition_norm",
    "condition_length",
    "condition_input",
    "condition_places",
)
"""Our additions to the paper's conditioning (ModelConfig fields); each needs a conditional
model, and ``--preset paper`` turns them all off."""


@dataclass(frozen=True)
class ModelConfig:
    """The two networks (see :mod:`sagan.levels.networks`)."""

    z_dim: int = 32
    """Latent size."""
    ch: int = 32
    """Width at the canvas resolution; it doubles at each halving (ch, 2ch, 4ch)."""
    embed: int = 16
    """Width of the condition embedding concatenated with the attention output."""
    attention: bool = True
    """Self-attention in G and D (off: the paper's DCGAN baseline)."""
    conditional: bool = True
    """Condition G and D on the tile shares of a training level (the paper's CESAGAN)."""
    condition_input: bool = False
    """Our addition to the paper (off by default): G also gets the condition's embedding
    concatenated with z at its input, so that it can plan the whole level for the counts;
    the paper's only entry point is the last layer, a spatially uniform bias."""
    condition_counts: bool = True
    """Our addition (on by default; off in ``--preset paper``): embed the condition as
    log(1 + tile count) instead of tile shares. With spectral norm on the embedding, a share
    difference of one tile (1/117 for Zelda) can hardly move it."""
    condition_norm: bool = True
    """Our addition (on by default; off in ``--preset paper``): G's BatchNorms take their gain
    and bias from the condition (:class:`~sagan.nn.VectorConditionalBatchNorm2d`, like SAGAN's
    class-conditional BatchNorm), so that every layer of G, not only the last, sees the counts
    asked for."""
    minibatch_std: int = 0
    """Our addition (0: off, as in the paper): D gets one more feature map, the standard
    deviation of its features across each group of this many consecutive levels (ProGAN's
    minibatch standard deviation, Karras et al. 2018), so that it can see a batch of
    near-copies; real and generated levels are never grouped together."""
    condition_length: bool = False
    """Our addition (off by default): the condition also holds the level's shortest solution
    (moves), so that ``generate --condition length=20..30`` asks G for it; without it a
    length request only filters (generate and test)."""
    condition_places: bool = True
    """Our addition (on by default; off in ``--preset paper``): the condition also holds the cells
    of the avatar, the key and the door, which G and D see as three maps of the canvas. Bootstrap
    proposals ask for cells drawn uniformly over the level's inside (not its border), so that
    accepted levels spread the set's placements; ``generate`` and ``eval`` ask for the placements of
    random training-set levels (see :mod:`sagan.levels.conditions`)."""
    fixed_places: bool = True
    """Our addition (on by default; off in ``--preset paper``; used only with
    ``condition_places``): G puts the avatar, the key and the door exactly on the cells the
    condition asks for, with no gradient there, and nowhere else (those tiles' logits are masked
    out on every other cell), so that placing them is no longer something G must learn; a tile
    the condition leaves out (cell -1) appears nowhere. ``cells as asked`` is then 100% by
    construction, and where the three land is decided by what is asked: the cells of training-set
    levels in ``generate`` and ``eval``, uniformly drawn ones in bootstrap proposals."""
    fixed_enemies: bool = True
    """Our addition (on by default; off in ``--preset paper``; used only by conditional
    models): G's one-hot output (what D sees, what ``generate``, ``eval`` and bootstrapping
    decode) holds exactly the enemy total its condition asks for: the cells where G leans most
    to an enemy become enemies, the others their most likely other tile
    (:func:`~sagan.levels.networks.exact_enemies`; enemies are never put on the border or on an
    asked avatar, key or door cell). ``enemies as asked`` is then 100% by construction (unless
    more are asked for than the level has free cells); where the enemies stand, and of which
    kind, is still learned."""
    wall_border: bool = True
    """Our addition (on by default; off in ``--preset paper``): G makes the level's border rows and
    columns wall outright, with no gradient there, and generates only the inside. Every Zelda level
    is walled in, so the paper's G must learn a constant; an open border cell makes a level
    unplayable. Needs starting levels that are all walled in."""
    height: int | None = field(default=None, metadata={"cli": False})
    """Level rows, from the data."""
    width: int | None = field(default=None, metadata={"cli": False})
    """Level columns, from the data."""

    def __post_init__(self) -> None:
        for name in ("z_dim", "ch", "embed"):
            check_positive(f"model.{name}", getattr(self, name))
        check_positive("model.minibatch_std", self.minibatch_std, allow_zero=True)
        for name in CONDITION_ADDITIONS:
            if getattr(self, name) and not self.conditional:
                raise SaganError(
                    f"model.{name} needs a conditional model; an unconditional one (--variant "
                    f"sagan or dcgan) has no condition: drop --{name.replace('_', '-')}"
                )
        if self.attention and self.ch < 8:
            raise SaganError("model.ch: self-attention needs ch >= 8 (C/8 key channels)")

    @property
    def places_fixed(self) -> bool:
        """G puts the avatar, key and door on the cells asked for (``fixed_places``, which acts
        only with ``condition_places``)."""
        return self.fixed_places and self.condition_places

    @property
    def enemies_fixed(self) -> bool:
        """G's one-hot output holds the enemy total asked for (``fixed_enemies``, which acts
        only in conditional models)."""
        return self.fixed_enemies and self.conditional

    @property
    def condition_dim(self) -> int:
        """Numbers in the condition vector: 8 tile shares, the solution length
        (``condition_length``), and the avatar, key and door cells (``condition_places``: 6)."""
        return 8 + int(self.condition_length) + PLACE_DIM * int(self.condition_places)

    @property
    def canvas(self) -> int:
        """The padded side the networks work on (see :mod:`sagan.levels.encoding`)."""
        from sagan.levels.encoding import canvas_size

        if self.height is None or self.width is None:
            raise ValueError("the level size is not known yet")
        return canvas_size(self.height, self.width)

    @property
    def variant(self) -> str:
        """``dcgan``, ``sagan``, ``cesagan`` or ``conditional-dcgan``."""
        for name, flags in VARIANTS.items():
            if flags == (self.attention, self.conditional):
                return name
        return "conditional-dcgan"


@dataclass(frozen=True)
class TrainConfig(EngineConfig):
    """Optimisation: TTUR Adam and hinge loss as in SAGAN; the schedule, device and precision
    settings are the engine's (:class:`~sagan.training.config.EngineConfig`)."""

    batch_size: int = 32
    """The global batch of training levels (drawn with replacement)."""
    steps: int = 4000
    """Total iterations of the run (a resumed run continues up to this); our choice, as
    measured."""
    save_every: int = 500
    """Steps between checkpoints (and one at the end)."""
    sample_every: int = 500
    """Steps between pictures of 16 generated levels in RUN/samples/."""
    log_every: int = 50
    """Steps between lines of stats.jsonl (and whenever bootstrapping adds levels)."""
    keep_checkpoints: int = 2
    """Newest ckpt-*.pt files kept (best.pt is kept apart)."""
    eval_every: int = 500
    """Evaluate the EMA generator on eval_n levels every N steps and at the end (0 = never);
    best.pt keeps the checkpoint with the most distinct novel playable levels (at least 10
    tiles from the starting levels and from each other); generate and eval use it."""
    eval_n: int = 2000
    """Levels generated per periodic evaluation (the paper's evaluation uses 15,000)."""
    lr_g: float = 1e-4
    """G's learning rate (TTUR, as SAGAN)."""
    lr_d: float = 4e-4
    """D's learning rate (TTUR, as SAGAN)."""
    beta1: float = 0.0
    """Adam beta1."""
    beta2: float = 0.9
    """Adam beta2."""
    count_weight: float = 0.0
    """Weight of an auxiliary loss on G, our addition to the paper (0: off, as in the paper):
    the mean absolute difference between the tile counts G makes and the counts its condition
    asks for (conditional models only; see :func:`sagan.levels.train.count_loss`)."""
    mode_seeking: float = 0.05
    """Weight of a mode-seeking term in G's loss, our addition (0.05 by default; 0, off, in
    ``--preset paper``; Mao et al. 2019's MSGAN): 1 / (distance between two levels made from the
    same condition / distance between their latents), so that different z give different levels (the
    first distance is the share of differing tiles, so the term is tens for collapsed levels: keep
    the weight small, e.g. 0.05; at 1 it drowned the adversarial loss)."""
    place_weight: float = 1.0
    """Weight of an auxiliary loss on G, our addition (1 by default; 0, off, in ``--preset
    paper``; used only with ``condition_places``): for half of each batch, G is also asked for
    avatar, key and door cells drawn uniformly inside the level and pays a cross-entropy that
    wants each of those tiles on its cell and nowhere else
    (:func:`sagan.levels.train.place_loss`), so that it learns to place them on any cell, not
    only on the training set's. Measured on three runs so far (``benchmarks/results/levels-
    places-2026-12-01.md``)."""
    rank_weight: float = 0.0
    """Weight of an auxiliary loss on G, our addition (0, off, by default: ``model.fixed_enemies``
    makes the total exact, and with this loss on, 0.5's default, the enemies settled on a few
    cells of every level; used only by conditional models): on the same half batch and enemy
    requests as ``request_weight``, a hinge on each cell's decoding score (its most likely enemy
    against its most likely other tile, in log probability) that wants exactly the requested
    number of cells, those where G already leans most to an enemy, to decode as an enemy, and
    moves only the enemies' probabilities (:func:`sagan.levels.train.rank_loss`)."""
    rank_margin: float = 2.0
    """The margin of ``rank_weight``'s hinge, in log probability (our choice, 2 by default: a
    cell should decode as wanted with its most likely enemy e^2 = 7.4 times as likely as its most
    likely other tile, or the reverse, so that the count survives the EMA's weights and
    BatchNorm's running statistics; 0.5 in the first runs with the loss)."""
    request_weight: float = 1.0
    """Weight of an auxiliary loss on G, our addition (1 by default; 0, off, in ``--preset
    paper``; used only by conditional models): for half of each batch, G is also asked for the
    training levels' counts with the enemy total drawn uniformly from 0 to 5 (the requests
    ``sagan levels eval`` scores as ``enemies_as_asked``), and pays
    :func:`sagan.levels.train.count_loss`, the mean absolute difference between the avatar, key,
    door and enemy counts it makes and those asked. D never sees these levels. Bootstrap
    proposals are asked for such totals too, so that playable levels with them can join the set
    (each with the counts it has). Without it G is only ever asked for the training set's counts
    (3-4 enemies in the five GVGAI levels)."""
    anchor: float = 0.25
    """Our addition (0.25 by default; 0, off, in ``--preset paper``): this share of each batch
    of real levels is drawn from the starting levels (with ``mirror``, and their mirror images),
    the rest from the whole training set, so that D keeps seeing the originals while
    bootstrapping fills the set with levels of G's own (without it, the set drifted towards
    wall-heavy mazes on some seeds and G with it: most of its levels unplayable)."""
    mirror: bool = True
    """Our addition (on by default; off in ``--preset paper``): train on every level of the set and
    on its three mirror images (left-right, top-bottom, both;
    :func:`sagan.levels.data.with_mirrors`), which Zelda's rules play alike. Bootstrapping then also
    rejects a level that is near a mirror image of a set level, and novelty (``eval``, best.pt) is
    measured against the starting levels and their mirror images, so that a mirrored copy counts as
    no new level."""
    ema: bool = True
    """Our addition (on by default; off in ``--preset paper``): generate, bootstrap and
    evaluate with an exponential moving average of G's weights (decay 0.999) instead of G."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive("train.count_weight", self.count_weight, allow_zero=True)
        check_positive("train.mode_seeking", self.mode_seeking, allow_zero=True)
        check_positive("train.place_weight", self.place_weight, allow_zero=True)
        check_positive("train.request_weight", self.request_weight, allow_zero=True)
        check_positive("train.rank_weight", self.rank_weight, allow_zero=True)
        check_positive("train.rank_margin", self.rank_margin, allow_zero=True)
        check_positive("train.eval_n", self.eval_n)
        check_range("train.anchor", self.anchor, 0.0, 1.0)
        check_positive("train.lr_g", self.lr_g)
        check_positive("train.lr_d", self.lr_d)
        check_range("train.beta1", self.beta1, 0.0, 0.999999)
        check_range("train.beta2", self.beta2, 0.0, 0.999999)

    @property
    def requests_enemies(self) -> bool:
        """G is asked for enemy totals the set may lack (``request_weight`` or
        ``rank_weight``), in training and in bootstrap proposals (with ``model.fixed_enemies``
        these still grow the set with levels of every total from 0 to 5)."""
        return self.request_weight > 0 or self.rank_weight > 0


@dataclass(frozen=True)
class BootstrapConfig:
    """Every ``every`` steps, sample ``samples`` levels; the playable ones that are at least
    ``min_distance`` tiles (Hamming) from every level already in the training set (and, with
    ``min_solution``, take at least that many moves to solve) join it."""

    every: int = field(default=100, metadata={"flag": "--bootstrap-every"})
    """Steps between bootstrap rounds; 0 turns bootstrapping off."""
    samples: int = field(default=64, metadata={"flag": "--bootstrap-samples"})
    """Levels generated per bootstrap round."""
    min_distance: int = 15
    """Hamming distance (tiles) a playable level needs from every training level to join (our
    choice: 15 by default, 10 in 0.4, 5 in ``--preset paper`` and before 0.4; the paper asks
    only for levels that are new)."""
    max_size: int = field(default=5000, metadata={"flag": "--bootstrap-max-size"})
    """The training set stops growing at this size."""
    min_solution: int = 15
    """Our addition (15 by default; 0, off, in ``--preset paper``): a level whose shortest
    solution takes fewer moves does not join, so that levels solved in a few steps (avatar,
    key and door side by side) cannot take over the set."""

    max_cell_share: float = 0.0
    """Our addition (0: off, as in the paper): a level joins only if, with it, the cell of its
    avatar, of its key and of its door each holds that tile in at most this share of the
    training set (counted over at least 25 levels, so that a small set can grow), so that one
    layout cannot take the set over (e.g. 0.2)."""

    max_enemy_share: float = 0.0
    """Our addition (0: off, as in the paper): the same cap for enemies: a level joins only if,
    with it, each of its enemy cells holds an enemy (of any kind) in at most this share of the
    training set (counted over at least 25 levels), so that the enemies cannot settle on a
    few cells of every level (e.g. 0.2)."""

    def __post_init__(self) -> None:
        check_range("bootstrap.max_cell_share", self.max_cell_share, 0.0, 1.0)
        check_range("bootstrap.max_enemy_share", self.max_enemy_share, 0.0, 1.0)
        check_positive("bootstrap.every", self.every, allow_zero=True)
        check_positive("bootstrap.samples", self.samples)
        check_positive("bootstrap.min_distance", self.min_distance)
        check_positive("bootstrap.max_size", self.max_size)
        check_positive("bootstrap.min_solution", self.min_solution, allow_zero=True)


PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "default": {},
    "paper": {
        "model": {
            **dict.fromkeys(CONDITION_ADDITIONS, False),
            "wall_border": False,
            "fixed_places": False,
            "fixed_enemies": False,
        },
        "train": {
            "count_weight": 0.0,
            "place_weight": 0.0,
            "request_weight": 0.0,
            "rank_weight": 0.0,
            "mode_seeking": 0.0,
            "mirror": False,
            "anchor": 0.0,
            "ema": False,
            "eval_every": 0,
        },
        "bootstrap": {"min_solution": 0, "max_cell_share": 0.0, "min_distance": 5},
    },
    "none": {},
}
"""``--preset`` -> the settings it changes from the field defaults (a config file and flags
override them). ``paper`` keeps no ``best.pt`` (the paper evaluates its final model; on a
collapsing model our criterion picks an early, noisy checkpoint). ``default`` is our best
configuration; ``paper`` is Torrado et al.'s CESAGAN without our additions (straight-through
one-hots stay: the paper's soft outputs do not train here, see the README); ``none`` marks runs
written before presets (0.2 and older), whose configs hold every setting."""


@dataclass(frozen=True)
class LevelRunConfig:
    """Everything a level run needs, as written to ``config.yaml``."""

    preset: str = "default"
    """``default`` (our best: counts embedded, conditional BatchNorm, the avatar, key and door
    put on the cells asked for, exactly the enemy total asked for, mirror images, a wall border,
    enemy requests with the count loss, a quarter of each real batch from the starting levels,
    mode seeking, --min-solution 15, --min-distance 15, EMA) or ``paper`` (Torrado et al.'s
    model); a config file and flags override it."""
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    bootstrap: BootstrapConfig = field(default_factory=BootstrapConfig)
    levels: str = "builtin"
    """``builtin`` (the package's 8 levels) or a folder of level files."""

    def __post_init__(self) -> None:
        group = self.model.minibatch_std
        if group and self.train.batch_size % group:
            raise SaganError(
                f"model.minibatch_std {group}: the batch ({self.train.batch_size}) must divide "
                "into groups of it, so that real and generated levels are never grouped together"
            )
        if self.train.count_weight > 0 and not self.model.conditional:
            raise SaganError(
                "train.count_weight needs a conditional model (--variant cesagan): an "
                "unconditional generator is asked for no counts"
            )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LevelRunConfig:
        """Build from nested plain data (e.g. YAML), validating every field: the preset's
        settings under the given ones. Configs of older runs (without the engine's settings)
        load with those settings' defaults."""
        return from_dict_with_preset(cls, data, PRESETS)

    def to_dict(self) -> dict[str, Any]:
        """Nested plain data (YAML-safe)."""
        return to_dict(self)


def upgrade_config(config: dict[str, Any]) -> dict[str, Any]:
    """A level config in today's terms, so that a resumed or reloaded run behaves as it did:
    one written before presets (0.2 and older) gets preset ``none`` and the settings added
    since at the values those runs had (no cell cap, EMA on); any config without the
    settings of :data:`ADDED_OFF` gets them off."""
    if "preset" in config:
        return merge(ADDED_OFF, config)  # settings added since it was written: off, as then
    old = {"preset": "none", "train": {"ema": True}, "bootstrap": {"max_cell_share": 0.0}}
    return merge(merge(ADDED_OFF, old), config)


ADDED_OFF: dict[str, dict[str, Any]] = {
    "model": {
        "wall_border": False,
        "condition_places": False,
        "fixed_places": False,
        "fixed_enemies": False,
    },
    "train": {
        "mirror": False,
        "request_weight": 0.0,
        "rank_weight": 0.0,
        "rank_margin": 0.5,
        "anchor": 0.0,
        "place_weight": 0.0,
        "mode_seeking": 0.0,
        "eval_every": 0,
    },
}
"""Settings added after 0.1 that the default now turns on, at the values every run had
before them: a config that lacks one loads with it off, whatever today's defaults are (a
config without ``eval_every`` predates the engine's periodic evaluation)."""
