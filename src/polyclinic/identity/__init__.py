"""Identity: who uses a clinic and what they may do.

- `accounts`: users, registration, email confirmation, passwords, claiming a patient record;
- `sessions`: sign-in, access and refresh tokens, sessions, sign-in throttling;
- `staff`: invitations, roles and deactivation of staff;
- `mfa`: two-factor sign-in with TOTP and recovery codes;
- `permissions`: roles, the permission matrix and the guards that apply it;
- `trail`: the auth event trail.

`dependencies` builds the identity services per request."""
