"""Train the causal decoupler on Ray Train, checkpointing to storage, then calibrate it for open-set decisions.

The driver (:func:`causalprint.attribution.training.driver.run_training`):

1. starts (or reopens, by its name) an MLflow run and logs the job's parameters (:mod:`.mlflow_run`);
2. runs :func:`~.worker.train_loop_per_worker` on ``scaling.num_workers`` Ray Train workers. Each worker reads
   the extraction output from storage itself, shards every epoch's shuffled rows by world rank, and after every
   epoch reports its validation metrics; rank 0 also reports a checkpoint (:mod:`.checkpoints`) and logs the
   epoch to MLflow;
3. loads the best (or last) checkpoint from storage, fits the calibration
   (:mod:`causalprint.attribution.calibration`) on the validation rows and evaluates (:mod:`.evaluate`) on the
   test rows (known sources) and the held-out sources (unknowns).

A run whose checkpoints already reach ``train.epochs`` skips step 2. The job's config is :mod:`.config`.

Resuming: a worker restarted by ``FailureConfig(max_failures)`` gets the latest checkpoint from
``ray.train.get_checkpoint()`` and continues with the next epoch, optimizer state included. A killed driver is
resumed by running the job again under the same ``name``: in Ray 2.60 (Train V2) ``TorchTrainer.can_restore``
and ``TorchTrainer.restore`` only raise a DeprecationWarning; a new trainer with the same
``RunConfig(name, storage_path)`` restores the run's checkpoint state itself, and the MLflow run tagged with the
name is reopened. Every epoch reseeds the shuffle and torch's generator from (seed, epoch, rank), so a resumed
run sees the same data order and random draws as an uninterrupted one.
"""
