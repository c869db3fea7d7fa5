"""The clinical chart, in each clinic's own schema.

- `patients`: patients as the clinic keeps them: registered at the desk without an account,
  their demographics, emergency contact and insurance, search, merging duplicate records,
  and the invitation to claim an account.
"""
