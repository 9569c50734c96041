"""Pure domain: resource models, validation, arithmetic, health and planners. No I/O, no clocks."""
