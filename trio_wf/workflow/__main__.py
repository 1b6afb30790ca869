"""``python -m trio_wf.workflow run GRAPH``: the ``trio-wf`` command."""

import sys

from ._cli import main

sys.exit(main())
