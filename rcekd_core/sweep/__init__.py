"""`rcekd sweep`: an equal-budget hyperparameter sweep on Optuna.

    space.py     `--param` specs (log range, range, list) checked against the config
    plan.py      the sweep's plan (sweep.yaml): everything checked before anything is written
    sweepdir.py  the sweep directory's file names
    storage.py   where the studies live (RDB with heartbeats, or a journal file); SQLite's lock
    study.py     one study per method holding exactly its budget of trials; claiming, telling
    trial.py     one trial = one run directory made by run_experiment; its objective
    worker.py    the loop a worker runs until the budget is spent
    session.py   starting a sweep and opening an existing one
    report.py    best trial per method, sensitivity.csv
    confirm.py   every method's best settings in one run on several seeds
"""
