"""The back-office for profile data and documents."""
