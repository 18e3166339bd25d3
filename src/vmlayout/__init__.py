"""vmlayout: where everything lives in a VM's guest physical address space."""

__version__ = "0.1.0"
