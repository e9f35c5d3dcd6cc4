#!/bin/sh
# Supervises one lab kernel and removes what it leaves behind. lab.ts runs it in a session
# of its own as
#   setpriv --pdeathsig TERM sh run-kernel.sh DIR TAP linux.uml ARGS...
# with stdin a FIFO that becomes the kernel's console input: EOF on it (the caller closed
# its end or died) makes the lab's init power off. SIGTERM (also sent when the caller dies, by
# pdeathsig) stops the kernel harder. However the kernel ends, this script then kills the
# kernel's process group (UML leaves helper processes when it is killed), removes the TAP if
# it is still there, and deletes DIR if the caller is gone, so a caller killed with SIGKILL
# leaves nothing behind.
dir=$1 tap=$2
shift 2
case $dir in
*/tunnelpair-lab-*) [ -f "$dir/owner" ] || { echo "run-kernel.sh: $dir is not a lab dir" >&2; exit 2; } ;;
*) echo "run-kernel.sh: refusing dir $dir" >&2; exit 2 ;;
esac
ulimit -n "$(ulimit -Hn)"    # hostfs holds one host descriptor per file open inside the lab

# setsid: the kernel gets a process group of its own, so one kill reaches its helpers and
# not this script. Its stdin comes through fd 3: sh gives a background job /dev/null as fd 0
# before applying the job's own redirections, so "<&0" would hand it /dev/null.
exec 3<&0 0</dev/null
setsid perl "$(dirname "$0")/no-xstate.pl" "$@" <&3 >"$dir/log/console.log" 2>&1 &
uml=$!
exec 3<&-

stop() {
    kill -TERM "$uml" 2>/dev/null    # UML's SIGTERM handler exits and kills its helpers
    n=0
    while [ $n -lt 30 ] && [ -d "/proc/$uml" ] && ! grep -q '^State:.*Z' "/proc/$uml/status" 2>/dev/null; do
        sleep 0.1
        n=$((n + 1))
    done
    kill -KILL -"$uml" 2>/dev/null
}
trap stop TERM INT HUP

wait "$uml"                   # returns early when a trapped signal arrives; stop() has run then
wait "$uml" 2>/dev/null
kill -KILL -"$uml" 2>/dev/null
[ ! -e "/sys/class/net/$tap" ] || ip link del "$tap"    # only a persistent TAP outlives the kernel
# The caller still alive (still our parent) reads the logs and removes DIR itself.
read -r stat </proc/$$/stat
set -- ${stat##*) }
[ "$2" = "$PPID" ] || rm -rf "$dir"
