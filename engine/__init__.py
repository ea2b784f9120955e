"""hie engine: the generic channel runtime (knows nothing of IHE).

Layers import one way: ``profiles`` -> ``ihe`` -> ``engine``.
"""

__version__ = "0.1.0"
