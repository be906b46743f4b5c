"""``capsvc serve``: run the capture service with its HTTP API (see capsvc.service)."""

from __future__ import annotations

import argparse
from typing import Any

from .._run import run_async
from ._common import EXIT_RUNTIME, EXIT_USAGE, print_error

__all__ = ["add_parser", "run"]

DEFAULT_CONFIG = "config/capsvc.toml"


def add_parser(subparsers: Any) -> None:
    """Register the ``serve`` sub-command."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "serve",
        help="run the capture service (sessions from a config, HTTP API, metrics)",
        description="Run the capture service until SIGTERM/SIGINT; SIGHUP reloads the config.",
    )
    parser.add_argument(
        "--config",
        default=DEFAULT_CONFIG,
        metavar="FILE",
        help=f"the TOML configuration (default: {DEFAULT_CONFIG})",
    )
    parser.add_argument(
        "--user",
        metavar="USER",
        help="drop root to USER once the capture sockets are open (as tcpdump -Z)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Load the config, then serve; a bad config exits 2 naming the file, key and problem."""
    from ..service import ConfigError, load_config

    try:
        from ..service._server import serve
    except ImportError as exc:  # aiohttp or prometheus-client missing
        print_error(f"serve needs the service extra ({exc}): pip install 'capsvc[service]'")
        return EXIT_RUNTIME

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print_error(str(exc))
        return EXIT_USAGE
    return run_async(lambda: serve(args.config, user=args.user, config=config))
