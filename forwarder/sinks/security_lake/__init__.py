"""Amazon Security Lake: OCSF custom sources in Parquet (see sink.py).

Kept free of imports: the configuration reads `layout` without loading pyarrow.
"""
