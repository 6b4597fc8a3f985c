"""The rebalancing engine: given an account, its lots, prices and model, the trades.

Owns: the problem of one account (``problem``), trades and proposals (``trades``), the
grid every quantity is rounded to (``grid``: the one boundary where the solver's floats
become Decimal quantities), the check every proposal must pass after rounding
(``check``), selling every method shares (``selling``: which lots a sale relieves,
how a shortfall of cash is raised), the methods that make trades: ``bands`` (only
what is outside its band), ``cash`` and ``tax_aware`` (the ``optimize`` method, its
arithmetic in ``program``, which side wins where a loss sale meets a buy of the same
identity in ``meetings``, whole shares in small accounts in ``whole``); the risk model
(``risk``) and the price history it is estimated from (``history``); and
``scenarios``, the methods under names, compared side by side.
May not touch: the store, the bus, files or the clock. Arrays and rules in, trades
out; the shell loads the inputs and stores the proposal.
"""
