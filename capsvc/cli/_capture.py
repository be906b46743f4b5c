"""``capsvc capture``: live capture from an interface, like tcpdump.

Text goes to standard output unless ``-w`` is given; ``-G``/``-C``/``-W`` rotate the ``-w`` file
as tcpdump does. Ctrl-C or SIGTERM stops cleanly: the queue drains, files are flushed, and a
summary line goes to standard error:
``N packets captured, N received by filter, N dropped by kernel, N dropped by queue``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from typing import Any

from .._errors import OptionError
from .._packet import SNAPLEN_DEFAULT, LinkType, Stats
from .._run import JobEnd, run_async, run_job
from .._session import Session
from ..sinks._base import Sink
from ..sources._base import Source
from ..sources._open import BACKENDS, link_types, open_live_source
from ._common import (
    EXIT_OK,
    EXIT_RUNTIME,
    UsageError,
    add_output_args,
    counted,
    end_job,
    filter_expression,
    non_negative,
    output_sinks,
    print_error,
)
from ._flags import (
    add_tcpdump_args,
    check_tcpdump_args,
    device_lines,
    drop_privileges,
    link_type_lines,
    program_text,
)
from ._postrotate import with_postrotate
from ._ring import Ring, add_ring_args, check_ring_args
from ._textopts import add_text_args
from ._zstats import Statistics, ZOptions, add_z_args, parse_z

__all__ = ["add_parser", "summary_line"]


def add_parser(subparsers: Any) -> None:
    """Register ``capsvc capture``."""
    parser = subparsers.add_parser(
        "capture",
        help="capture live packets from an interface (like tcpdump -i)",
        description="Capture packets from a live interface. Without -w, print one line per "
        "packet. Ctrl-C stops and prints a summary on standard error.",
    )
    parser.add_argument(
        "-i",
        dest="interface",
        metavar="IFACE",
        help="the interface to capture on ('any' for every interface, or a number of the -D "
        "list); required unless -D",
    )
    add_output_args(parser)
    add_tcpdump_args(parser)
    parser.add_argument(
        "-B",
        dest="buffer_kib",
        type=non_negative,
        default=0,
        metavar="KiB",
        help="capture buffer in KiB, as tcpdump -B: afpacket's TPACKET_V3 ring (in 4 or more "
        "blocks of up to 4 MiB; default 32 MiB in 4 MiB blocks), libpcap's "
        "pcap_set_buffer_size (default 32 MiB); not for pfring",
    )
    parser.add_argument(
        "-y",
        dest="linktype",
        metavar="LINKTYPE",
        help="capture as this link type (a name -L lists: EN10MB, LINUX_SLL2, ...)",
    )
    parser.add_argument(
        "-L",
        dest="list_linktypes",
        action="store_true",
        help="list the link types the interface can be captured as (tcpdump's layout) and exit",
    )
    parser.add_argument(
        "-D",
        dest="list_interfaces",
        action="store_true",
        help="list the interfaces to capture on, numbered, in tcpdump's layout, and exit "
        "(with --backend libpcap: libpcap's own list)",
    )
    add_text_args(parser)
    parser.add_argument(
        "-p",
        dest="no_promisc",
        action="store_true",
        help="do not put the interface in promiscuous mode",
    )
    parser.add_argument(
        "-Q",
        dest="direction",
        choices=["in", "out", "inout"],
        default="inout",
        help="capture only this direction (default: inout)",
    )
    parser.add_argument(
        "--duration", type=_positive_float, metavar="S", help="stop after S seconds"
    )
    parser.add_argument(
        "-G",
        dest="rotate_seconds",
        type=non_negative,
        default=0,
        metavar="SECONDS",
        help="start a new -w file every SECONDS (the name is a strftime format)",
    )
    parser.add_argument(
        "-C",
        dest="rotate_mb",
        type=_positive_float,
        default=0,
        metavar="MB",
        help="start a new -w file when one exceeds MB million bytes",
    )
    parser.add_argument(
        "-W",
        dest="max_files",
        type=non_negative,
        default=0,
        metavar="FILES",
        help="with -C: keep a ring of FILES files; with -G: stop after FILES",
    )
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default="afpacket",
        help="capture backend (default: afpacket, needs only the kernel)",
    )
    parser.add_argument(
        "--cluster",
        metavar="ID[:TYPE]",
        help="share the interface's load: afpacket fanout group (TYPE hash, lb, "
        "cpu, rollover, random, qm, '+defrag'/'+rollover' flags; default hash) "
        "or PF_RING cluster (TYPE a cluster_type name; default per_flow)",
    )
    parser.add_argument(
        "--sampling",
        type=non_negative,
        default=1,
        metavar="N",
        help="PF_RING only: keep one packet in N",
    )
    add_z_args(parser, postrotate=True)
    add_ring_args(parser)
    parser.set_defaults(run=run)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return value


def summary_line(stats: Stats, *, kernel_stats: bool = True) -> str:
    """The closing line, with tcpdump's meanings.

    captured: packets written to the outputs; received by filter: packets the source got
    (after the kernel filter); dropped by kernel: packets the kernel had no room for; dropped by
    queue: packets the session's queue had no room for. With ``kernel_stats`` False (a source
    whose library keeps no counters, such as PF_RING's ``pcap:`` module) the two kernel counts
    read "kernel statistics not available" instead of zeros.
    """
    kernel = (
        f"{stats.received} received by filter, {stats.kernel_dropped} dropped by kernel"
        if kernel_stats
        else "kernel statistics not available"
    )
    captured = counted(stats.written, "packet")
    return f"{captured} captured, {kernel}, {stats.dropped} dropped by queue"


def _backend_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if args.sampling not in (0, 1) and args.backend != "pfring":
        raise UsageError("--sampling needs --backend pfring")
    if args.backend == "afpacket":
        options["userspace_fallback"] = True
        if args.cluster:
            ident, _, kind = args.cluster.partition(":")
            if not ident.isdigit():
                raise UsageError(f"--cluster wants ID[:TYPE] with a numeric ID: {args.cluster}")
            options["fanout"] = (int(ident), kind or "hash")
    elif args.backend == "pfring":
        if args.cluster:
            options["cluster"] = args.cluster
        options["sampling_rate"] = args.sampling or 1
    elif args.cluster:
        raise UsageError("--cluster needs --backend afpacket or pfring")
    return options


def _check_args(args: argparse.Namespace) -> None:
    check_tcpdump_args(args)
    if not args.interface:
        raise UsageError("-i IFACE is required (-D lists the interfaces)")
    rotating = args.rotate_seconds or args.rotate_mb or args.max_files
    if rotating and not args.write:
        raise UsageError("-G, -C and -W need -w FILE")
    if rotating and args.write == "-":
        raise UsageError("-G, -C and -W cannot rotate standard output")
    if args.max_files and not (args.rotate_seconds or args.rotate_mb):
        raise UsageError("-W needs -G or -C")
    check_ring_args(args)


def _linktype(args: argparse.Namespace) -> LinkType | None:
    if not args.linktype:
        return None
    try:
        return LinkType.parse(args.linktype)
    except ValueError as exc:
        raise UsageError(f"-y: {exc}") from None


def _open_source(args: argparse.Namespace, expression: str) -> Source:
    options = _backend_options(args)
    try:
        return open_live_source(
            args.backend,
            args.interface,
            snaplen=args.snaplen,
            promisc=not args.no_promisc,
            filter=expression or None,
            direction=args.direction,
            buffer_size=args.buffer_kib * 1024,
            linktype=_linktype(args),
            **options,
        )
    except OptionError as exc:  # a malformed argument; a filter error keeps its caret
        raise UsageError(str(exc)) from exc


def _devices(backend: str) -> list[tuple[str, str, int]]:
    """What -D lists: libpcap's devices for its backend, else the kernel's interfaces."""
    if backend == "libpcap":
        from ..sources.libpcap import find_all_devs

        return [(d.name, d.description, d.flags) for d in find_all_devs()]
    from ..sources._ifaces import pcap_devices

    return pcap_devices()


def _resolve_interface(args: argparse.Namespace) -> None:
    """``-i N``: the N-th interface of -D's list, as tcpdump takes it, unless one is so named."""
    name = args.interface
    if not name or not name.isdigit() or os.path.exists(f"/sys/class/net/{name}"):
        return
    devices = _devices(args.backend)
    number = int(name)
    if not 1 <= number <= len(devices):
        raise UsageError(f"-i {name}: there is no interface {name} (-D lists {len(devices)})")
    args.interface = devices[number - 1][0]


def _list_link_types(args: argparse.Namespace) -> int:
    try:
        kinds = link_types(args.backend, args.interface)
    except OptionError as exc:
        raise UsageError(str(exc)) from exc
    print("\n".join(link_type_lines(args.interface, kinds)), file=sys.stderr)
    return EXIT_OK


def _print_program(args: argparse.Namespace, expression: str) -> int:
    kind = _linktype(args) or link_types(args.backend, args.interface)[0]
    if args.backend == "libpcap" and args.linktype is None:
        from ..sources.libpcap import open_live

        with open_live(args.interface, args.snaplen, False, 0.1) as handle:
            kind = LinkType.RAW if handle.link_type in (12, 14) else LinkType(handle.link_type)
    print(
        program_text(
            expression,
            kind,
            args.snaplen or SNAPLEN_DEFAULT,
            args.dump_program,
            backend=args.backend,
            live=True,
            interface=args.interface,
        )
    )
    return EXIT_OK


async def _capture(
    args: argparse.Namespace, z: ZOptions, ring: Ring | None
) -> tuple[JobEnd, Session, bool, Statistics, bool]:
    expression = filter_expression(args)
    if ring is not None:
        ring.install()
    source = _open_source(args, expression)
    loop = asyncio.get_running_loop()
    finished = asyncio.Event()
    sinks: list[Sink] = []
    try:
        drop_privileges(args)  # -Z: the source is open, the outputs are not yet
        if ring is not None:
            sinks = ring.open(source.linktype, args.snaplen or source.snaplen)
        else:
            sinks = output_sinks(
                args,
                source.linktype,
                args.snaplen or source.snaplen,
                on_finished=lambda: _call_soon(loop, finished.set),
            )
            sinks = with_postrotate(sinks, z.postrotate)
        statistics = Statistics(z.tables, source.linktype)
        sinks += statistics.sinks
        session = Session(
            source=source,
            sinks=sinks,
            matcher=getattr(source, "userspace_filter", None),
            snaplen=args.snaplen,
            limit=args.count,
        )
    except BaseException:
        await source.aclose()
        for sink in sinks:
            sink.close()
        raise

    async def stop_when_finished() -> None:
        await finished.wait()
        await session.stop()

    watcher = asyncio.ensure_future(stop_when_finished())
    try:
        end = await run_job(session, duration=args.duration)
    finally:
        watcher.cancel()
        if ring is not None:
            await ring.finish()
    # A source may say its library keeps no counters (PfRingSource on the pcap: module).
    return end, session, getattr(source, "kernel_stats", True), statistics, finished.is_set()


def _call_soon(loop: asyncio.AbstractEventLoop, func: Any) -> None:
    with contextlib.suppress(RuntimeError):  # the loop is gone: the capture is over anyway
        loop.call_soon_threadsafe(func)


def run(args: argparse.Namespace) -> int:
    """Run ``capsvc capture``; returns the exit status."""
    if args.list_interfaces:
        print("\n".join(device_lines(_devices(args.backend))))
        return EXIT_OK
    _resolve_interface(args)
    _check_args(args)
    if args.list_linktypes:
        return _list_link_types(args)
    if args.dump_program:
        return _print_program(args, filter_expression(args))
    rotating = bool(args.rotate_seconds or args.rotate_mb)
    z = parse_z(args.z, postrotate=True, rotating=rotating)
    ring = Ring(args) if args.ring is not None else None
    end, session, kernel_stats, statistics, last_file_done = run_async(
        lambda: _capture(args, z, ring)
    )
    if ring is not None:
        ring.close()
    error = session.source_error

    def summary() -> None:
        if not session.abandoned:
            statistics.print(args.write)
            with contextlib.suppress(OSError, ValueError):
                sys.stdout.flush()
        if ring is not None:
            print(f"capsvc: {ring.summary()}", file=sys.stderr)
        if last_file_done:  # tcpdump's words when -W ends a -G capture
            print(f"Maximum file limit reached: {args.max_files}", file=sys.stderr)
        print(summary_line(end.stats, kernel_stats=kernel_stats), file=sys.stderr)
        if error is not None:
            print_error(f"capture failed: {str(error) or type(error).__name__}")

    lost = ring is not None and ring.failed > 0  # a dump asked for was not written
    status = EXIT_RUNTIME if error is not None or lost else EXIT_OK
    return end_job(end, session, summary, status, signal_ends_normally=True)
