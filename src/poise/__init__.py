"""poise: self-hosted, tax-aware, auditable portfolio rebalancing.

Stages live in their own packages (see ``docs/`` and DESIGN): ``domain`` holds the
value types every stage shares; ``ingest`` turns files into rows; ``store`` is the
system of record; ``workflow`` and ``cli`` are the shells that tie them together.
"""

__version__ = "0.1.0"
