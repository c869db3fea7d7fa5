"""The clinical chart: patients' records and who read or changed them, in each clinic's own
schema.

- `patients`: patients as the clinic keeps them: registered at the desk without an account,
  their demographics, emergency contact and insurance, search, merging duplicate records,
  and the invitation to claim an account;
- `audit`: the hash-chained trail of every access to protected health information and the
  emergency ("break the glass") access to a chart.
"""
