"""Release safety: audit, compare, drift and what-if over scale sets from files, the emulator or real Azure."""
