"""x86 firmware views of a resolved layout (spec 03)."""
