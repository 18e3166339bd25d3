"""Device trees (spec 05): the arm64 Linux tree, the paravisor host tree, parse-back."""
