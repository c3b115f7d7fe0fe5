"""Where commands print: summaries and reports on stdout, messages and errors on stderr.

Both consoles look up sys.stdout / sys.stderr when they print, so a test runner that swaps
the streams sees everything. Messages on stderr never wrap: paths stay copy-pasteable.
"""

from rich.console import Console

stdout = Console()
stderr = Console(stderr=True, soft_wrap=True)
