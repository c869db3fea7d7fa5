"""Sign-in sessions: access tokens, refresh tokens rotated on every use, the account's
sessions, and the throttling of failed sign-ins."""
