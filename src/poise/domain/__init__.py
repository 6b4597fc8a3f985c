"""Value types and pure rules shared by every stage.

Owns: money, securities, households and accounts, tax lots, transactions, prices,
model portfolios, client profiles, lot relief and realised gains, wash sales (the
matcher in ``washsales``, a household's books read into it in ``washhistory``), and a
year's capital gains settled into tax (``taxes``), and orders — released trades, crosses,
block orders with their allocation statements, fills and allocations (``orders``).
May not touch: the store, the bus, files, the network or the clock. Everything here is
plain data in, plain data out.
"""
