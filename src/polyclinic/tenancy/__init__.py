"""Tenancy: the clinic registry and domains, host-to-clinic resolution, provisioning with the
clinic lifecycle hooks, clinic migrations, archiving. It knows no domain."""
