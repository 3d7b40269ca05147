"""HTTP endpoints, one blueprint module per resource."""
