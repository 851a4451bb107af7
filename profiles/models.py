"""What each user has configured or produced: profile data first, then documents and processings."""
