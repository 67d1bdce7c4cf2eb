"""Paper Assistant: cited answers from a corpus of paper abstracts."""

__version__ = "0.1.0"
