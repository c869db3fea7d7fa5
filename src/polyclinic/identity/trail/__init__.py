"""The auth event trail: every sign-in, failure and account change, written in the same
transaction as the change, and read by the clinic's admins."""
