"""Pure decision functions: rules, scoring, qualification, planning, decide."""
