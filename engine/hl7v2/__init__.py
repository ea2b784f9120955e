"""HL7 v2 helpers shared by every connector and step: charsets, header peek, ACKs, field paths.

HL7 v2 is not IHE-specific, so it lives in the engine; IHE transaction rules live in ``ihe/``.
"""
