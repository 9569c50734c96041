"""The demo application the built-in images run (:mod:`scaleset.demo.app`): standard library only."""
