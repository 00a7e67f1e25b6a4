"""The commands and Python shown in README.md and docs/ work: every ``sagan ...`` line of a
shell block goes through the real argument parser (a training command also through its config
schema, without training), and every Python block runs against a tiny exported generator."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from sagan.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
SHELL_LANGS = {"bash", "sh", "shell", "console"}
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<lang>[\w+-]*)")


@dataclass(frozen=True)
class Block:
    """A fenced code block: its language, its text, and where it starts (file, 1-based line)."""

    lang: str
    text: str
    path: Path
    line: int


@dataclass(frozen=True)
class Command:
    """One ``sagan`` command line of a shell block: its arguments after ``sagan``."""

    argv: list[str]
    path: Path
    line: int

    def where(self) -> str:
        path = self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path
        return f"{path}:{self.line}: sagan {shlex.join(self.argv)}"


def doc_files() -> list[Path]:
    """README.md and every page under docs/ (not the dated records linked from docs/results)."""
    pages = sorted(p for p in (ROOT / "docs").rglob("*.md") if "results" not in p.parts)
    return [ROOT / "README.md", *pages]


def code_blocks(text: str, path: Path) -> list[Block]:
    """The fenced code blocks of a Markdown text."""
    blocks: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        fence, indent, start = m["fence"], len(m["indent"]), i + 1
        body: list[str] = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i][indent:] if lines[i][:indent].isspace() else lines[i])
            i += 1
        blocks.append(Block(m["lang"].lower(), "\n".join(body), path, start))
        i += 1
    return blocks


def shell_words(text: str) -> list[list[str]]:
    """The simple commands of one shell line: its words, split at ``;``, ``&&``, ``||``, ``|``."""
    lex = shlex.shlex(text, posix=True, punctuation_chars=";&|")
    lex.whitespace_split = True
    lex.commenters = "#"
    commands: list[list[str]] = [[]]
    for token in lex:
        if token and set(token) <= set(";&|"):
            commands.append([])
        else:
            commands[-1].append(token)
    return [c for c in commands if c]


def sagan_commands(block: Block) -> list[Command]:
    """``sagan ...``, ``python -m sagan ...`` and ``torchrun ... -m sagan ...`` lines of a shell
    block, with backslash continuations joined, ``$`` prompts and trailing comments dropped."""
    commands: list[Command] = []
    lines = block.text.splitlines()
    i = 0
    while i < len(lines):
        start, text = i, lines[i]
        while text.rstrip().endswith("\\") and i + 1 < len(lines):
            i += 1
            text = text.rstrip()[:-1] + " " + lines[i]
        i += 1
        text = text.strip().removeprefix("$ ")
        for words in shell_words(text):
            if "sagan" in words and words[0] in {"torchrun", "python", "python3"}:
                k = words.index("sagan")
                if k > 0 and words[k - 1] == "-m":
                    words = words[k:]
            if words and words[0] == "sagan":
                commands.append(Command(words[1:], block.path, block.line + start + 1))
    return commands


def all_blocks() -> list[Block]:
    return [b for p in doc_files() for b in code_blocks(p.read_text(encoding="utf-8"), p)]


def all_commands() -> list[Command]:
    return [c for b in all_blocks() if b.lang in SHELL_LANGS for c in sagan_commands(b)]


TRAINERS = {
    "train": ("sagan.images.train", "train"),
    "levels train": ("sagan.levels.train", "train_levels"),
    "pose train": ("sagan.pose.train", "train_pose"),
}


def check_command(cmd: Command, monkeypatch: pytest.MonkeyPatch) -> None:
    """Parse ``cmd`` with the real parser; a training command also builds its config (the
    training function is replaced, so nothing trains). Fails with the file, line and error."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            args = build_parser().parse_args(cmd.argv)
    except SystemExit as exc:
        if exc.code not in (0, None):  # --help and --version exit 0
            pytest.fail(f"{cmd.where()}\n  {err.getvalue().strip()}")
        return
    name = " ".join(cmd.argv[:2]) if cmd.argv[0] in ("levels", "pose") else cmd.argv[0]
    if name not in TRAINERS or args.resume is not None or args.config is not None:
        return  # --config names a file of the reader's; --resume a run of theirs
    module, attr = TRAINERS[name]
    made: list[object] = []

    def fake_train(cfg: object = None, **_: object) -> Path:
        made.append(cfg)
        return Path("run")

    monkeypatch.setattr(f"{module}.{attr}", fake_train)
    from sagan.errors import SaganError

    try:
        with contextlib.redirect_stdout(io.StringIO()):
            args.handler(args)
    except SaganError as exc:
        pytest.fail(f"{cmd.where()}\n  sagan: error: {exc}")
    assert made and made[0] is not None, cmd.where()


def test_docs_show_commands() -> None:
    commands = all_commands()
    by_file = {c.path.name for c in commands}
    assert len(commands) >= 40, len(commands)
    assert {"README.md", "images.md", "levels.md", "pose.md"} <= by_file, by_file


@pytest.mark.parametrize("cmd", all_commands(), ids=lambda c: c.where()[:120])
def test_command_parses(cmd: Command, monkeypatch: pytest.MonkeyPatch) -> None:
    check_command(cmd, monkeypatch)


def test_checker_catches_wrong_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "```bash\n"
        "sagan train --steps 10 \\\n    --no-such-flag   # a comment\n"
        "sagan levels trian\n"
        "sagan train --attention 64\n"
        "torchrun --nproc_per_node=2 -m sagan pose train --stacks two\n"
        "echo sagan train --ignored\n"
        "```\n```text\nsagan train --not-a-command-block\n```\n"
    )
    blocks = code_blocks(page.read_text(), page)
    commands = [c for b in blocks if b.lang in SHELL_LANGS for c in sagan_commands(b)]
    assert [c.line for c in commands] == [2, 4, 5, 6]
    assert commands[3].argv[:2] == ["pose", "train"]
    messages = ["unrecognized arguments: --no-such-flag", "invalid choice: 'trian'", "64 is not"]
    messages.append("invalid int value: 'two'")
    for cmd, message in zip(commands, messages, strict=True):
        with pytest.raises(pytest.fail.Exception, match=re.escape(message)):
            check_command(cmd, monkeypatch)
    check_command(Command(["train", "--steps", "10"], page, 1), monkeypatch)


@pytest.fixture(scope="module")
def doc_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with what the pages' Python refers to: ``my-generator/``, a tiny export."""
    from sagan.images.config import ModelConfig, RunConfig, TrainConfig
    from sagan.images.export import export_generator
    from sagan.images.train import train

    folder = tmp_path_factory.mktemp("docs")
    cfg = RunConfig(
        model=ModelConfig(arch="dcgan", ch=8, z_dim=16, attention=(16,)),
        train=TrainConfig(batch_size=8, steps=1, save_every=1, sample_every=1, device="cpu"),
    )
    run = train(cfg, out=folder / "run", progress=False)
    export_generator(run, folder / "my-generator")
    return folder


PYTHON_BLOCKS = [b for b in all_blocks() if b.lang in {"python", "py"}]


@pytest.mark.parametrize(
    "block", PYTHON_BLOCKS, ids=lambda b: f"{b.path.relative_to(ROOT)}:{b.line}"
)
def test_python_block_runs(block: Block, doc_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(doc_folder)
    code = compile(block.text, f"{block.path.name}:{block.line}", "exec")
    exec(code, {"__name__": "__docs__"})
