"""Reports: what the firm holds and how it has done.

Owns: pure computations that turn accounts, lots and prices into figures people read
(the firm summary; a backtest's figures, ``backtest``; its charts, ``charts``; a
client's household — value over time, allocation against target, realised gains —
``client``; later performance and tax reports).
May not touch: the store or the bus; the shells load the inputs and print the output.
"""
