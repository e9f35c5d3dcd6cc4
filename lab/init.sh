#!/bin/sh
# PID 1 of the lab kernel (user-mode-linux). Kernel command line: lab=<host path of the lab
# dir> lab.lifetime=<seconds, 0 = none>. The kernel's root is the machine's / as a READ-ONLY
# hostfs. We make an overlay with a tmpfs upper the root, so nothing written in the lab
# reaches the machine, and mount the lab dir at /lab: the only writable host path. Then we
# build the world described in /lab/world/ (rendered by world.ts), start every host's sshd
# and write /lab/ready ("ok" or "failed"; reasons, one per line, in /lab/failed).
# Every process started in the lab costs ~120 ms: batch with `ip -b`, `mount -a`, builtins.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
read -r cmdline </proc/cmdline
lifetime=0
for a in $cmdline; do
    case $a in
    lab=*) lab=${a#lab=} ;;
    lab.lifetime=*) lifetime=${a#lab.lifetime=} ;;
    esac
done
read -r kver </proc/sys/kernel/osrelease
mods=/usr/lib/uml/modules/$kver    # the modules of the kernel we are (Debian user-mode-linux)

# Until /lab is mounted, messages go to the console, which lab.ts keeps in log/console.log.
mount -t tmpfs -o mode=755 boot /run
mkdir /run/u /run/w /run/r
insmod "$mods/kernel/fs/overlayfs/overlay.ko"
mount -t overlay root -o lowerdir=/,upperdir=/run/u,workdir=/run/w /run/r
mount -t devtmpfs dev /run/r/dev
mkdir -p /run/r/lab /run/r/old /run/r/ns /run/r/dev/pts "/run/r/lib/modules/$kver"
mount -t hostfs -o "$lab" lab /run/r/lab
cd /run/r && pivot_root . old && cd / || { echo "lab init: cannot switch to the overlay root"; exit 1; }
exec >/lab/log/init.log 2>&1
set -x

fail() { echo "$*" >>/lab/failed; }
# /ns holds every host's private layers (host.sh hides it again inside each host); the module
# tree is bound where modprobe looks for it, so `modprobe ipip` works inside the lab.
printf '%s\n' 'proc /proc proc defaults 0 0' 'sys /sys sysfs defaults 0 0' \
    'devpts /dev/pts devpts ptmxmode=666 0 0' 'run /run tmpfs mode=755 0 0' 'ns /ns tmpfs mode=700 0 0' \
    "$mods /lib/modules/$kver none bind 0 0" >/etc/fstab
mount -a || fail "lab init: mount -a of the lab's /etc/fstab failed"
umount -l /old
mkdir -p /run/sshd /run/netns
: >/root/.bashrc    # the machine's own one can cost seconds per ssh command
if [ "$lifetime" -gt 0 ]; then
    (sleep "$lifetime" && echo o >/proc/sysrq-trigger) &    # backstop: power off whatever happens
fi

# Only the legacy iptables backend works in this kernel (its nf_tables lacks the ipv4 family).
update-alternatives --quiet --set iptables /usr/sbin/iptables-legacy || fail "lab init: cannot select iptables-legacy"
# (ip6tables too, in a world with IPv6: world.ts's ipv6)
if [ -e /lab/world/ipv6 ]; then
    update-alternatives --quiet --set ip6tables /usr/sbin/ip6tables-legacy || fail "lab init: cannot select ip6tables-legacy"
fi
# The kernel's module autoloader must get the environment of lab.ts's guestEnv too.
echo /lab/modprobe >/proc/sys/kernel/modprobe
# No ipip here: the product loads it, and tests check that it does.
modprobe -a veth bridge iptable_filter iptable_nat xt_comment xt_state xt_conntrack xt_MASQUERADE xt_tcpudp ||
    fail "lab init: modprobe failed (modules in $mods)"

w=/lab/world
if ip -b $w/topology.ip; then
    set --
    while read -r h; do
        for d in etc root var run; do set -- "$@" "/ns/$h/$d/u" "/ns/$h/$d/w"; done
    done <$w/hosts
    mkdir -p "$@"
    while read -r h; do
        ip netns exec "$h" unshare --uts sh /lab/host.sh "$h" </dev/null
    done <$w/hosts
else
    fail "lab init: building segments and namespaces from world/topology.ip failed (see log/init.log)"
fi

# Ready means every sshd has written its pid file (it does so after binding). Bounded: 20 s.
n=0
while read -r h; do
    while [ ! -s "/lab/run/$h.pid" ] && [ ! -e "/lab/run/$h.failed" ] && [ $n -lt 200 ]; do
        sleep 0.1
        n=$((n + 1))
    done
    [ -s "/lab/run/$h.pid" ] || [ -e "/lab/run/$h.failed" ] || fail "$h: sshd wrote no pid file (see log/sshd-$h.log)"
done <$w/hosts
if [ -s /lab/failed ]; then echo failed >/lab/ready; else echo ok >/lab/ready; fi

while read -r _; do :; done    # until EOF on the console: lab.ts closed it, or died
echo o >/proc/sysrq-trigger     # power off now (no need for a clean shutdown of a throwaway world)
sleep 10
