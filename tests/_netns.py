"""Private test networks: a network namespace holding one end of a veth pair.

The other end (``host``) stays in the test process's namespace, up, in promiscuous-capable state,
with no IP address, so nothing is routed anywhere: traffic exists only between the two ends.
The peer end (``peer``, inside the namespace) gets a 10.x address that exists in that namespace
only. Names are unique per pair and everything is removed on exit, even when the test fails.

Frames are sent with packet sockets: ``send_from_peer`` runs a short Python program inside the
namespace, ``send_from_host`` uses a socket in this process.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pytest

#: Interface and namespace names of the test networks start with this (three characters; set
#: CAPSVC_TEST_NETNS_PREFIX to run two suites at once without removing each other's networks).
PREFIX = os.environ.get("CAPSVC_TEST_NETNS_PREFIX", "cst")


def need_root() -> None:
    """Skip the calling test unless it runs as root with ip(8) available."""
    if os.geteuid() != 0:
        pytest.skip("needs root (CAP_NET_ADMIN, CAP_NET_RAW) to build test networks")
    if not _which("ip"):
        pytest.skip("needs iproute2 (ip)")


def _which(cmd: str) -> bool:
    return any(os.access(os.path.join(d, cmd), os.X_OK) for d in os.environ["PATH"].split(":"))


def ip(
    *args: str, netns: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run ``ip ARGS`` (inside ``netns`` when given)."""
    cmd = ["ip", *(["-n", netns] if netns else []), *args]
    return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=30)


@dataclass
class VethPair:
    """A veth pair: ``host`` here, ``peer`` inside namespace ``ns``."""

    ns: str
    host: str
    peer: str
    peer_ip: str
    peer_mac: str
    host_mac: str

    @property
    def host_index(self) -> int:
        """Interface index of the host end."""
        return socket.if_nametoindex(self.host)

    def exec(
        self, *cmd: str, timeout: float = 60, check: bool = True, input: bytes | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        """Run a command inside the namespace."""
        return subprocess.run(
            ["ip", "netns", "exec", self.ns, *cmd],
            check=check,
            capture_output=True,
            timeout=timeout,
            input=input,
        )

    def popen(self, *cmd: str, **kwargs: object) -> subprocess.Popen[bytes]:
        """Start a command inside the namespace."""
        proc: subprocess.Popen[bytes] = subprocess.Popen(  # type: ignore[call-overload]
            ["ip", "netns", "exec", self.ns, *cmd], **kwargs
        )
        return proc

    def send_from_peer(self, frames: Sequence[bytes], *, gap: float = 0.0) -> None:
        """Send Ethernet frames out of the peer end (they arrive inbound on ``host``)."""
        program = (
            "import socket,sys,struct,time\n"
            "s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)\n"
            f"s.bind(({self.peer!r},0))\n"
            "data=sys.stdin.buffer.read()\n"
            "i=0\n"
            "while i<len(data):\n"
            " n=struct.unpack_from('!I',data,i)[0]; s.send(data[i+4:i+4+n]); i+=4+n\n"
            f" time.sleep({gap!r}) if {gap!r} else None\n"
        )
        payload = b"".join(len(f).to_bytes(4, "big") + f for f in frames)
        self.exec(sys.executable, "-c", program, input=payload)

    def send_from_host(self, frames: Sequence[bytes]) -> None:
        """Send Ethernet frames out of the host end (outbound on ``host``)."""
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as s:
            s.bind((self.host, 0))
            for frame in frames:
                s.send(frame)


def _mac_of(name: str, netns: str | None = None) -> str:
    out = ip("-o", "link", "show", name, netns=netns).stdout
    return out.split("link/ether", 1)[1].split()[0]


@contextlib.contextmanager
def veth_pair(*, peer_ip: str = "10.200.0.2/24", mtu: int = 1500) -> Iterator[VethPair]:
    """Build a namespace and a veth pair, yield it, and always remove both.

    Args:
        peer_ip: the address given to the peer end inside the namespace.
        mtu: MTU of both ends.
    """
    need_root()
    tag = f"{os.getpid():06x}{secrets.token_hex(2)}"  # the owner's pid: see remove_leftovers
    ns, host, peer = f"{PREFIX}-{tag}", f"{PREFIX}{tag}h", f"{PREFIX}{tag}p"
    try:
        ip("netns", "add", ns)
        ip(
            "link",
            "add",
            host,
            "mtu",
            str(mtu),
            "type",
            "veth",
            "peer",
            "name",
            peer,
            "mtu",
            str(mtu),
        )
        ip("link", "set", peer, "netns", ns)
        # No IPv6 on the host end: no router solicitations or DAD noise in the captures.
        with (
            contextlib.suppress(OSError),
            open(f"/proc/sys/net/ipv6/conf/{host}/disable_ipv6", "w") as f,
        ):
            f.write("1")
        ip("link", "set", host, "up")
        ip("link", "set", "lo", "up", netns=ns)
        ip(
            "netns",
            "exec",
            ns,
            "sysctl",
            "-qw",
            f"net.ipv6.conf.{peer}.disable_ipv6=1",
            check=False,
        )
        ip("addr", "add", peer_ip, "dev", peer, netns=ns)
        ip("link", "set", peer, "up", netns=ns)
        _wait_up(host)
        yield VethPair(ns, host, peer, peer_ip.split("/")[0], _mac_of(peer, ns), _mac_of(host))
    finally:
        ip("link", "del", host, check=False)
        ip("netns", "del", ns, check=False)


def _wait_up(name: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(f"/sys/class/net/{name}/operstate") as f:
            if f.read().strip() == "up":
                return
        time.sleep(0.02)


def remove_leftovers() -> None:
    """Remove test namespaces and interfaces left behind by test runs that are gone.

    Names carry the creating process's id, so a test run running beside this one keeps its own.
    """
    if os.geteuid() != 0 or not _which("ip"):
        return
    for line in ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith(f"{PREFIX}-") and _orphaned(name[len(PREFIX) + 1 :]):
            ip("netns", "del", name, check=False)
    for name in os.listdir("/sys/class/net"):
        if name.startswith(PREFIX) and _orphaned(name[len(PREFIX) :]):
            ip("link", "del", name, check=False)


def _orphaned(tag: str) -> bool:
    """True when the process that made ``tag`` (its first six hex digits) no longer runs."""
    try:
        pid = int(tag[:6], 16)
    except ValueError:
        return False
    return pid != os.getpid() and not os.path.exists(f"/proc/{pid}")
