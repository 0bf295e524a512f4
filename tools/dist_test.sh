#!/usr/bin/env bash
# Multi-process testing: tools/dist_test.sh CONFIG CHECKPOINT NUM_PROCS [test.py args...]
# Training-free models (e.g. configs/matcher_coco.py) have no checkpoint:
#                         tools/dist_test.sh CONFIG NUM_PROCS [test.py args...]
set -euo pipefail
CONFIG=$1
if [[ "${2:-}" =~ ^[0-9]+$ ]] && { [ $# -lt 3 ] || [[ "$3" == -* ]]; }; then
    CHECKPOINT=""
    GPUS=$2
    shift 2
else
    CHECKPOINT=$2
    GPUS=$3
    shift 3
fi
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python )}
PYTHONPATH="$(pwd):${PYTHONPATH:-}" \
"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" --master_port="$PORT" \
    tools/test.py "$CONFIG" ${CHECKPOINT:+"$CHECKPOINT"} --launcher pytorch "$@"
