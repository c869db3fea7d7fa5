"""Who may do what: the roles, the permission matrix as data, and the guards that
authenticate every clinic route and apply the matrix."""
