"""The clinical chart: patients' records and who read or changed them, in each clinic's own
schema. `audit` keeps the hash-chained trail of every access to protected health information
and the emergency ("break the glass") access to a chart."""
