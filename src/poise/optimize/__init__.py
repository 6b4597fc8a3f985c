"""The rebalancing engine: given an account, its lots, prices and model, the trades.

Owns: the problem of one account (``problem``), trades and proposals (``trades``), the
check every proposal must pass after rounding (``check``), and the methods that make
trades: ``bands`` (only what is outside its band) and more to come.
May not touch: the store, the bus, files or the clock. Arrays and rules in, trades
out; the shell loads the inputs and stores the proposal.
"""
