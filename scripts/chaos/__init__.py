"""`make chaos` (`python -m scripts.chaos`): the order saga under faults, with its invariants
checked after each one. The description and the command line are in __main__.py.
"""
