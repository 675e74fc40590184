"""The import path of the collectord API document: ``from api.progress_tracker import ...``.

The code lives in the top-level module ``progress_tracker``; ``api.progress_tracker`` re-exports
it, so both names reach the same functions, the same pipe lock and the same ProgressError.
"""
