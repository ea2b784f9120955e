"""ATNA Audit Record Repository (IHE ITI TF-1 §9; ITI-20 Record Audit Event, ITI TF-2 §3.20).

Receives audit messages over syslog (``syslog-udp://``, RFC 5426; ``syslog-tls://``, RFC 5425),
keeps them in ``audit_events`` beside the engine's own records (``atna-repository:``), and sends
the engine's own records to an external repository (``atna.forward_to``). See ``plugin.py``.
"""
