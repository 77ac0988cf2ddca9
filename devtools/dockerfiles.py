"""Just enough of a Dockerfile reader to check the images against the rest of the deployment (ports,
commands, labels) without a Docker engine."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

_VARIABLE = re.compile(r"\$\{?(\w+)\}?")


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case, e.g. RUN
    arguments: str  # the rest of the logical line, continuations joined
    line: int


@dataclass(frozen=True)
class RunCommand:
    shell: str
    cache_mounted: bool  # a build cache survives between builds; otherwise each build starts empty


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [instruction for instruction in self.instructions if instruction.keyword == keyword]

    def run_commands(self) -> list[RunCommand]:
        """The RUN instructions' shell commands, without their options, noting uv cache mounts."""
        commands = []
        for instruction in self.all("RUN"):
            text, options = instruction.arguments, []
            while text.startswith("--"):
                option, text = text.split(None, 1)
                options.append(option)
            cached = any(option.startswith("--mount=type=cache") for option in options)
            commands.append(RunCommand(text, cached))
        return commands

    def exec_form(self, keyword: str) -> list[str]:
        """The JSON (exec) form of the last CMD, or of HEALTHCHECK's CMD."""
        (instruction,) = self.all(keyword)[-1:]
        text = instruction.arguments
        if keyword == "HEALTHCHECK":
            text = text.split(" CMD ", 1)[1]
        return json.loads(text)

    def healthcheck_options(self) -> dict[str, str]:
        (instruction,) = self.all("HEALTHCHECK")[-1:]
        options = instruction.arguments.split(" CMD ", 1)[0].split()
        return dict(option.removeprefix("--").split("=", 1) for option in options)

    def labels(self) -> dict[str, str]:
        labels: dict[str, str] = {}
        for instruction in self.all("LABEL"):
            for pair in shlex.split(instruction.arguments):
                key, _, value = pair.partition("=")
                labels[key] = value
        return labels


@dataclass
class Dockerfile:
    path: Path
    args: dict[str, str]  # global ARG defaults (before the first FROM)
    stages: list[Stage]

    def stage(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(f"{self.path.name} has no stage {name!r}: {[stage.name for stage in self.stages]}")

    @property
    def final(self) -> Stage:
        return self.stages[-1]


def logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, text) of each instruction: comments dropped, `\\` continuations joined."""
    lines: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        lines.append((start, " ".join(pending)))
        pending = []
    return lines


def parse(path: Path) -> Dockerfile:
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for number, text in logical_lines(path.read_text()):
        keyword, _, arguments = text.partition(" ")
        keyword = keyword.upper()
        arguments = arguments.strip()
        if keyword == "FROM":
            image, _, name = arguments.partition(" AS ")
            base = _VARIABLE.sub(lambda match: args.get(match[1], match[0]), image.strip())
            stages.append(Stage(name=name.strip() or str(len(stages)), base=base))
        elif not stages and keyword == "ARG":
            key, _, value = arguments.partition("=")
            args[key] = value
        elif stages:
            stages[-1].instructions.append(Instruction(keyword, arguments, number))
    return Dockerfile(path=path, args=args, stages=stages)
