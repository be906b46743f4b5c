"""Our BPF programs running in the Linux kernel: a packet socket on a veth pair keeps exactly the
frames our Python matcher accepts. Needs root (CAP_NET_ADMIN for the test network, CAP_NET_RAW
for the packet socket); skipped otherwise."""

from __future__ import annotations

import ctypes
import socket
import struct
import time
from collections.abc import Iterator

import pytest
from _netns import VethPair, veth_pair
from _packets import frames

from capsvc._packet import LinkType
from capsvc.filter import compile_bpf, parse_filter

pytestmark = pytest.mark.netns

SO_ATTACH_FILTER = 26
ETH_P_ALL = 0x0003
EXPRESSIONS = [
    "tcp port 443",
    "host 10.0.0.1 and (port 80 or port 443) and not port 22",
    "udp or icmp6",
    "not ip",
    "arp or rarp",
    "net 10.0.0.0/24 and not tcp",
    "ip6 and src net 2001:db8::/32",
    "portrange 10-20",
    "tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn",
    "icmp[icmptype] == icmp-echo or icmp6[icmp6type] == icmp6-echo",
    "ip[6:2] & 0x1fff != 0",
    "ether src 02:00:00:00:00:0a and greater 80",
    "ip[0] & 0xf > 5",
    "udp[ip[0] & 3] > 0",
    "ether proto 0x88cc or ether[12:2] <= 1500",
    "geneve and ip and tcp port 80",
    "vxlan 12345 and ip and tcp port 80",
    "vxlan and ip6 and ether dst ff:ff:ff:ff:ff:ff",
]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


@pytest.fixture
def pair() -> Iterator[VethPair]:
    with veth_pair() as p:
        yield p


def _socket(
    iface: str, expr: str, *, kernel_vlan: bool = False
) -> tuple[socket.socket, ctypes.Array[ctypes.c_char]]:
    program = compile_bpf(expr, LinkType.ETHERNET, kernel_vlan=kernel_vlan)
    raw = b"".join(struct.pack("=HBBI", *ins) for ins in program)
    buf = ctypes.create_string_buffer(raw, len(raw))
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)  # receives nothing until bound
    sock.setsockopt(
        socket.SOL_SOCKET, SO_ATTACH_FILTER, bytes(_SockFprog(len(program), ctypes.addressof(buf)))
    )
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind((iface, ETH_P_ALL))
    sock.setblocking(False)
    return sock, buf


def test_kernel_keeps_what_the_matcher_keeps(pair: VethPair) -> None:
    generated, cut = frames(LinkType.ETHERNET, 300, seed=4)
    # Complete, untagged frames (veth moves VLAN tags out of the data), each once.
    sent = list(
        dict.fromkeys(
            f
            for i, f in enumerate(generated)
            if i not in cut and len(f) >= 14 and f[12:14] not in (b"\x81\x00", b"\x88\xa8")
        )
    )
    sockets = [_socket(pair.host, expr) for expr in EXPRESSIONS]
    try:
        pair.send_from_peer(sent)
        time.sleep(0.3)
        for expr, (sock, _) in zip(EXPRESSIONS, sockets, strict=True):
            got = set()
            while True:
                try:
                    got.add(sock.recv(65536))
                except BlockingIOError:
                    break
            matcher = parse_filter(expr, LinkType.ETHERNET)
            assert matcher is not None
            wanted = {f for f in sent if matcher.match(f)}
            assert wanted, f"no frame matches {expr!r}: the test proves nothing"
            assert got & set(sent) == wanted, expr
    finally:
        for sock, _ in sockets:
            sock.close()


@pytest.mark.parametrize(
    "expr",
    ["vlan", "vlan 100 and udp port 53", "not vlan", "vlan 1 and vlan 2 and ip6", "vlan or tcp"],
)
def test_kernel_accepts_ancillary_vlan_loads(pair: VethPair, expr: str) -> None:
    program = compile_bpf(expr, LinkType.ETHERNET, kernel_vlan=True)
    assert any(ins.k >= 0xFFFFF000 for ins in program)
    sock, _ = _socket(pair.host, expr, kernel_vlan=True)  # SO_ATTACH_FILTER raises if refused
    sock.close()
