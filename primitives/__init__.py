"""The primitive catalogue, installed as `fxgrad.primitives`: one module per family,
each primitive followed by its rules (numpy implementation, shape rule, JVP rule,
transpose rule where linear)."""
