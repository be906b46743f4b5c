"""Text renderings of frames: capsvc's default line (after the Go design's TextWriter), tcpdump's
lines (``_tcpdump``) and JSON objects (``_json``); ``_select`` makes the one a sink asks for.

Pure package (no IO). A formatter turns one frame into its text and never raises; it reads the
frame's layers through ``capsvc.decode``. The TextWriter sink (``capsvc.sinks``) writes its lines.
"""
