"""``python -m rune_emulator``: serve the emulator until interrupted."""

import sys

from .cli import main

sys.exit(main())
