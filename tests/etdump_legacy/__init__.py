"""The object-per-event ETDump reader and analysis that sme2tui used before the columnar reader
(git history: sme2tui/etdump/ and sme2tui/analysis/cell.py before the switch), kept only as a test oracle.

tests/test_etdump_columns.py checks that the columnar reader and analysis give exactly what these gave,
on the committed fixtures, hand-built files and thousands of corrupted copies. Not used by the product.
"""
