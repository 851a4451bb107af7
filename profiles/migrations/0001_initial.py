# The app's first migration, empty on purpose: the profile-data and document models
# arrive in migrations of their own that both depend on this one.
from django.db import migrations


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = []
