"""The Ray runtime: the only package that imports Ray. Thin actors over the plain components, and the driver side
that wires them, routes weights, handles faults and follows a cluster's nodes."""
