#!/usr/bin/env bash
# A single-node Slurm on this machine, for trying --executor slurm and for the tests that need it
# (tests/test_slurm_cluster.py; .ci/run starts it). Debian 12's packages, run as root, no systemd:
# every daemon runs with -D in the background, its config, state and logs in one folder.
#
#   scripts/slurm_cluster.sh start [--no-accounting]   install what is missing, start, wait for it
#   scripts/slurm_cluster.sh stop                      end the daemons this script started
#   scripts/slurm_cluster.sh env                       the line that points Slurm's commands here
#
# The folder is $LIFEIQA_SLURM_DIR (default /tmp/lifeiqa-slurm); clients find the cluster through
# SLURM_CONF=<folder>/slurm.conf (`eval "$(scripts/slurm_cluster.sh env)"`). With accounting
# (the default) slurmdbd keeps job states in MariaDB, so `sacct` answers; --no-accounting runs
# the controller without it, as some clusters do. One partition, `debug`, of this machine's CPUs
# and no GPU. The single-node recipe is described in docs/tutorials/scale-out.md.
set -euo pipefail

DIR=${LIFEIQA_SLURM_DIR:-/tmp/lifeiqa-slurm}
HOST=$(hostname -s)
CLUSTER=lifeiqa
PACKAGES=(slurm-wlm munge slurmdbd mariadb-server)

die() { echo "slurm_cluster.sh: $*" >&2; exit 1; }

install_packages() {
    command -v slurmctld > /dev/null && command -v slurmdbd > /dev/null \
        && command -v munged > /dev/null && command -v mariadbd > /dev/null && return
    [ "$(id -u)" = 0 ] || die "installing ${PACKAGES[*]} needs root (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q "${PACKAGES[@]}" > "$DIR/apt.log" 2>&1 \
        || { apt-get update -q >> "$DIR/apt.log" 2>&1 \
             && apt-get install -y -q "${PACKAGES[@]}" >> "$DIR/apt.log" 2>&1; } \
        || die "apt-get install ${PACKAGES[*]} failed: see $DIR/apt.log"
}

# start NAME COMMAND...: run a daemon in the background, its pid in $DIR/NAME.pid
start_daemon() {
    local name=$1; shift
    if [ -f "$DIR/$name.pid" ] && kill -0 "$(cat "$DIR/$name.pid")" 2> /dev/null; then
        return
    fi
    setsid "$@" > "$DIR/log/$name.out" 2>&1 < /dev/null &
    echo $! > "$DIR/$name.pid"
}

# wait_for WHAT SECONDS COMMAND...: until COMMAND succeeds, or fail naming WHAT and its log
wait_for() {
    local what=$1 seconds=$2; shift 2
    for _ in $(seq $((seconds * 4))); do
        "$@" > /dev/null 2>&1 && return
        sleep 0.25
    done
    die "$what did not come up in ${seconds} s: see $DIR/log/"
}

write_configs() {
    local accounting=$1 memory
    # about 80 % of this machine's memory, so that DefMemPerCPU fits on the node
    memory=$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)
    cat > "$DIR/slurm.conf" << EOF
ClusterName=$CLUSTER
SlurmctldHost=$HOST
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=2000
ReturnToService=2
MpiDefault=none
MailProg=/bin/true
# ended jobs stay visible to squeue this long: without accounting that is how a state is read
MinJobAge=600
# a cancelled task whose process ignores SIGTERM (submitit's does) is killed this soon after
KillWait=10
SlurmctldPidFile=$DIR/slurmctld.pid.slurm
SlurmdPidFile=$DIR/slurmd.pid.slurm
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
# (--all: plain nproc honours OMP_NUM_THREADS, which test workers set to their share)
NodeName=$HOST CPUs=$(nproc --all) RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
    if [ "$accounting" = yes ]; then
        cat >> "$DIR/slurm.conf" << EOF
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
EOF
    else
        echo "AccountingStorageType=accounting_storage/none" >> "$DIR/slurm.conf"
    fi
    cat > "$DIR/slurmdbd.conf" << EOF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=lifeiqa
StorageLoc=slurm_acct_db
LogFile=$DIR/log/slurmdbd.log
PidFile=$DIR/slurmdbd.pid.slurm
EOF
    chmod 600 "$DIR/slurmdbd.conf"
}

start_accounting() {
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
    start_daemon mariadb /usr/sbin/mariadbd --user=mysql
    wait_for "mariadb" 60 mariadb -e "select 1"
    mariadb -e "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'lifeiqa';
                GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
    # slurmdbd reads slurmdbd.conf beside $SLURM_CONF
    start_daemon slurmdbd /usr/sbin/slurmdbd -D
    wait_for "slurmdbd" 60 sacctmgr -n list cluster
    sacctmgr -n list cluster format=cluster | grep -qw "$CLUSTER" \
        || sacctmgr -i add cluster "$CLUSTER" > /dev/null
}

start() {
    local accounting=yes
    [ "${1:-}" = "--no-accounting" ] && accounting=no
    mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log"
    install_packages
    write_configs "$accounting"
    export SLURM_CONF=$DIR/slurm.conf
    [ -f /etc/munge/munge.key ] || mungekey -c
    mkdir -p /run/munge && chown munge:munge /run/munge
    start_daemon munged runuser -u munge -- /usr/sbin/munged -F
    wait_for "munged" 20 munge -n
    [ "$accounting" = yes ] && start_accounting
    start_daemon slurmctld /usr/sbin/slurmctld -D -i -f "$DIR/slurm.conf"
    wait_for "slurmctld" 60 scontrol ping
    start_daemon slurmd /usr/sbin/slurmd -D -f "$DIR/slurm.conf"
    wait_for "slurmd (node $HOST idle)" 60 bash -c "sinfo -h -N -o %t | grep -qx idle"
    echo "slurm: cluster $CLUSTER up (partition debug, $(nproc --all) CPUs, accounting $accounting); $(env_line)"
}

# stop the controller and node (and, with "all", munge and the accounting daemons)
stop() {
    local names=(slurmd slurmctld)
    [ "${1:-}" = all ] && names+=(slurmdbd mariadb munged)
    for name in "${names[@]}"; do
        [ -f "$DIR/$name.pid" ] || continue
        local pid; pid=$(cat "$DIR/$name.pid")
        kill -- -"$pid" 2> /dev/null || kill "$pid" 2> /dev/null || true
        for _ in $(seq 40); do kill -0 "$pid" 2> /dev/null || break; sleep 0.25; done
        rm -f "$DIR/$name.pid"
    done
}

env_line() { echo "export SLURM_CONF=$DIR/slurm.conf"; }

case "${1:-}" in
    start) shift; mkdir -p "$DIR"; start "$@" ;;
    stop) shift; stop "${1:-all}" ;;
    restart) shift; stop; start "$@" ;;
    env) env_line ;;
    *) die "usage: $0 start [--no-accounting] | restart [--no-accounting] | stop [all|daemons] | env" ;;
esac
