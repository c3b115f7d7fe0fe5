"""biomedica: PMC Open Access → a streaming biomedical image-caption archive.

The core (parse, archive, select) imports without torch; training and evaluation pull
torch / open_clip in only where they are used.
"""

__version__ = "0.1.0"
