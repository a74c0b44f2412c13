#!/bin/bash
# tunequeue job 1 llama-2node, attempt 1: 2 node(s) x 4 GPU(s)
# The run dir and the Python environment must be on a filesystem every node sees.
#SBATCH --job-name=tq-1-llama-2node
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --cpus-per-task=32
#SBATCH --gres=gpu:4
#SBATCH --mem=256G
#SBATCH --time=1-00:00:00
#SBATCH --partition=gpu
#SBATCH --account=lab
#SBATCH --qos=normal
#SBATCH --output=/shared/tunequeue/runs/1-llama-2node/train.log
#SBATCH --open-mode=append
#SBATCH --chdir=/shared/tunequeue/runs/1-llama-2node
#SBATCH --comment=tunequeue:0123456789:1:1
#SBATCH --exclusive
set -u
export CUDA_DEVICE_ORDER=PCI_BUS_ID PYTHONUNBUFFERED=1
export TUNEQUEUE_JOB_ID=1 TUNEQUEUE_ATTEMPT=1
first_node=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
rdzv_port=$((20000 + SLURM_JOB_ID % 20000))
echo "slurm job $SLURM_JOB_ID on $SLURM_JOB_NODELIST, rendezvous $first_node:$rdzv_port"
exec /opt/tunequeue/.venv/bin/python -m tunequeue.runner.wrapper /shared/tunequeue/runs/1-llama-2node -- srun --nodes=2 --ntasks-per-node=1 --cpus-per-task=32 --kill-on-bad-exit=1 /opt/tunequeue/.venv/bin/python -m torch.distributed.run --nnodes 2 --nproc-per-node 4 --rdzv-backend c10d --rdzv-id "$SLURM_JOB_ID" --rdzv-endpoint "$first_node:$rdzv_port" -m tunequeue.train /shared/tunequeue/runs/1-llama-2node/task.yaml
