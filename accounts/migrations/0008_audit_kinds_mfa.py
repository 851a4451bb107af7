# The audit kinds of multi-factor authentication (issue 23): choices only, no schema change.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0007_mfa_and_email_verification"),
    ]

    operations = [
        migrations.AlterField(
            model_name="auditevent",
            name="kind",
            field=models.CharField(
                choices=[
                    ("login", "Login"),
                    ("login_failed", "Login failed"),
                    ("lockout", "Account locked out"),
                    ("unlock", "Account unlocked"),
                    ("token_reuse", "Refresh token reuse (theft) detected"),
                    ("logout", "Logout"),
                    ("session_revoked", "Session revoked"),
                    ("password_changed", "Password changed"),
                    ("password_reset_requested", "Password reset requested"),
                    ("password_reset", "Password reset"),
                    ("registered", "Registered"),
                    ("profile_updated", "Profile updated"),
                    ("activated", "Activated"),
                    ("deactivated", "Deactivated"),
                    ("deleted", "Deleted"),
                    ("restored", "Restored"),
                    ("purged", "Purged"),
                    ("role_changed", "Roles changed"),
                    ("admin_action", "Admin action"),
                    ("identity_linked", "Social identity linked"),
                    ("identity_unlinked", "Social identity unlinked"),
                    ("mfa_enabled", "MFA turned on"),
                    ("mfa_disabled", "MFA turned off or reset"),
                    ("recovery_codes_generated", "Recovery codes generated"),
                    ("recovery_code_used", "Recovery code used"),
                ],
                max_length=32,
            ),
        ),
    ]
