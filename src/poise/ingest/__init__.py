"""File formats into validated rows: parsing, validation, quarantine reasons.

Owns: the canonical CSV and Parquet formats (``formats``), reading a file's bytes into
rows (``parse``) and checking every row, vectorised (``validate``); a backtest's
daily price history (``history``) and its model and securities files read on their
own, without a store (``standalone``).
May not touch: the store or the bus. Loading validated rows is the store's job and the
order of work is the workflow's; this package only says what is valid and why not.
"""
