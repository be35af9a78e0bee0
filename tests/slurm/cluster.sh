#!/usr/bin/env bash
# A single-node Slurm cluster with accounting (munge, MariaDB, slurmdbd, slurmctld, slurmd),
# for the Slurm profile tests. Runs as root, without systemd; every daemon runs in the
# foreground under this script's control and is stopped by the pid it was started with.
#
#   tests/slurm/cluster.sh install   apt-get the Debian packages (skipped when present)
#   tests/slurm/cluster.sh start     write the configs, start the daemons, wait for an idle node
#   tests/slurm/cluster.sh stop      stop the daemons this script started, newest first
#   tests/slurm/cluster.sh status    exit 0 when the cluster answers and its node is idle
#
# The configs go where a site keeps them, /etc/slurm (jobs' own srun and sacct read them
# there); a slurm.conf this script did not write is never overwritten. State, logs and pids
# live in $SSWP_SLURM_DIR (default /tmp/sswp-slurm).
# `start` twice is a no-op while the cluster runs; `stop` when nothing runs does nothing.
set -euo pipefail

DIR=${SSWP_SLURM_DIR:-/tmp/sswp-slurm}
ETC=/etc/slurm
MARK="# Written by sswp tests/slurm/cluster.sh"
RUN=$DIR/run
LOG=$DIR/log
CLUSTER=sswp
ACCOUNT=sswp-test
PARTITION=debug
# A requeued job may start again after cred_expire (+1 s); Slurm's default is 120 s.
CRED_EXPIRE=10
PACKAGES=(slurmctld slurmd slurm-client slurmdbd munge mariadb-server)
# start order; `stop` walks it backwards
DAEMONS=(munged mariadbd slurmdbd slurmctld slurmd)

die() {
	echo "cluster.sh: $*" >&2
	exit 1
}

install() {
	if [ "$(command -v slurmctld slurmd sbatch slurmdbd munged mariadbd | wc -l)" -eq 6 ]; then
		return
	fi
	[ "$(id -u)" -eq 0 ] || die "installing Slurm needs root (apt-get)"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" \
		>/dev/null
}

# Whether the daemon named $1 runs under the pid recorded for it (a reused pid is not it).
alive() {
	local pidfile=$RUN/$1.pid
	[ -f "$pidfile" ] && [ "$(cat "/proc/$(cat "$pidfile")/comm" 2>/dev/null)" = "$1" ]
}

# Start "$name" in the background with its output in $LOG/<name>.out, and record its pid.
launch() {
	local name=$1
	shift
	alive "$name" && return
	"$@" >>"$LOG/$name.out" 2>&1 &
	echo $! >"$RUN/$name.pid"
}

# Wait up to $1 seconds for the command after it to succeed; on timeout show $2's log.
wait_for() {
	local seconds=$1 name=$2
	shift 2
	for _ in $(seq "$((seconds * 2))"); do
		"$@" >/dev/null 2>&1 && return
		alive "$name" || die "$name exited: $(tail -n 5 "$LOG/$name.out" "$LOG/$name.log" 2>/dev/null)"
		sleep 0.5
	done
	die "$name not ready after ${seconds}s: $(tail -n 5 "$LOG/$name.out" "$LOG/$name.log" 2>/dev/null)"
}

write_configs() {
	local cpus memory
	cpus=$(nproc)
	# slurmd refuses a node whose RealMemory exceeds what it finds, so take its own figure.
	memory=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
	mkdir -p "$ETC" "$RUN" "$LOG" "$DIR/state" "$DIR/spool"
	if [ -f "$ETC/slurm.conf" ] && ! grep -qxF "$MARK" "$ETC/slurm.conf"; then
		die "$ETC/slurm.conf belongs to another Slurm set-up; not overwriting it"
	fi
	cat >"$ETC/slurm.conf" <<EOF
$MARK
ClusterName=$CLUSTER
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=cred_expire=$CRED_EXPIRE
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$RUN/slurmctld.daemon.pid
SlurmdPidFile=$RUN/slurmd.daemon.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=5
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStorageEnforce=associations
# sacct shows each job's --comment: the plugin puts the rule's name there.
AccountingStoreFlags=job_comment
ReturnToService=2
MinJobAge=300
KillWait=10
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
MpiDefault=none
NodeName=localhost CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=$PARTITION Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
	# Only read when a cgroup plugin is configured; v1 needs no systemd delegation.
	cat >"$ETC/cgroup.conf" <<EOF
$MARK
CgroupPlugin=cgroup/v1
EOF
	cat >"$ETC/slurmdbd.conf" <<EOF
$MARK
DbdHost=localhost
SlurmUser=root
PidFile=$RUN/slurmdbd.daemon.pid
LogFile=$LOG/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
EOF
	chmod 600 "$ETC/slurmdbd.conf"
}

start() {
	install
	[ "$(id -u)" -eq 0 ] || die "the test cluster runs as root"
	if status; then
		return
	fi
	write_configs

	mkdir -p /run/munge && chown munge:munge /run/munge
	[ -s /etc/munge/munge.key ] || die "/etc/munge/munge.key is missing (reinstall munge)"
	launch munged setpriv --reuid munge --regid munge --init-groups munged --foreground
	wait_for 20 munged munge -n

	mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
	[ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql >/dev/null
	launch mariadbd mariadbd --user=mysql --skip-networking=0 --bind-address=127.0.0.1
	wait_for 60 mariadbd mariadb -e "SELECT 1"
	mariadb <<'EOF'
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
EOF

	launch slurmdbd slurmdbd -D
	wait_for 60 slurmdbd sacctmgr -n list cluster
	sacctmgr -i -Q add cluster "$CLUSTER" >/dev/null 2>&1 || true
	sacctmgr -i -Q add account "$ACCOUNT" Cluster="$CLUSTER" >/dev/null 2>&1 || true
	sacctmgr -i -Q add user root Account="$ACCOUNT" Cluster="$CLUSTER" >/dev/null 2>&1 || true
	sacctmgr -n -P list assoc user=root account="$ACCOUNT" format=account | grep -qx "$ACCOUNT" ||
		die "sacctmgr did not record the account $ACCOUNT"

	launch slurmctld slurmctld -D -c
	wait_for 60 slurmctld scontrol ping
	launch slurmd slurmd -D
	wait_for 60 slurmd node_idle
	echo "cluster.sh: Slurm $(sinfo --version | cut -d' ' -f2) up, node idle," \
		"account $ACCOUNT, partition $PARTITION"
}

# The node is idle (or busy); one left DOWN or DRAINED by an earlier run is resumed.
node_idle() {
	local state
	state=$(sinfo -h -n localhost -o %T 2>/dev/null)
	case $state in
	idle | mixed | allocated) return 0 ;;
	down* | drain* | fail*) scontrol update NodeName=localhost State=RESUME >/dev/null 2>&1 ;;
	esac
	return 1
}

status() {
	for name in "${DAEMONS[@]}"; do
		alive "$name" || return 1
	done
	node_idle
}

stop() {
	local pid
	for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do
		local name=${DAEMONS[i]}
		if alive "$name"; then
			pid=$(cat "$RUN/$name.pid")
			kill -TERM "$pid"
			for _ in $(seq 40); do
				alive "$name" || break
				sleep 0.5
			done
			alive "$name" && kill -KILL "$pid"
		fi
		rm -f "$RUN/$name.pid"
	done
}

case ${1:-} in
install) install ;;
start) start ;;
stop) stop ;;
status) status ;;
*) die "usage: $0 install|start|stop|status" ;;
esac
