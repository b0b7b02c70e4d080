"""``python -m graphnet``: the same as the ``graphnet`` program."""
import sys

from graphnet.cli.main import main

sys.exit(main())
