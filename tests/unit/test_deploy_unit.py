"""``deploy/jobplane.service``: its ExecStart is a valid ``jobplane serve`` of the installed
command, and agrees with the unit's state directory and the bind rule."""

from __future__ import annotations

import configparser
import os
import shlex
import tomllib
from pathlib import Path

import pytest
import typer

from jobplane.cli import app
from jobplane.daemon import resolve
from jobplane.http import check_bind
from jobplane.stores.sqlite import database_path

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "jobplane.service"


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string(UNIT.read_text())
    return parser


def serve_options(argv: list[str]) -> dict[str, object]:
    """Parse ``argv`` (``serve ...``) as the ``jobplane`` command does, without running it."""
    group = typer.main.get_command(app)
    assert argv[0] == "serve"
    with group.make_context("jobplane", list(argv)) as parent:
        command = group.get_command(parent, "serve")  # type: ignore[attr-defined]
        with command.make_context("serve", list(argv[1:]), parent=parent) as context:
            return dict(context.params)


def test_exec_start_is_a_valid_serve_invocation_of_the_installed_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for variable in [v for v in os.environ if v.startswith("JOBPLANE_")]:
        monkeypatch.delenv(variable)  # the unit's options alone
    service = unit()["Service"]
    argv = shlex.split(service["ExecStart"])
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert Path(argv[0]).is_absolute(), "systemd needs an absolute path"
    assert Path(argv[0]).name in scripts and scripts[Path(argv[0]).name] == "jobplane.cli:main"
    assert argv[1] == "serve"
    given = serve_options(argv[1:])  # unknown options and bad values fail here
    config = given.pop("config")
    settings = resolve(given, config)  # type: ignore[arg-type]
    if settings.tokens is None:
        check_bind(settings.host, None)  # no tokens file: it must listen on loopback only
    state = Path("/var/lib") / service["StateDirectory"]
    assert Path(database_path(settings.db)).parent == state, "the database is in StateDirectory"
    assert settings.log_format == "json"
    assert service["KillSignal"] == "SIGTERM" and int(service["TimeoutStopSec"]) >= 60
    assert Path(service["WorkingDirectory"]).is_absolute()


def test_a_wrong_option_in_exec_start_would_be_caught() -> None:
    with pytest.raises(Exception, match="No such option: --wokers"):
        serve_options(["serve", "--wokers", "8"])
