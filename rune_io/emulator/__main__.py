"""``python -m rune_io.emulator``: serve the emulator until interrupted."""

import sys

from .cli import main

sys.exit(main())
