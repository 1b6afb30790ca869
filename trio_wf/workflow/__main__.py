"""``python -m trio_wf.workflow``: the ``trio-wf`` command, as ``python -m trio_wf``."""

import sys

from ._cli import main

sys.exit(main())
