"""workerpool-tui: a terminal-native task runner."""

__version__ = "0.1.0"
