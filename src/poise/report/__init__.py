"""Reports: what the firm holds and how it has done.

Owns: pure computations that turn accounts, lots and prices into figures people read
(the firm summary; a backtest's figures, ``backtest``; its charts, ``charts``; later
performance, tax and client reports).
May not touch: the store or the bus; the shells load the inputs and print the output.
"""
