"""Background work: the dramatiq broker, jobs declared in each package's `jobs` module, the
clinic context carried by every job, the outbox and its relay, the periodic scheduler, and
the queue of account mail sent after a request."""
