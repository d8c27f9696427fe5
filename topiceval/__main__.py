"""``python -m topiceval`` runs the command line."""

import sys

from topiceval.cli import main

sys.exit(main())
