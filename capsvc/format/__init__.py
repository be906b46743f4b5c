"""Text renderings of frames: capsvc's default line (after the Go design's TextWriter).

Pure package (no IO). A formatter turns one frame into one line and never raises; it reads the
frame's layers through ``capsvc.decode``. The TextWriter sink (``capsvc.sinks``) writes its lines.
"""
