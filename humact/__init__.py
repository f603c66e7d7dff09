"""humact: human-centric video action understanding.

Start at ARCHITECTURE.md for the map from a video to a result.
"""

__version__ = "0.1.0"
