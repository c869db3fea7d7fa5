"""Two-factor sign-in for clinic users: TOTP secrets sealed per account and single-use recovery
codes."""
