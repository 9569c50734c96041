"""The imperative shell: clocks, the scheduler, reconcile passes, operations and the activity log."""
