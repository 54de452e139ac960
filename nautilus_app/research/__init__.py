"""Research at scale: registry, parameter sweeps, walk-forward, portfolios, local or Ray execution.

Guide and schemas: ``docs/research.md``. Public entry points (imported from their modules so that the
worker process stays light):

* :class:`nautilus_app.research.registry.Registry` (``open``, ``query_runs``, ``sweep_ranking``,
  ``strategies_frame``, ``sweeps_frame``, ``run_detail``), :func:`~nautilus_app.research.registry.upgrade`;
* :func:`nautilus_app.research.spec.load_sweep` / ``parse_sweep``;
* :func:`nautilus_app.research.sweep.run_sweep`, ``grid_points``, ``random_points``;
* :func:`nautilus_app.research.walkforward.run_walk_forward`, ``walk_forward_windows``, ``stitch_equity``;
* :func:`nautilus_app.research.portfolio.run_portfolio`, ``contributions``;
* :class:`nautilus_app.research.execution.ProcessExecutor`, ``RayExecutor``.
"""
