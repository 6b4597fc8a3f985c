"""Execution: released trades become orders, orders go to brokers, fills come back.

Owns: block orders and their written allocation statements (``blocks``), the internal
crossing of opposite trades at an independent reference price (``crossing``), the
allocation of a block's fills back to its accounts (``allocation``), the limits no run
may pass (``safety``), and the FIX 4.4 session layer with the gateway and the
simulated broker built on it (``fix``).

Planning is pure: plain data in, plain data out, no store, clock or network. The
networked part is a thin shell over the session layer; what it decides and what it
hears is kept by the workflow shell (``poise.workflow.execute``).

May import: ``poise.domain``. May not touch: the store or the bus (the shells hand in
what is read and keep what is decided).
"""
