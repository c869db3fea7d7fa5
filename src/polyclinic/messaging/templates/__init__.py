"""Message templates: the default wording of every message kind, a clinic's own wording per
channel and locale, checked and rendered in Jinja's sandbox, and previews."""
