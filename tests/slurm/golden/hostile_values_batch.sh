#!/bin/bash
# tunequeue job 1 hostile, attempt 1: 1 node(s) x 1 GPU(s)
#SBATCH '--job-name=x'"'"';touch MARKER-job-name;'"'"''
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --cpus-per-task=1
#SBATCH '--gres=gpu:1`touch${IFS}MARKER-gres`'
#SBATCH '--time=1:00:00|touch${IFS}MARKER-time'
#SBATCH '--constraint=a100$(touch${IFS}MARKER-constraint)'
#SBATCH --output=/shared/tunequeue/runs/1-hostile/train.log
#SBATCH --open-mode=append
#SBATCH --chdir=/shared/tunequeue/runs/1-hostile
#SBATCH '--comment=tunequeue:0123456789:1:1 $(touch MARKER-subst) `touch MARKER-backtick` '"'"'single'"'"' "double" ; touch MARKER-semi #'
set -u
export CUDA_DEVICE_ORDER=PCI_BUS_ID PYTHONUNBUFFERED=1
export TUNEQUEUE_JOB_ID=1 TUNEQUEUE_ATTEMPT=1
echo "slurm job $SLURM_JOB_ID on $SLURM_JOB_NODELIST, CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES-}"
exec /opt/tunequeue/.venv/bin/python -m tunequeue.runner.wrapper /shared/tunequeue/runs/1-hostile -- /opt/tunequeue/.venv/bin/python -m tunequeue.train /shared/tunequeue/runs/1-hostile/task.yaml
