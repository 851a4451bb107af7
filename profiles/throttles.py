"""`THROTTLE_UPLOAD_USER`: how many resumes and requirements one user may create (DRF throttling).

Checked in the view's `initial()`, before the handler touches `request.data`: a refused upload's
body is never read, let alone parsed or written to disk.
"""

from __future__ import annotations

from core.throttling import UserRateThrottle


class UploadUserThrottle(UserRateThrottle):
    """`THROTTLE_UPLOAD_USER` per user. Fails closed: the parse and the disk write it guards cost
    more than a refusal."""

    scope = "upload_user"
    rate_setting = "THROTTLE_UPLOAD_USER"
    unavailable_detail = "Uploads cannot be accepted right now; try again shortly."
