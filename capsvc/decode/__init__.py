"""Reading a frame's layers: link headers, IP and transports, DNS, payload annotations, flows.

Pure package (no IO). Everything that looks inside a frame after capture lives here and is shared
by the text formats, the stats sink and the flow and conversation sinks; the filter never decodes
(it compiles to loads at fixed offsets). ``_const`` is the one home of protocol numbers:
ethertypes, VLAN TPIDs, IP protocol numbers and the kernel's ancillary-data offsets.
"""
