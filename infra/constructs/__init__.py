"""One construct per concern; the stacks in ``infra.stacks`` compose them."""
