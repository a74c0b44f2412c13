#!/bin/bash
# A real single-node Slurm cluster on localhost, for tests and demos (no systemd needed; run as root).
#
#   scripts/slurm_localhost.sh start STATE_DIR   # munged (unless one answers) + slurmctld + slurmd
#   scripts/slurm_localhost.sh stop STATE_DIR    # cancel its jobs, stop what `start` started
#
# Needs Debian's slurmctld, slurmd, slurm-client and munge packages (slurm-wlm 22.05). Everything the
# cluster writes (config, state, spool, logs, pid files) stays under STATE_DIR; the host's /etc/slurm is
# not touched. Clients reach this cluster through SLURM_CONF=STATE_DIR/slurm.conf, printed as the last
# line of `start`. The node has two fake GPUs: gres.conf `File=` must name character devices, so they
# are symlinks to /dev/null; `--gres=gpu:1` jobs then get CUDA_VISIBLE_DEVICES=0 or 1 as on a real node.
#
# Environment: SLURM_LOCALHOST_CTLD_PORT / SLURM_LOCALHOST_SLURMD_PORT (defaults 6817 / 6818) let two
# clusters run side by side; SLURM_LOCALHOST_GPUS sets the number of fake GPUs (default 2).
set -euo pipefail

usage() { echo "usage: $0 start|stop STATE_DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
ACTION=$1
STATE=$(mkdir -p "$2" && cd "$2" && pwd)
CONF=$STATE/slurm.conf

stop_pidfile() {
    # Stop the daemon whose pid is in $1 (SIGTERM, then SIGKILL after 10 s); a stale file is ignored.
    local file=$1 pid
    [ -s "$file" ] || return 0
    pid=$(cat "$file")
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$file"
}

stop_cluster() {
    if [ -f "$CONF" ] && [ -s "$STATE/slurmctld.tq.pid" ]; then
        # Jobs' slurmstepd processes outlive slurmd: cancel them while the controller still answers.
        SLURM_CONF=$CONF timeout 10 scancel --quiet --full --state=RUNNING --user="$(id -un)" \
            2>/dev/null || true
        SLURM_CONF=$CONF timeout 10 scancel --quiet --user="$(id -un)" 2>/dev/null || true
        for _ in $(seq 50); do
            SLURM_CONF=$CONF timeout 5 squeue -h -t RUNNING,COMPLETING 2>/dev/null | grep -q . || break
            sleep 0.1
        done
    fi
    stop_pidfile "$STATE/slurmd.tq.pid"
    stop_pidfile "$STATE/slurmctld.tq.pid"
    stop_pidfile "$STATE/munged.tq.pid"
}

start_munge() {
    if munge -n >/dev/null 2>&1; then
        return 0  # a munged already answers on the default socket; use it and leave it running
    fi
    [ -s /etc/munge/munge.key ] || runuser -u munge -- mungekey --create --keyfile=/etc/munge/munge.key
    mkdir -p /run/munge && chown munge:munge /run/munge
    setsid setpriv --reuid=munge --regid=munge --init-groups munged --foreground \
        </dev/null >"$STATE/munged.out" 2>&1 &
    echo $! >"$STATE/munged.tq.pid"
    for _ in $(seq 100); do munge -n >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "munged did not start; see $STATE/munged.out" >&2
    return 1
}

write_config() {
    local gpus=${SLURM_LOCALHOST_GPUS:-2} mem last
    mkdir -p "$STATE/state" "$STATE/spool"
    for i in $(seq 0 $((gpus - 1))); do ln -sfn /dev/null "$STATE/fakegpu$i"; done
    mem=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
    last=$((gpus - 1))
    cat >"$CONF" <<CONF
ClusterName=tqlocal
SlurmctldHost=localhost
SlurmctldPort=${SLURM_LOCALHOST_CTLD_PORT:-6817}
SlurmdPort=${SLURM_LOCALHOST_SLURMD_PORT:-6818}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/state
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
MinJobAge=3600
KillWait=5
SchedulerParameters=sched_interval=1
GresTypes=gpu
NodeName=localhost CPUs=$(nproc) RealMemory=$mem Gres=gpu:$gpus State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
    if [ "$gpus" -gt 0 ]; then
        echo "NodeName=localhost Name=gpu File=$STATE/fakegpu[0-$last]" >"$STATE/gres.conf"
    else
        : >"$STATE/gres.conf"
    fi
}

start_cluster() {
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null || {
        echo "slurmctld, slurmd and sbatch are needed: apt-get install -y --no-install-recommends" \
            "slurmctld slurmd slurm-client munge" >&2
        exit 1
    }
    stop_cluster
    rm -rf "$STATE/state" "$STATE/spool"
    start_munge
    write_config
    export SLURM_CONF=$CONF
    # -i: ignore state left by an earlier cluster in STATE_DIR; -D: foreground, backgrounded here.
    setsid slurmctld -D -i -f "$CONF" </dev/null >"$STATE/slurmctld.out" 2>&1 &
    echo $! >"$STATE/slurmctld.tq.pid"
    setsid slurmd -D -N localhost -f "$CONF" </dev/null >"$STATE/slurmd.out" 2>&1 &
    echo $! >"$STATE/slurmd.tq.pid"
    for _ in $(seq 200); do
        if [ "$(sinfo -h -N -o %t 2>/dev/null)" = idle ]; then
            echo "SLURM_CONF=$CONF"
            return 0
        fi
        sleep 0.1
    done
    echo "the node did not become idle within 20 s; see $STATE/slurmctld.log and $STATE/slurmd.log" >&2
    sinfo -N -o "%N %t %E" >&2 || true
    stop_cluster
    exit 1
}

case $ACTION in
    start) start_cluster ;;
    stop) stop_cluster ;;
    *) usage ;;
esac
