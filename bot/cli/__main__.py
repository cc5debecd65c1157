"""`python -m bot.cli`: the `linli` command."""

import sys

from bot.cli import main

sys.exit(main())
