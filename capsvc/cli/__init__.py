"""The ``capsvc`` command: one sub-command per job.

Each job lives in a module ``capsvc.cli._<job>`` with ``add_parser(subparsers)``, which registers
its sub-command and sets ``run`` (a function of the parsed arguments returning the exit status).
A job whose backend cannot be imported is still listed; it fails with a clear message when run.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
from collections.abc import Sequence

from .._errors import CapsvcError, ConfigError, FilterError, OptionError
from ._common import (
    EXIT_OK,
    EXIT_RUNTIME,
    EXIT_USAGE,
    UsageError,
    print_error,
    silence_stdout,
    whole_writes,
)

__all__ = ["main"]

#: Sub-command modules in the order ``capsvc --help`` lists them.
JOBS = ("read", "capture", "filter", "interfaces", "serve")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        """Usage errors: one line, exit status 2 (as argparse does, with our prefix)."""
        self.print_usage(sys.stderr)
        print_error(message)
        raise SystemExit(EXIT_USAGE)


def build_parser(jobs: Sequence[str] = JOBS) -> argparse.ArgumentParser:
    """The argument parser with the sub-commands of ``jobs`` (all of them by default)."""
    parser = _Parser(prog="capsvc", description="asyncio packet capture: read, capture, serve")
    parser.add_argument("--version", action="version", version=_version())
    parser.add_argument(
        "--log-level",
        default="warning",
        choices=["debug", "info", "warning", "error"],
        help="logging level on standard error (default: warning)",
    )
    sub = parser.add_subparsers(dest="job", metavar="JOB", parser_class=_Parser)
    for job in jobs:
        try:
            module = importlib.import_module(f"capsvc.cli._{job}")
        except ImportError as exc:
            unavailable = sub.add_parser(job, help=f"(unavailable: {exc})")
            unavailable.set_defaults(run=_unavailable(job, str(exc)))
            continue
        module.add_parser(sub)
    for job_parser in sub.choices.values():  # what an unknown option is refused with
        job_parser.set_defaults(job_parser=job_parser)
    return parser


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace:
    """Parse ``argv``; an option no job knows is refused with that job's usage (exit 2)."""
    args, extras = parser.parse_known_args(argv)
    if extras:
        where: argparse.ArgumentParser = getattr(args, "job_parser", parser)
        where.error(f"unrecognized arguments: {' '.join(extras)}")
    return args


def _unavailable(job: str, reason: str) -> object:
    def run(_args: argparse.Namespace) -> int:
        print_error(f"{job} is not available: {reason}")
        return EXIT_RUNTIME

    return run


def _version() -> str:
    from .. import __version__

    return f"capsvc {__version__}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``capsvc`` command line; returns the exit status (0 ok, 1 runtime, 2 usage)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    sys.stdout = whole_writes(sys.stdout)
    sys.stderr = whole_writes(sys.stderr)
    # Import only the job being run (a job's module may pull in aiohttp or ctypes bindings);
    # without a job, build them all for the help text.
    job = next((word for word in argv if word in JOBS), None)
    parser = build_parser((job,) if job is not None else JOBS)
    args = _parse(parser, argv)
    logging.basicConfig(level=args.log_level.upper(), format="capsvc: %(message)s")
    run = getattr(args, "run", None)
    if run is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        status: int = run(args)
    except UsageError as exc:
        print_error(str(exc))
        return EXIT_USAGE
    except (FilterError, OptionError, ConfigError) as exc:  # a filter's message has its caret
        print_error(str(exc))
        return EXIT_USAGE
    except RecursionError:  # a filter parser without a depth limit of its own
        print_error("the filter expression is nested too deeply")
        return EXIT_USAGE
    except BrokenPipeError:  # standard output's reader went away: end quietly, as tcpdump
        silence_stdout()
        return EXIT_OK
    except MemoryError:
        print_error("out of memory")
        return EXIT_RUNTIME
    except (CapsvcError, OSError) as exc:
        print_error(str(exc) or type(exc).__name__)
        return EXIT_RUNTIME
    except KeyboardInterrupt:  # Ctrl-C before the job's own handlers were in place
        return 128 + signal.SIGINT
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        silence_stdout()
    except (OSError, ValueError):
        pass
    return status


if __name__ == "__main__":
    raise SystemExit(main())
