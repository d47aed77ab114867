"""A test-only Django app that registers harmless job kinds (tests/jobs_settings.py
installs it), so a real worker process can run them."""
