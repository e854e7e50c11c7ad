"""The README and docs/*.md cannot drift from the code: every ``beazap …`` command line they show
exists with those subcommands and flags (``--help`` of each through typer's CliRunner, flags from the
command's own parameters), every ``BEAZAP_*`` variable they name is read by the code and shows its
real default, every repository file, ``make`` target, HTTP endpoint and Python import they name
exists."""

from __future__ import annotations

import json
import re
import shlex
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from beazap.cli import app
from core.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_END = re.compile(r"\s(?:\||&&|;|&|>|2>|#)\s|\)|$")
COMMAND = re.compile(r"(?:^\s*|uv run |\$\()beazap\s+(?=[a-z-])")  # a command, not prose naming one


def _fenced(text: str) -> tuple[list[tuple[str, str]], str]:
    """((language, body) of every fenced block, the text outside them)."""
    blocks: list[tuple[str, str]] = []
    outside: list[str] = []
    lang: str | None = None
    body: list[str] = []
    for line in text.splitlines():
        if line.startswith("```"):
            if lang is None:
                lang, body = line[3:].strip(), []
            else:
                blocks.append((lang, "\n".join(body)))
                lang = None
        elif lang is None:
            outside.append(line)
        else:
            body.append(line)
    return blocks, "\n".join(outside)


def _code_lines(text: str) -> list[str]:
    """Shell lines of fenced blocks (backslash continuations joined) and inline code spans."""
    blocks, prose = _fenced(text)
    lines: list[str] = []
    for lang, body in blocks:
        if lang in ("", "bash", "sh", "shell", "console"):
            lines += body.replace("\\\n", " ").splitlines()
    lines += re.findall(r"`([^`\n]+)`", prose)
    return lines


def command_lines() -> list[tuple[str, str]]:
    """(doc, the ``beazap …`` text up to the end of that shell command) for every command shown."""
    found: list[tuple[str, str]] = []
    for doc in DOCS:
        for line in _code_lines(doc.read_text(encoding="utf-8")):
            for m in COMMAND.finditer(line):
                rest = line[m.end() :]
                found.append((doc.name, "beazap " + rest[: SHELL_END.search(rest).start()].strip()))
    return found


def _tokens(cmd: str) -> list[str]:
    cmd = cmd.replace("\\|", "|").replace("[", " ").replace("]", " ")
    try:
        return shlex.split(cmd)
    except ValueError:  # an unbalanced quote in prose: fall back to whitespace
        return cmd.split()


@cache
def _root() -> Any:
    return typer.main.get_command(app)


def check(cmd: str) -> list[str]:
    """Problems of one documented command line (empty when it exists with those flags)."""
    path: list[str] = []
    command = _root()
    tokens = _tokens(cmd)[1:]
    problems: list[str] = []
    while tokens and hasattr(command, "commands"):  # a group (typer vendors its own click)
        head = tokens[0]
        if head.startswith("-") or head in ("…", "...") or head.isupper():
            break
        names = head.split("|")
        missing = [n for n in names if n not in command.commands]
        if missing:
            return [f"{cmd!r}: no subcommand {' '.join(path + missing)!r}"]
        tokens.pop(0)
        if len(names) > 1:  # `team create|list|update …`: each exists; flags are not checked
            return []
        path.append(names[0])
        command = command.commands[names[0]]
    result = CliRunner().invoke(app, [*path, "--help"])
    if result.exit_code != 0:
        return [f"{cmd!r}: `beazap {' '.join(path)} --help` exits {result.exit_code}"]
    flags = {"--help"}
    for param in command.params:
        flags.update(param.opts, param.secondary_opts)
    for token in tokens:
        flag = token.split("=", 1)[0]
        if re.fullmatch(r"--?[a-zA-Z][\w-]*", flag) and flag not in flags:
            problems.append(f"{cmd!r}: `beazap {' '.join(path)}` has no option {flag}")
    return problems


def test_the_extractor_sees_the_documented_commands() -> None:
    lines = [cmd for _, cmd in command_lines()]
    assert any(c.startswith("beazap instance set") for c in lines) and any(c.startswith("beazap sql") for c in lines)
    assert len(lines) > 30


def test_check_catches_a_wrong_subcommand_and_flag() -> None:
    assert check("beazap instance set loja --hours 'mon-fri 08:00-18:00'") == []
    assert check("beazap serve --no-access-log") == []
    assert check("beazap instance frobnicate x")
    assert check("beazap build all --since 2026-01-01")


def test_every_documented_command_exists_with_its_flags() -> None:
    problems = [f"{doc}: {p}" for doc, cmd in command_lines() for p in check(cmd)]
    assert not problems, "\n".join(problems)


def _code_env_vars() -> set[str]:
    """``BEAZAP_*`` names the code reads: every settings field, and literals in product code and test tooling."""
    names = {f"BEAZAP_{name.upper()}" for name in Settings.model_fields}
    for folder in ("core", "storage", "bronze", "silver", "gold", "llm", "live", "governance", "api"):
        for py in (ROOT / folder).rglob("*.py"):
            names.update(re.findall(r"BEAZAP_[A-Z0-9_]+", py.read_text(encoding="utf-8")))
    helpers = [p for p in (ROOT / "tests").rglob("*.py") if not p.name.startswith("test_")]  # test tooling
    for py in [*(ROOT / "orchestration").rglob("*.py"), *(ROOT / "beazap").rglob("*.py"), *helpers]:
        names.update(re.findall(r"BEAZAP_[A-Z0-9_]+", py.read_text(encoding="utf-8")))
    names.update(re.findall(r"BEAZAP_[A-Z0-9_]+", (ROOT / "orchestration" / "dagster.yaml").read_text()))
    return names


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_documented_env_var_is_read_by_the_code(doc: Path) -> None:
    known = _code_env_vars()
    text = doc.read_text(encoding="utf-8")
    named = {n.rstrip("_") for n in re.findall(r"BEAZAP_[A-Z0-9_]+", text) if not n.endswith("_")}
    assert named - known == set()


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_documented_repository_file_exists(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    base = doc.parent
    targets = [base / t for t in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text) if "://" not in t]
    spans = re.findall(r"`([\w./-]+\.(?:py|md|sql|yaml|toml))`", text)
    targets += [ROOT / s for s in spans if "/" in s and not s.startswith((".", "/"))]
    missing = sorted({str(t.relative_to(ROOT)) for t in targets if not t.resolve().exists()})
    assert missing == []


def test_every_documented_make_target_exists() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([\w-]+):", makefile, flags=re.M))
    shown = {
        t
        for doc in DOCS
        for line in _code_lines(doc.read_text(encoding="utf-8"))
        for t in re.findall(r"(?:^|\s)make ([a-z][\w-]*)", line)
    }
    assert shown and shown - targets == set()


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_documented_python_import_works(doc: Path) -> None:
    """The ``import`` lines of the docs' Python examples name modules and objects that exist."""
    blocks, _ = _fenced(doc.read_text(encoding="utf-8"))
    imports = [
        line.strip()
        for lang, body in blocks
        if lang == "python"
        for line in body.splitlines()
        if re.match(r"\s*(from \S+ )?import ", line)
    ]
    for statement in imports:
        exec(statement, {})  # the doc's own import line


def test_every_documented_endpoint_exists(tmp_path: Path) -> None:
    """``METHOD /v1/…`` and ``/webhooks/…`` lines in the docs name a route of the app with that method."""
    from api.app import create_app

    app = create_app(Settings(lake_uri=str(tmp_path / "lake"), database_url=f"sqlite:///{tmp_path / 'db'}"))
    routes = {
        (method.upper(), re.sub(r"\{[^}]+\}", "{}", path))
        for path, methods in app.openapi()["paths"].items()
        for method in methods
    }
    documented = {
        (method, re.sub(r"\{[^}]+\}", "{}", path.rstrip(".")))
        for doc in DOCS
        for method, path in re.findall(
            r"\b(GET|POST|PUT|PATCH|DELETE) (/(?:v1|webhooks)/[\w/{}.-]+)", doc.read_text(encoding="utf-8")
        )
    }
    assert len(documented) > 20
    assert documented - routes == set()


def _documented_default(text: str) -> object:
    text = text.strip().strip("`")
    if text.startswith("unset"):
        return None
    if text in ("true", "false"):
        return text == "true"
    try:
        return json.loads(text)
    except ValueError:
        return text


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_documented_setting_defaults_are_the_code_defaults(doc: Path) -> None:
    """Tables of the form | `BEAZAP_X` | default | … show the default of ``core/settings.py``."""
    fields = Settings.model_fields
    rows = re.findall(r"^\| `BEAZAP_(\w+)` \| ([^|]+) \|", doc.read_text(encoding="utf-8"), flags=re.M)
    for name, shown in rows:
        field = fields.get(name.lower())
        if field is None:  # read outside the settings (BEAZAP_SECRET_KEY): checked by the env-var test
            continue
        assert _documented_default(shown) == field.default, f"BEAZAP_{name}"


def test_shell_blocks_run_the_cli_through_uv() -> None:
    """In a clone ``beazap`` is not on PATH; shell blocks say ``uv run beazap`` like the README."""
    bare = [
        f"{doc.name}: {line.strip()}"
        for doc in DOCS
        for lang, body in _fenced(doc.read_text(encoding="utf-8"))[0]
        if lang in ("", "bash", "sh", "shell", "console")
        for line in body.splitlines()
        if re.match(r"\s*beazap\s", line)
    ]
    assert bare == []
