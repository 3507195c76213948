"""The app's own routes, one module per group: ``reading`` (/api/predict, /api/read, /api/check,
/api/visualize), ``status`` (/api/models, /api/health) and ``pages`` (/, /report, /docs, static
files). The worksheet and profile routes are in ``digitlab.worksheets.api`` and
``digitlab.profiles.api``.
"""
