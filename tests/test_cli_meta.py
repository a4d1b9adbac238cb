"""Meta-tests of the command line as a whole (sqlite-utils' tests/test_docs.py habit).

Every command says what it does, every option says what it means or shows
its default, every argument is named in its command's help, and every
`rop ...` line in the README and docs/ names a command and options that exist.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from rop.cli import UsageProblem, cli

ROOT = Path(__file__).resolve().parent.parent


def _commands(
    group: click.Group, path: tuple[str, ...] = ()
) -> Iterator[tuple[str, click.Command]]:
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, name
        yield " ".join((*path, name)), command
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))


COMMANDS = dict(_commands(cli))


def test_the_command_set_is_the_one_documented():
    # CONTRACT.md §2 plus the commands added since; a lost registration fails here.
    assert set(COMMANDS) == {
        "demo",
        "demo-portal",
        "digests",
        "digests add",
        "digests list",
        "digests remove",
        "digests send-now",
        "drill",
        "emulate",
        "migrate",
        "plans",
        "plans export",
        "plans fact",
        "plans history",
        "plans import",
        "plans set",
        "plans show",
        "portals",
        "report",
        "rights",
        "rights admin",
        "rights allow",
        "rights clear",
        "rights deny",
        "rights show",
        "serve",
        "sync",
        "worker",
    }


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_help(name):
    command = COMMANDS[name]
    assert command.help and command.help.strip(), f"`rop {name}` has no help text"
    assert command.get_short_help_str(), name


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_option_has_help_or_a_shown_default(name):
    missing = [
        param.opts[0]
        for param in COMMANDS[name].params
        if isinstance(param, click.Option)
        and not (param.help and param.help.strip())
        and not (param.show_default and param.default is not None)
    ]
    assert not missing, f"`rop {name}`: options with neither help nor a shown default: {missing}"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_argument_is_named_in_the_help(name):
    command = COMMANDS[name]
    for param in command.params:
        if isinstance(param, click.Argument):
            label = param.human_readable_name.upper()
            assert label in (command.help or ""), f"`rop {name}`: help does not explain {label}"


@pytest.mark.parametrize("name", ["", *sorted(COMMANDS)])
def test_help_renders(name):
    result = CliRunner().invoke(cli, [*name.split(), "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: " in result.output


def _commands_in(code: str) -> Iterator[str]:
    """The `rop ...` commands in one shell line (`a && b`, `X=1 rop ...`, `# comment`)."""
    code = code.split(" #", 1)[0].strip().removeprefix("$ ")
    for part in re.split(r"&&|\|\||;|\|", code):
        words = part.strip().split()
        while words and "=" in words[0] and not words[0].startswith("-"):
            words.pop(0)
        if words and words[0] == "rop":
            yield " ".join(words)


def _documented_lines() -> Iterator[tuple[str, str]]:
    """Every `rop ...` in README.md and docs/*.md: shell blocks and inline code."""
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        fence = None
        for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
            if line.startswith("```"):
                fence = None if fence is not None else line[3:].strip()
                continue
            if fence is None:
                codes = re.findall(r"`(rop [^`]+)`", line)
            elif fence in ("", "sh", "bash", "shell", "console"):
                codes = [line]
            else:
                codes = []
            for code in codes:
                for command in _commands_in(code):
                    yield f"{doc.name}:{number}: {command}", command


DOCUMENTED = dict(_documented_lines())


def test_docs_show_commands():
    assert len(DOCUMENTED) >= 8, "the README's usage section lost its commands?"


@pytest.mark.parametrize("where", sorted(DOCUMENTED))
def test_documented_commands_and_options_exist(where):
    # Synopses write optional parts in brackets and choices with "|".
    text = re.sub(r"[<>\[\]]", " ", DOCUMENTED[where])
    words = shlex.split(text)[1:]
    command: click.Command = cli
    while isinstance(command, click.Group) and words and not words[0].startswith("-"):
        sub = command.get_command(click.Context(command), words[0])
        if sub is None:
            break
        command, words = sub, words[1:]
    assert command is not cli, f"{where}: no such command"
    known = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    known |= {"-h", "--help"}
    unknown = [
        w.split("=", 1)[0] for w in words if w.startswith("-") and w.split("=", 1)[0] not in known
    ]
    assert not unknown, f"{where}: unknown options {unknown}"


def test_usage_problem_exits_2_with_one_line():
    @click.command()
    def broken() -> None:
        """Always refuses."""
        raise UsageProblem("no webhook: pass --webhook URL or set ROP_WEBHOOK")

    result = CliRunner().invoke(broken, [])
    assert result.exit_code == 2
    assert result.output == "Error: no webhook: pass --webhook URL or set ROP_WEBHOOK\n"


def test_bad_setting_is_one_line_naming_it(tmp_path):
    # main() turns a bad ROP_ variable into exit 2 and one line, not a traceback.
    env = {"ROP_PORT": "not-a-port", "PATH": "", "HOME": str(tmp_path)}
    code = "from rop.cli import main; main()"
    args = [sys.executable, "-c", code, "serve", "--db", str(tmp_path / "s.duckdb")]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "ROP_PORT" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_python_dash_m_runs_the_same_cli():
    done = subprocess.run(
        [sys.executable, "-m", "rop.cli", "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    for name in ("demo-portal", "emulate", "sync", "report", "drill", "rights", "serve"):
        assert name in done.stdout


def test_emulate_prints_its_url_only_once_connections_queue(tmp_path, monkeypatch):
    # A script reads the first line and connects at once: by then the socket
    # must listen, or the connection is refused while uvicorn starts.
    import socket

    from rop.demo.generator import generate
    from rop.emulator import server

    generate(tmp_path / "portal", deals=1, months=1)
    seen: dict[str, int] = {}

    def fake_serve_forever(app, sock):
        seen["listening"] = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
        sock.close()

    monkeypatch.setattr(server, "serve_forever", fake_serve_forever)
    args = ["emulate", "--portal", str(tmp_path / "portal"), "--port", "0"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("http://127.0.0.1:")
    assert seen == {"listening": 1}


def test_the_cli_loads_no_heavy_library_until_a_command_runs():
    # `rop --help` and shell completion stay quick: commands import on use.
    code = (
        "import sys, rop.cli; "
        "print(sorted(m for m in ('duckdb', 'pyarrow', 'starlette', 'uvicorn', 'httpx')"
        " if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
