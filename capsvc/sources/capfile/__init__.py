"""Capture files: pcap and pcapng read with no library.

``_pcapng`` and ``_decode`` are pure (block and record decoding from bytes); ``_source`` opens the
file, reads it in large chunks off the event loop and feeds a Session.
"""

from ._source import CaptureFile, PcapFileSource, read_capture

__all__ = ["CaptureFile", "PcapFileSource", "read_capture"]
