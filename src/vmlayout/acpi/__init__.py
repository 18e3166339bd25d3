"""ACPI views of a resolved layout (spec 04): AML, tables, and their decoders."""
