"""What each API operation does, in words, and the errors only its service can answer.

The OpenAPI schema takes its operation text from here (`config.schema.describe_operations`): a
viewset's docstring describes the resource, so every operation of it would otherwise say the same
thing (a POST saying "The caller's quiz results, latest first"). Keys are "METHOD /path" as the
schema publishes them; `config/tests/test_openapi_text.py` fails on a key that names no operation.

`errors` holds only what the views and the schema cannot tell: answers a service gives (a lockout,
`reauth_required`, `last_admin`, ...). The errors every operation's shape implies (a body: 400, 413,
415; a token: 401; a permission: 403; a path id or a cursor: 404; a throttle: 429; the database: 503)
are derived in `config.schema.document_errors`.
"""

from __future__ import annotations

from typing import NamedTuple


class Text(NamedTuple):
    summary: str
    description: str
    errors: dict[str, str] = {}


LOCKOUT = (
    "The account is locked after `LOGIN_MAX_ATTEMPTS` failed password checks, for "
    "`LOGIN_LOCKOUT_SECONDS`, even with the right password (`Retry-After`)."
)
REAUTH = (
    "`reauth_required`: an account without a password proves itself with a session opened less "
    "than `REAUTH_MAX_AGE` seconds ago; log in again."
)
LOGIN_FAILED = "Wrong username or password, or the account is inactive or deleted: the same answer for each."
SOCIAL_503 = "This provider is not configured on this server, or it did not answer (`Retry-After`)."
MFA_REQUIRED = (
    "`mfa_required`: the password (or the provider) was right and the account has TOTP on; no session "
    "is open yet. The body carries `mfa_token` (single use, `MFA_TOKEN_SECONDS`) and `methods` "
    '(`["totp", "recovery_code"]`): send the token and a code to `/auth/mfa/verify`.'
)
WRONG_CODE = "`code` is not a right, unused code (it counts toward the lockout, as a wrong password does)."

OPERATIONS: dict[str, Text] = {
    # --- Accounts and tokens ------------------------------------------------------------------
    "POST /api/v1/auth/register": Text(
        "Register",
        "Create an account with the role `user` and answer it as `/users/me` does. It does not log "
        "in: call `/auth/login` next. Emits `new_user`.",
    ),
    "POST /api/v1/auth/login": Text(
        "Log in",
        "Open a session: JSON `{username, password}` or the OAuth2 password form "
        "(`grant_type=password`). `username` may be the username or the email. Answers the token "
        "pair; at most `MAX_ACTIVE_SESSIONS` sessions stay open, one more revokes the least "
        "recently used.",
        {"401": LOGIN_FAILED, "403": MFA_REQUIRED, "429": LOCKOUT},
    ),
    "POST /api/v1/auth/refresh": Text(
        "Refresh the token pair",
        "Spend a refresh token for a new access and refresh pair. A refresh token works once: "
        "presenting a spent one is taken for theft and revokes its whole session.",
        {"401": "The refresh token is invalid, expired or spent, or its session has ended."},
    ),
    "POST /api/v1/auth/logout": Text(
        "Log out",
        "End the session the access token belongs to: its access and refresh tokens are refused "
        "from the next request on.",
    ),
    "POST /api/v1/auth/logout-all": Text(
        "Log out everywhere",
        "End every session of the caller, this one included.",
    ),
    "POST /api/v1/auth/verify": Text(
        "Verify an access token",
        "For other services: whether an access token is live (signature, lifetime, session not "
        "revoked, user active), with its user and session.",
        {"401": "The token is not a live access token."},
    ),
    "POST /api/v1/auth/revoke": Text(
        "Revoke a token (RFC 7009)",
        "End the session of an access or refresh token, as logout does, without needing a live "
        "access token: the OAuth2 form `token=...` (or JSON), with an optional `token_type_hint` "
        "and `client_id`. Answers 200 with no body whether or not the token was valid, so it "
        "reveals nothing about a token. Listed as `revocation_endpoint` in "
        "`/.well-known/openid-configuration`.",
    ),
    "POST /api/v1/auth/restore": Text(
        "Restore your deleted account",
        "Undo your own deletion of your account within `ACCOUNT_RESTORE_DAYS`, with its username "
        "and password. An account an administrator deleted or deactivated stays so.",
        {"401": LOGIN_FAILED, "403": MFA_REQUIRED, "429": LOCKOUT},
    ),
    # --- Multi-factor authentication ----------------------------------------------------------
    "GET /api/v1/auth/mfa": Text(
        "Your MFA status",
        "Whether TOTP is on, how many recovery codes are left, and whether a role of yours demands MFA "
        "(`MFA_REQUIRED_ROLES`).",
    ),
    "POST /api/v1/auth/mfa/totp": Text(
        "Start TOTP enrollment",
        "Re-authenticate (`current_password`), and get a new secret (RFC 6238: base32, 160 bits, SHA-1, "
        "6 digits, 30 s) with its `otpauth://` URI for an authenticator app. It is pending until "
        "`/auth/mfa/totp/confirm` takes its first code; a new start replaces a pending secret.",
        {
            "400": "`current_password` is missing or wrong (a wrong one counts toward the lockout), or "
            "`mfa_already_enabled`: turn TOTP off first.",
            "403": REAUTH,
            "429": LOCKOUT,
        },
    ),
    "POST /api/v1/auth/mfa/totp/confirm": Text(
        "Turn TOTP on",
        "The first code from the authenticator app turns TOTP on. Answers 10 recovery codes, shown this "
        "once; the user is told, and `mfa_enabled` is emitted. Log in again (with the code) for a session "
        "that passed MFA.",
        {"400": f"`mfa_not_pending`: no enrollment was started. Or {WRONG_CODE}", "429": LOCKOUT},
    ),
    "DELETE /api/v1/auth/mfa/totp": Text(
        "Turn TOTP off",
        "With `current_password` and a `code` (from the app, or a recovery code), TOTP and the recovery "
        "codes are removed; the user is told, and `mfa_disabled` is emitted. The body is JSON "
        "`{current_password, code}`.",
        {
            "400": f"`mfa_not_enabled`, a wrong `current_password`, or {WRONG_CODE}",
            "403": "`mfa_required_by_role`: a role of yours demands MFA. Or " + REAUTH,
            "413": "The body is over 2 MiB (`DATA_UPLOAD_MAX_MEMORY_SIZE`).",
            "415": "The body is not JSON, or cannot be read as JSON.",
            "429": LOCKOUT,
        },
    ),
    "POST /api/v1/auth/mfa/recovery-codes": Text(
        "Make new recovery codes",
        "With a `code` (from the app, or a recovery code): 10 new recovery codes, shown this once; the "
        "old ones stop working.",
        {"400": f"`mfa_not_enabled`, or {WRONG_CODE}", "429": LOCKOUT},
    ),
    "POST /api/v1/auth/mfa/verify": Text(
        "Finish a login with the second factor",
        "The `mfa_token` of a 403 `mfa_required` (login, restore or social login) and a TOTP `code` or a "
        "`recovery_code`: answers the token pair that login would have; the session's `amr` has `otp` and "
        "`mfa`. A code works once; five wrong codes spend the token.",
        {
            "401": "`mfa_token_invalid`: the token is unknown, expired or spent; log in again. Or "
            "`mfa_code_invalid`: the code is wrong or was used already (it counts toward the lockout).",
            "429": LOCKOUT,
        },
    ),
    "POST /api/v1/auth/password/change": Text(
        "Change your password",
        "Check `old_password`, set `new_password`; every other session of the caller ends, this one stays.",
        {"429": LOCKOUT},
    ),
    "POST /api/v1/auth/password/reset": Text(
        "Ask for a password reset link",
        "Mail a reset link (`PASSWORD_RESET_URL`) to the address. The answer is the same 202 "
        "whether or not the address belongs to an account.",
    ),
    "POST /api/v1/auth/password/reset/confirm": Text(
        "Set a new password from a reset link",
        "Take the `uid` and `token` of the reset link and the new password; every session of the "
        "account ends. A link works once.",
    ),
    "POST /api/v1/auth/password/set": Text(
        "Set a first password",
        "For an account made by social login (no usable password yet), from a session opened less "
        "than `REAUTH_MAX_AGE` seconds ago. Other sessions stay. 400 `password_already_set` when the "
        "account has a password (change it instead), 403 `reauth_required` from an older session.",
    ),
    "POST /api/v1/auth/email/verify": Text(
        "Verify an email address from its link",
        "Take the `uid` and `token` of the verification link: the address is verified, or a pending "
        "address becomes the account's (`user_updated` is emitted). A link works once and stops "
        "working when the address or the password changes (400 `invalid_token`); 409 `email_taken` "
        "when another account took the pending address meanwhile.",
        {"409": "Another account holds the pending address now (`email_taken`)."},
    ),
    "POST /api/v1/auth/email/verify/resend": Text(
        "Mail a new verification link",
        "A new link to the caller's unverified or pending address; `THROTTLE_EMAIL_VERIFY_USER` per "
        "user. 400 `nothing_to_verify` when no address waits for one.",
    ),
    "GET /api/v1/auth/sessions": Text(
        "List your sessions",
        "The caller's active sessions; `current` marks the one the access token belongs to.",
    ),
    "DELETE /api/v1/auth/sessions/{id}": Text(
        "Revoke one of your sessions",
        "End that session: its tokens are refused from the next request on.",
    ),
    # --- Social login ---------------------------------------------------------------------------
    "POST /api/v1/auth/social/yandex": Text(
        "Log in with Yandex",
        "`{access_token}` from Yandex, or `{code, redirect_uri}` to exchange with the app's secret. "
        "Answers the token pair of password login; a new identity makes a new account. With the "
        "caller's access token, the identity is linked to the caller instead (proof: "
        "`current_password`, or a recent session).",
        {
            "401": "Yandex refused the token or code, or the access token sent to link is not valid.",
            "403": REAUTH,
            "503": SOCIAL_503,
        },
    ),
    "POST /api/v1/auth/social/telegram": Text(
        "Log in with Telegram",
        "The Telegram Login Widget's fields, as the widget gave them. Answers the token pair; with "
        "the caller's access token, links the identity to the caller instead.",
        {
            "401": "The hash does not verify, `auth_date` is older than `TELEGRAM_AUTH_MAX_AGE` or in "
            "the future, this payload was used already, or the access token sent to link is not valid.",
            "403": REAUTH,
            "503": SOCIAL_503,
        },
    ),
    "GET /api/v1/users/me/identities": Text(
        "List your linked providers",
        "The social identities linked to the caller's account.",
    ),
    "DELETE /api/v1/users/me/identities/{provider}": Text(
        "Unlink a provider",
        "Remove the link to that provider; refused when it is the account's last way to log in.",
        {"400": "`last_login_method`: set a password or link another provider first."},
    ),
    # --- Users ----------------------------------------------------------------------------------
    "GET /api/v1/users/me": Text(
        "Your account",
        "The caller's account, roles included (`Cache-Control: no-store`).",
    ),
    "PATCH /api/v1/users/me": Text(
        "Change your account",
        "Change your username, email or full name. A new email needs `current_password` (a wrong "
        "one counts toward the lockout); the old address is told by mail.",
        {"403": REAUTH, "429": LOCKOUT},
    ),
    "DELETE /api/v1/users/me": Text(
        "Delete your account",
        "Soft delete, confirmed by your password: every session ends, and you may undo it with "
        "`/auth/restore` within `ACCOUNT_RESTORE_DAYS`; then the account is purged. The body is "
        "JSON `{password}`.",
        {
            # A DELETE's body is not in the schema (OpenAPI gives it no defined meaning): said here.
            "400": "`password` is missing or wrong (a wrong one counts toward the lockout).",
            "403": REAUTH,
            "413": "The body is over 2 MiB (`DATA_UPLOAD_MAX_MEMORY_SIZE`).",
            "415": "The body is not JSON, or cannot be read as JSON.",
            "429": LOCKOUT,
        },
    ),
    "GET /api/v1/users/me/export": Text(
        "Export your data",
        "Everything the service stores about the caller, as one JSON document (an attachment).",
    ),
    "GET /api/v1/users": Text(
        "List accounts",
        "For administrators: every account, newest first; `?search=` (username, email, name), "
        "`?role=`, `?is_active=`, `?is_deleted=`, `?ordering=`.",
    ),
    "POST /api/v1/users": Text(
        "Create an account",
        "For administrators: an account with the roles given. Emits `new_user`.",
    ),
    "GET /api/v1/users/{id}": Text(
        "Read an account",
        "For administrators: one account, deleted ones included.",
    ),
    "PATCH /api/v1/users/{id}": Text(
        "Change an account",
        "For administrators: the profile fields, `is_active` and the roles. Taking the last active "
        "administrator's rights away is a 400 `last_admin`.",
    ),
    "DELETE /api/v1/users/{id}": Text(
        "Delete an account",
        "For administrators: soft delete; every session of the user ends. Only an administrator restores it.",
        {"400": "`last_admin`: the last active administrator cannot be deleted."},
    ),
    "POST /api/v1/users/{id}/restore": Text(
        "Restore an account",
        "For administrators: undo a deletion within `ACCOUNT_RESTORE_DAYS`.",
        {"400": "`not_deleted` or `restore_expired`."},
    ),
    # --- Roles and role-change requests --------------------------------------------------------
    "GET /api/v1/roles": Text(
        "List the roles",
        "The roles an account can have, each with a description.",
    ),
    "GET /api/v1/role-requests": Text(
        "List role requests",
        "The caller's own requests, newest first; administrators see everyone's. `?status=` filters.",
        {"400": "`status` is not a request status."},
    ),
    "POST /api/v1/role-requests": Text(
        "Ask for a role",
        "Ask for a role, with a reason; an administrator decides. Refused while a request of the "
        "caller is pending, or for a role the caller has.",
    ),
    "GET /api/v1/role-requests/{id}": Text(
        "Read a role request",
        "One request: the caller's own, or any for an administrator.",
    ),
    "POST /api/v1/role-requests/{id}/cancel": Text(
        "Cancel your role request",
        "Withdraw your own request while it is pending.",
        {"400": "`not_pending`: the request was decided or cancelled already."},
    ),
    "POST /api/v1/role-requests/{id}/approve": Text(
        "Approve a role request",
        "For administrators: the user gets the role and is notified, with the optional comment; "
        "emits `role_changed`.",
        {
            "400": "Invalid input, or `not_pending`: the request was decided already.",
            "403": "The caller is not an administrator, or the request is their own.",
        },
    ),
    "POST /api/v1/role-requests/{id}/reject": Text(
        "Reject a role request",
        "For administrators: the request is rejected and the user notified, with the optional comment.",
        {
            "400": "Invalid input, or `not_pending`: the request was decided already.",
            "403": "The caller is not an administrator, or the request is their own.",
        },
    ),
    # --- Notifications --------------------------------------------------------------------------
    "GET /api/v1/notifications": Text(
        "List your notifications",
        "The caller's notifications, newest first; `?unread=true` for the unread ones only.",
    ),
    "DELETE /api/v1/notifications/{id}": Text(
        "Delete a notification",
        "Remove one of the caller's notifications; the unread count follows at once.",
    ),
    "POST /api/v1/notifications/{id}/read": Text(
        "Mark a notification read",
        "Set `read_at` on one of the caller's notifications and answer it.",
    ),
    "POST /api/v1/notifications/read-all": Text(
        "Mark every notification read",
        "Every unread notification of the caller becomes read.",
    ),
    "GET /api/v1/notifications/unread-count": Text(
        "Count your unread notifications",
        "`{count}` of the caller's unread notifications.",
    ),
    "GET /api/v1/notifications/preferences": Text(
        "Read your notification preferences",
        "Per kind of notification: whether it is also sent by email.",
    ),
    "PATCH /api/v1/notifications/preferences": Text(
        "Change your notification preferences",
        "Turn the email copy of some kinds of notification on or off.",
    ),
    "POST /api/v1/notifications/broadcast": Text(
        "Broadcast a notification",
        "For administrators: notify the users named by id, everyone with a role, or everyone; "
        "fanned out in batches by a background task (202).",
    ),
    # --- Profile data ---------------------------------------------------------------------------
    "GET /api/v1/profile/llm-settings": Text(
        "Read your LLM settings",
        "The caller's model per purpose (`agent`, `rag`, `test_generator`); a purpose never set "
        "answers the catalogue's default, and `stale` names the purposes whose saved model left "
        "the catalogue.",
    ),
    "PUT /api/v1/profile/llm-settings": Text(
        "Replace your LLM settings",
        "Set every purpose, each given whole; provider and model must be in the catalogue. Emits "
        "`llm_settings_changed`.",
    ),
    "PATCH /api/v1/profile/llm-settings": Text(
        "Change some LLM settings",
        "Change some purposes, or some fields of a purpose; the rest keep their values.",
    ),
    "GET /api/v1/llm/catalog": Text(
        "The LLM catalogue",
        "The providers and models users may choose, with their limits, and each purpose's default.",
    ),
    "GET /api/v1/chat-sessions": Text(
        "List your chat sessions",
        "The caller's chat sessions, most recently active first; at most `MAX_USER_SESSIONS`.",
    ),
    "POST /api/v1/chat-sessions": Text(
        "Record a chat session",
        "Record a session of the AI agent; beyond `MAX_USER_SESSIONS` the least recently active "
        "one is deleted.",
    ),
    "GET /api/v1/chat-sessions/{id}": Text(
        "Read a chat session",
        "One of the caller's chat sessions.",
    ),
    "PATCH /api/v1/chat-sessions/{id}": Text(
        "Change a chat session",
        "Title and metadata; `touch` or `last_activity_at` move its activity forward (never back).",
    ),
    "DELETE /api/v1/chat-sessions/{id}": Text(
        "Delete a chat session",
        "Remove one of the caller's chat sessions.",
    ),
    "GET /api/v1/quiz-results": Text(
        "List your quiz results",
        "The caller's quiz results, latest first; `?topic=` for one topic.",
    ),
    "POST /api/v1/quiz-results": Text(
        "Record a quiz result",
        "Store the result of a completed quiz; `percent` is computed from `score` and `max_score`.",
    ),
    "GET /api/v1/quiz-results/{id}": Text(
        "Read a quiz result",
        "One of the caller's quiz results, with its answers.",
    ),
    "DELETE /api/v1/quiz-results/{id}": Text(
        "Delete a quiz result",
        "Remove one of the caller's quiz results.",
    ),
    "GET /api/v1/quiz-results/stats": Text(
        "Your quiz statistics",
        "Per topic: attempts, best, average and last percent, and the last attempt's time.",
    ),
    # --- Resumes, requirements, processings -----------------------------------------------------
    "GET /api/v1/resumes": Text(
        "List your resumes",
        "The caller's resumes, newest first.",
    ),
    "POST /api/v1/resumes": Text(
        "Add a resume",
        "JSON `{title?, text}` or a multipart `file` (`.txt` in UTF-8, `.pdf`, `.docx`; at most "
        "`UPLOAD_MAX_BYTES`). The type is read from the bytes and must match the extension; the "
        "text is extracted in a bounded child process. Emits `new_resume`.",
    ),
    "GET /api/v1/resumes/{id}": Text(
        "Read a resume",
        "One of the caller's resumes, with its text.",
    ),
    "DELETE /api/v1/resumes/{id}": Text(
        "Delete a resume",
        "Remove one of the caller's resumes, its file and its processings; emits `delete_resume`.",
    ),
    "GET /api/v1/resumes/{id}/file": Text(
        "Download a resume's file",
        "The uploaded file, to its owner only (files are never served by a public URL).",
        {"404": "No such resume of the caller's, or it was sent as text, not as a file."},
    ),
    "GET /api/v1/requirements": Text(
        "List your requirements",
        "The caller's requirements, newest first.",
    ),
    "POST /api/v1/requirements": Text(
        "Add requirements",
        "As `POST /resumes`: JSON `{title?, text}` or a multipart `file`. Emits `new_requirements`.",
    ),
    "GET /api/v1/requirements/{id}": Text(
        "Read requirements",
        "One of the caller's requirements, with their text.",
    ),
    "DELETE /api/v1/requirements/{id}": Text(
        "Delete requirements",
        "Remove one of the caller's requirements, their file and their processings; emits "
        "`delete_requirements`.",
    ),
    "GET /api/v1/requirements/{id}/file": Text(
        "Download requirements' file",
        "The uploaded file, to its owner only (files are never served by a public URL).",
        {"404": "No such requirements of the caller's, or they were sent as text, not as a file."},
    ),
    "GET /api/v1/processings": Text(
        "List your processings",
        "The caller's processings, newest first; `?requirements_id=` for one requirements'.",
        {"400": "`requirements_id` is not a UUID."},
    ),
    "POST /api/v1/processings": Text(
        "Start a processing",
        "Compare one of the caller's resumes with one of their requirements: the request goes to "
        "the AI handler (`new_request`) and the answer arrives later (`status`, `result`, "
        "`score`).",
        {
            "404": "The resume or the requirements is not one of the caller's.",
            "429": "More than `PROCESSING_RATE_LIMIT` starts in 60 s: blocked for "
            "`PROCESSING_BLOCK_SECONDS` (`Retry-After`).",
            "503": "The database, or the cache that counts the starts, is unavailable (`Retry-After`).",
        },
    ),
    "GET /api/v1/processings/{id}": Text(
        "Read a processing",
        "One of the caller's processings, with its status and, once done, its result and score.",
    ),
    "DELETE /api/v1/processings/{id}": Text(
        "Delete a processing",
        "Remove one of the caller's processings; emits `delete_processing`.",
    ),
}
