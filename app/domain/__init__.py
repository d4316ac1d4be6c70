"""The domain rules, as pure code: functions, namespaces and their names, image references,
quantities, timestamps, and the scaling rules. Imports nothing but the foundation (config, errors)."""
