"""graves: an implementation of A. Graves, "Generating Sequences With Recurrent Neural Networks" (2013)."""

__version__ = "0.1.0"
