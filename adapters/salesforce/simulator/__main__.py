"""`python -m crm_qualify.adapters.salesforce.simulator`: the same as `crm-qualify simulate
salesforce`."""

import sys

from .cli import main

sys.exit(main())
