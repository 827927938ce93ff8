"""graves: an implementation of A. Graves, "Generating Sequences With Recurrent Neural Networks" (2013).

The main entry point from Python is :func:`graves.write` (``graves write`` on the command line)::

    import graves
    hw = graves.write("Hello world", style=1)
    hw.save("hello.svg", colour="navy")
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["Handwriting", "write", "__version__"]


def __getattr__(name: str) -> Any:
    # Lazy, so that `import graves` (and `graves --help`) does not import torch.
    if name in ("write", "Handwriting"):
        from graves import sample

        return getattr(sample, name)
    raise AttributeError(f"module 'graves' has no attribute {name!r}")
