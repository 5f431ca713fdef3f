"""`make chaos`: a whole simulated session through `qc up` while a seeded schedule of faults hits it.

Why a package of its own (beside ``benchmarks/``): it runs for a quarter of an hour on purpose and
judges the stack as an operator would, against the simulator's own records, so it never belongs in
``make test``. Its modules each do one job:

- ``schedule``: pure: a seed and a session window become a printable, replayable list of timed faults;
- ``faults``: apply one scheduled fault to the running stack (``kill -9``, ``qc sim ctl …``);
- ``observe``: one health sample (what `qc status --json` reads) every half second, and the pump of signals;
- ``pricing``: the pump's limit, a cent over the option's live ask at the simulated gateway;
- ``settle``: pure: when the executor has caught up (trading, reconciled since a time). No operator is played:
  a Redis restart heals only once the executor itself lowered the REDUCING latch it causes;
- ``healing``: pure: detection and healing times per fault, and the compressed health timeline;
- ``collect``: the simulator's orders, positions, executions and channel records, and Redis's view;
- ``invariants``: pure: each end check over the collected records;
- ``report``: the table (tabulate), the JSON and the files under ``var/chaos/``;
- ``run``: the orchestration behind ``python -m chaos``.
"""
