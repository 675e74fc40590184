"""``api.progress_tracker``: the path the collectord API document imports from.

Everything here is ``progress_tracker``'s own object (see that module for the documentation):

    from api.progress_tracker import update_job_progress
    update_job_progress(job_id, "running", 50, "Processing devices...")
"""

from progress_tracker import (  # noqa: F401
    DEFAULT_TIMEOUT,
    DEFAULT_URL,
    MAX_LINE_BYTES,
    STATUSES,
    InvalidProgress,
    ProgressError,
    __all__,
    __version__,
    complete,
    current_job_id,
    fail,
    report,
    update_job_progress,
)
