"""Reading a frame's layers: link headers, IP and transports, DNS, payload annotations, flows.

Pure package (no IO). Everything that looks inside a frame after capture lives here and is shared
by the text formats, the stats sink and the flow and conversation sinks; the filter never decodes
(it compiles to loads at fixed offsets). ``_const`` is the one home of protocol numbers:
ethertypes, VLAN TPIDs, IP protocol numbers and the kernel's ancillary-data offsets.

For applications (imported on first use, so ``import capsvc.decode._const`` stays cheap):

- ``addresses(frame, linktype)``: the IP addresses, protocol and ports of a frame as an
  ``Endpoints``, read in place (what ``Packet.addresses`` returns);
- ``layers(frame, linktype)``: dpkt's objects for the frame's layers (``Packet.decode``).
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from ._addresses import NO_PORT, Endpoints, addresses
    from ._dpkt import DPKT_LINKTYPES, layers

__all__ = ["DPKT_LINKTYPES", "NO_PORT", "Endpoints", "addresses", "layers"]
__getattr__, __dir__ = lazy_exports(
    __name__,
    globals(),
    {
        "NO_PORT": "._addresses",
        "Endpoints": "._addresses",
        "addresses": "._addresses",
        "DPKT_LINKTYPES": "._dpkt",
        "layers": "._dpkt",
    },
)
